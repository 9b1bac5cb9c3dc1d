"""The native model step, reached by ctypes: ``--runner native``.

``NativeStreamRunner`` has the interface of ``cadenza.runtime.StreamRunner``
(``vocabulary``, ``window``, ``fill``, ``primers``, ``reset``, ``feed``,
``distribution``) and runs the C++ step of ``native/`` on the bundle's
``native.bin``.  Its distribution is the float64 array the C++ step wrote,
copied: the native engine reads the same bits.

The library is looked for in ``$CADENZA_NATIVE_LIB``, then next to this
package, then in ``build/native/`` of the checkout.  Where it is not built,
asking for it raises one ``NativeError`` line saying how to build it; the
rest of Cadenza runs without it.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cadenza import native_format
from cadenza.bundle import MANIFEST, Bundle, bundled_model_path, read_bundle
from cadenza.errors import BundleError, CadenzaError, ModelError
from cadenza.runtime import _fill_tokens

log = logging.getLogger(__name__)

LIBRARY = "libcadenza_model.so"
ENV_LIBRARY = "CADENZA_NATIVE_LIB"
API_VERSION = 3
MAX_PENDING = 16  # CADENZA_MODEL_MAX_PENDING: fed tokens a model keeps unstepped at most
_ERROR_BYTES = 1024
_ERR_INDEX = 7
_PACKAGE = Path(__file__).resolve().parent


class NativeError(CadenzaError, RuntimeError):
    """The native library is not built or cannot be loaded."""


def library_candidates() -> list[Path]:
    """Where the library may lie, in the order they are tried."""
    found = []
    if os.environ.get(ENV_LIBRARY):
        found.append(Path(os.environ[ENV_LIBRARY]))
    found.append(_PACKAGE / LIBRARY)
    found.append(_PACKAGE.parent / "build" / "native" / LIBRARY)
    return found


_LIB: ctypes.CDLL | None = None


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_char_p, c_size_t = ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t
    vp, ip = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32)
    signatures = {
        "cadenza_model_api_version": (c_int, []),
        "cadenza_weights_load": (c_int, [c_char_p, ctypes.POINTER(vp), c_char_p, c_size_t]),
        "cadenza_weights_parse": (
            c_int, [c_char_p, c_size_t, c_char_p, ctypes.POINTER(vp), c_char_p, c_size_t]),
        "cadenza_weights_free": (None, [vp]),
        "cadenza_weights_vocab_size": (c_int, [vp]),
        "cadenza_weights_window": (c_int, [vp]),
        "cadenza_weights_fill": (c_int, [vp, ctypes.POINTER(ip)]),
        "cadenza_weights_primer": (c_int, [vp, ctypes.POINTER(ip)]),
        "cadenza_weights_token": (c_char_p, [vp, c_int]),
        "cadenza_weights_check_vocabulary": (
            c_int, [vp, ctypes.POINTER(c_char_p), c_int, c_char_p, c_size_t]),
        "cadenza_weights_has_int8": (c_int, [vp]),
        "cadenza_model_new": (c_int, [vp, ctypes.POINTER(vp), c_char_p, c_size_t]),
        "cadenza_model_new_int8": (c_int, [vp, ctypes.POINTER(vp), c_char_p, c_size_t]),
        "cadenza_model_free": (None, [vp]),
        "cadenza_model_reset": (c_int, [vp, ip, c_int, c_char_p, c_size_t]),
        "cadenza_model_feed": (c_int, [vp, ctypes.c_int32, c_char_p, c_size_t]),
        # An address, not a POINTER: the runner keeps one array view per buffer.
        "cadenza_model_distribution": (vp, [vp]),
        "cadenza_model_length": (c_int, [vp]),
        "cadenza_int8_exact_products": (c_int, []),
        "cadenza_model_catch_up": (c_int, [vp]),
        "cadenza_model_pending": (c_int, [vp]),
        "cadenza_debug_fp32_avx512": (c_int, [c_int]),
        "cadenza_debug_int8_activation": (
            c_int, [c_int, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float), c_int]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes


def load_library() -> ctypes.CDLL:
    """The native library, loaded once; ``NativeError`` (one line) where it is not built."""
    global _LIB
    if _LIB is not None:
        return _LIB
    for path in library_candidates():
        if path.is_file():
            try:
                lib = ctypes.CDLL(str(path))
                lib.cadenza_model_api_version.restype = ctypes.c_int
                version = lib.cadenza_model_api_version()
            except (OSError, AttributeError) as err:
                raise NativeError(f"{path}: cannot load the native library: {err}") from err
            # The version first: an older build lacks the newer functions.
            if version != API_VERSION:
                raise NativeError(
                    f"{path}: native library API {version}, this Cadenza needs {API_VERSION}; "
                    "rebuild it: make native"
                )
            try:
                _declare(lib)
            except AttributeError as err:
                raise NativeError(f"{path}: cannot load the native library: {err}") from err
            _LIB = lib
            return lib
    raise NativeError(
        "the native library is not built; build it with `make native` (CMake and a C++17 "
        f"compiler), or point {ENV_LIBRARY} at {LIBRARY}"
    )


def int8_exact_products() -> bool:
    """Whether the int8 step adds its products exactly (True) or in int16
    pairs that saturate (False): onnxruntime's rule on this CPU."""
    return bool(load_library().cadenza_int8_exact_products())


def available() -> bool:
    try:
        load_library()
    except NativeError:
        return False
    return True


def _check(code: int, buffer: ctypes.Array, error: type[CadenzaError] = BundleError) -> None:
    if code != 0:
        raise error(buffer.value.decode("utf-8", "replace"))


class NativeWeightsHandle:
    """A loaded weights file (the C++ ``Weights``), freed with the object."""

    def __init__(self, path: str | Path, vocabulary: Sequence[str] | None = None) -> None:
        lib = self._lib = load_library()
        self.path = Path(path)
        if not self.path.is_file():
            raise BundleError(
                f"{self.path}: native weights missing; add them with: "
                f"cadenza native-weights {self.path.parent}"
            )
        self._handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERROR_BYTES)
        _check(lib.cadenza_weights_load(str(self.path).encode(), ctypes.byref(self._handle),
                                        err, _ERROR_BYTES), err)
        if vocabulary is not None:
            tokens = (ctypes.c_char_p * len(vocabulary))(*(t.encode() for t in vocabulary))
            code = lib.cadenza_weights_check_vocabulary(self._handle, tokens, len(vocabulary),
                                                        err, _ERROR_BYTES)
            _check(code, err)

    @classmethod
    def parse(cls, data: bytes, name: str = "<memory>") -> NativeWeightsHandle:
        """Load from bytes (the fuzz tests' way in)."""
        self = cls.__new__(cls)
        self._lib, self.path = load_library(), Path(name)
        self._handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERROR_BYTES)
        code = self._lib.cadenza_weights_parse(data, len(data), name.encode(),
                                               ctypes.byref(self._handle), err, _ERROR_BYTES)
        _check(code, err)
        return self

    @property
    def vocab_size(self) -> int:
        return self._lib.cadenza_weights_vocab_size(self._handle)

    @property
    def window(self) -> int:
        return self._lib.cadenza_weights_window(self._handle)

    @property
    def has_int8(self) -> bool:
        """Whether the file carries the int8 section (format version 2)."""
        return bool(self._lib.cadenza_weights_has_int8(self._handle))

    def _indices(self, getter: str) -> tuple[int, ...]:
        pointer = ctypes.POINTER(ctypes.c_int32)()
        count = getattr(self._lib, getter)(self._handle, ctypes.byref(pointer))
        return tuple(pointer[i] for i in range(count))

    @property
    def fill(self) -> tuple[int, ...]:
        return self._indices("cadenza_weights_fill")

    @property
    def primer(self) -> tuple[int, ...]:
        return self._indices("cadenza_weights_primer")

    @property
    def vocabulary(self) -> tuple[str, ...]:
        token = self._lib.cadenza_weights_token
        return tuple(token(self._handle, i).decode() for i in range(self.vocab_size))

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle:
            self._lib.cadenza_weights_free(handle)
            self._handle = None


class NativeStreamRunner:
    """``StreamRunner``'s semantics on the native step (one voice, its own state).

    ``int8``: the step runs the file's int8 section as onnxruntime runs the
    bundle's int8 stream graph (``stream_int8``)."""

    def __init__(self, bundle: Bundle, native_path: Path | None = None, int8: bool = False) -> None:
        path = native_path or bundle.path / native_file(bundle)
        # The Python reader checks the file first: its message names the problem the same way.
        native_format.read(path, bundle.vocabulary)
        self.bundle = bundle
        #: The checked weights file: the native engine makes its own step from it
        #: (cadenza_native_predictor_new) and runs it with no Python in between.
        self.native_weights_path = Path(path)
        self.weights = NativeWeightsHandle(path, bundle.vocabulary)
        lib = self._lib = self.weights._lib
        if self.weights.window != bundle.window:
            raise BundleError(
                f"{path}: native weights of window {self.weights.window}, "
                f"{bundle.path / MANIFEST} says {bundle.window}"
            )
        self.fill = self.weights.fill
        if self.fill != _fill_tokens(bundle):
            raise BundleError(
                f"{path}: native weights with another left-fill than the primers of "
                f"{bundle.path / MANIFEST} give; rewrite them: cadenza native-weights {bundle.path}"
            )
        self.vocabulary = bundle.vocabulary
        self.window = bundle.window
        self.primers = bundle.primers
        self._size = bundle.vocab_size
        self._err = ctypes.create_string_buffer(_ERROR_BYTES)
        self._views: dict[int, np.ndarray] = {}
        self._model = ctypes.c_void_p()
        #: Read by the native engine, which makes its own step of the same kind.
        self.int8 = bool(int8)
        make = lib.cadenza_model_new_int8 if self.int8 else lib.cadenza_model_new
        _check(make(self.weights._handle, ctypes.byref(self._model), self._err, _ERROR_BYTES),
               self._err)

    def _raise(self, code: int) -> None:
        message = self._err.value.decode("utf-8", "replace")
        raise ModelError(f"{message} (model {self.bundle.path})" if code == _ERR_INDEX else message)

    def reset(self, primer: Sequence[int] = ()) -> None:
        indices = (ctypes.c_int32 * len(primer))(*(int(i) for i in primer))
        code = self._lib.cadenza_model_reset(self._model, indices, len(primer), self._err,
                                             _ERROR_BYTES)
        if code:
            self._raise(code)

    def feed(self, index: int) -> None:
        index = int(index)
        if not -(2**31) <= index < 2**31:
            raise ModelError(f"token index {index} is outside the vocabulary of {self.bundle.path}")
        code = self._lib.cadenza_model_feed(self._model, index, self._err, _ERROR_BYTES)
        if code:
            self._raise(code)

    def distribution(self) -> np.ndarray:
        # The step answers from one of two buffers that live as long as the
        # model (its probabilities, or the uniform ones): a view of each is
        # made once, and each answer is a copy the caller may keep.
        address = self._lib.cadenza_model_distribution(self._model)
        view = self._views.get(address)
        if view is None:
            pointer = ctypes.cast(address, ctypes.POINTER(ctypes.c_double))
            view = self._views[address] = np.ctypeslib.as_array(pointer, shape=(self._size,))
        return view.copy()

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities (float32, [n, V]) after streaming each row of ``windows``
        [n, window] from zero state, as ``StreamRunner.predict_windows``; this
        runner's state is reset afterwards."""
        windows = np.asarray(windows)
        if windows.ndim != 2 or windows.shape[1] != self.window:
            raise ModelError(
                f"predict_windows wants an array of shape (n, {self.window}), got {windows.shape}"
            )
        out = np.empty((len(windows), self._size), dtype=np.float32)
        for n, row in enumerate(windows.tolist()):
            self.reset(row)
            out[n] = self.distribution()
        self.reset()
        return out

    @property
    def length(self) -> int:
        """Tokens in the active row's context (for tests)."""
        return self._lib.cadenza_model_length(self._model)

    def catch_up(self) -> None:
        """Run the steps ``reset`` and ``feed`` left owed (they are lazy), without
        the head: the model's work a ``distribution`` would start with."""
        self._lib.cadenza_model_catch_up(self._model)

    @property
    def pending(self) -> int:
        """Steps owed: a pending reset's tokens and the fed tokens not yet stepped."""
        return self._lib.cadenza_model_pending(self._model)

    def __del__(self) -> None:
        model = getattr(self, "_model", None)
        if model:
            self._lib.cadenza_model_free(model)
            self._model = None


def native_file(bundle: Bundle) -> str:
    """The weights file the manifest names (``native.file``), else ``native.bin``."""
    record = bundle.manifest.get("native")
    if not isinstance(record, dict):
        return native_format.NATIVE_FILE
    name = record.get("file")
    if name is None:
        parity = record.get("parity") or {}
        raise BundleError(
            f"{bundle.path / MANIFEST}: no native weights: at export the native step did not "
            f"match the stream graph (max |dp| {parity.get('max_abs_diff', float('nan')):.2e}, "
            f"limit {parity.get('tolerance', float('nan')):.0e}); run it on onnxruntime "
            "(--runner stream)"
        )
    if not isinstance(name, str) or Path(name).name != name:
        raise BundleError(f"{bundle.path / MANIFEST}: 'native.file' must be a file name, got {name!r}")
    return name


def load_native_runner(path: str | Path | None = None) -> NativeStreamRunner:
    """Open the bundle at ``path`` (None or "": the bundled model) on the native step."""
    return NativeStreamRunner(read_bundle(path or bundled_model_path()))
