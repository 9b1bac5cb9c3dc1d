"""The model bundle: one folder, ONNX graph(s) and a ``model.json`` manifest.

The manifest says everything the daemon needs to run the model without
TensorFlow: the token scheme version, the vocabulary in index order, the
window length, the input encoding, each graph's file and tensor names, the
LSTM state shapes, and how the model was made (training report and config,
data digest, versions).  ``read_bundle`` refuses a bundle that is missing,
corrupt, from an incompatible scheme, or whose graphs lie outside its folder,
with a message naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from cadenza.config import PRESETS
from cadenza.errors import BundleError, TokenError
from cadenza.files import write_atomic
from cadenza.tokens import SCHEME_VERSION, validate_token
from cadenza.trained import MODEL_FILE

MANIFEST = "model.json"
FORMAT = "cadenza-bundle"
FORMAT_VERSION = 1

#: Graph kinds a bundle may hold.  "window": tokens [batch, window] in,
#: probabilities [batch, V] out.  "stream" (and its int8 twin): one token
#: [batch, 1] plus the LSTM states in, probabilities and new states out.
GRAPH_KINDS = ("window", "stream", "window_int8", "stream_int8")
INPUT_ENCODINGS = ("scalar", "embedding")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | None, ...]
    dtype: str


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX file and the roles of its tensors.

    ``inputs`` and ``outputs`` map a role to a tensor: roles are ``tokens``
    (window input), ``token`` (stream input), ``probs`` (output), and one per
    state tensor named in ``Bundle.state_names`` (same role in and out).
    """

    kind: str
    path: Path
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


@dataclass(frozen=True)
class Bundle:
    path: Path
    vocabulary: tuple[str, ...]
    window: int
    input_encoding: str
    input_scale: float  # the scalar encoding feeds index / input_scale
    state_names: tuple[str, ...]
    state_size: int
    graphs: dict[str, GraphSpec]
    primers: tuple[tuple[str, ...], ...]
    manifest: dict[str, Any]

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def preset(self) -> str:
        """The preset that trained the model: the manifest's word, else what the
        input encoding implies (the scalar encoding is the seed preset's)."""
        preset = self.manifest.get("preset")
        if preset in PRESETS:
            return preset
        return "seed" if self.input_encoding == "scalar" else "default"

    @property
    def left_filled(self) -> bool:
        """Whether a history shorter than the window is padded with a primer.

        The seed preset learnt only from full windows of real music, so it
        predicts only from a full window.  The default preset learnt a
        prediction at every position of a chunk from zero state, so it
        predicts from whatever was heard, however short, with nothing before it.
        """
        return self.preset == "seed"

    def graph(self, kind: str) -> GraphSpec:
        try:
            return self.graphs[kind]
        except KeyError:
            raise BundleError(
                f"{self.path / MANIFEST}: no {kind!r} graph in this bundle "
                f"(it has {', '.join(self.graphs) or 'none'})"
            ) from None


def _require(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in doc:
        raise BundleError(f"{where}: missing {key!r}")
    value = doc[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BundleError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _tensor(doc: Any, where: Path, role: str) -> TensorSpec:
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise BundleError(f"{where}: tensor {role!r} needs a name")
    shape = doc.get("shape", [])
    if not isinstance(shape, list) or not all(d is None or isinstance(d, int) for d in shape):
        raise BundleError(f"{where}: tensor {role!r} has a bad shape {shape!r}")
    return TensorSpec(doc["name"], tuple(shape), str(doc.get("dtype", "float32")))


def _check_graph_roles(
    kind: str,
    inputs: dict[str, TensorSpec],
    outputs: dict[str, TensorSpec],
    state_names: list[str],
    where: Path,
) -> None:
    """A window graph takes ``tokens``; a stream graph takes ``token`` and every state."""
    if kind.startswith("window"):
        needed_in, needed_out = ["tokens"], []
    else:
        if not state_names:
            raise BundleError(f"{where}: graph {kind!r} needs LSTM states, but 'state' names none")
        needed_in, needed_out = ["token", *state_names], list(state_names)
    missing = [f"input {r!r}" for r in needed_in if r not in inputs]
    missing += [f"output {r!r}" for r in needed_out if r not in outputs]
    if missing:
        raise BundleError(f"{where}: graph {kind!r} lacks {', '.join(missing)}")


def _graph_path(folder: Path, name: str, kind: str, manifest_path: Path) -> Path:
    """Where graph ``kind``'s ``file`` lies, refused unless it is inside ``folder``.

    A bundle is shared as one folder, so its manifest may only name files in
    it: an absolute path, a ``..`` or a symlink out would load a graph the
    bundle does not carry.  Windows separators and drives count as well, so
    a manifest is judged the same on every system.
    """
    where = f"{manifest_path}: graph {kind!r} file {name!r}"
    written = PureWindowsPath(name)  # splits on both "/" and "\\"
    if written.anchor or PurePosixPath(name).is_absolute():
        raise BundleError(
            f"{where} is an absolute path (or names a drive); it must be a name inside {folder}"
        )
    if ".." in written.parts:
        raise BundleError(f"{where} climbs out with '..'; it must be a name inside {folder}")
    graph_path = folder / name
    resolved = graph_path.resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise BundleError(f"{where} leads through a symlink to {resolved}, outside {folder}")
    return graph_path


def read_bundle(path: str | Path) -> Bundle:
    """Read and check a bundle folder (or its ``model.json``)."""
    path = Path(path)
    if path.name == MANIFEST:
        path = path.parent
    manifest_path = path / MANIFEST
    if not path.exists():
        raise BundleError(
            f"{path}: no such model bundle (a folder with {MANIFEST}, as `cadenza export` "
            "writes it; without --model the bundled model plays)"
        )
    if not manifest_path.is_file():
        if (path / MODEL_FILE).is_file():
            # The likeliest mix-up: the trainer's output folder where a bundle is wanted.
            raise BundleError(
                f"{path}: a trained model folder, not a bundle; export it first: "
                f"cadenza export --model {path} --out BUNDLE, then pass --model BUNDLE"
            )
        raise BundleError(f"{manifest_path}: missing; {path} is not a model bundle")
    try:
        doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{manifest_path}: corrupt JSON: {err}") from err
    except OSError as err:
        raise BundleError(f"{manifest_path}: cannot read: {err}") from err
    if not isinstance(doc, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    if doc.get("format") != FORMAT:
        raise BundleError(f"{manifest_path}: not a {FORMAT} manifest")
    version = _require(doc, "format_version", int, manifest_path)
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: bundle format {version} is newer than this Cadenza "
            f"understands ({FORMAT_VERSION}); upgrade Cadenza"
        )
    scheme = _require(doc, "token_scheme", int, manifest_path)
    if scheme != SCHEME_VERSION:
        raise BundleError(
            f"{manifest_path}: token scheme version {scheme} is not supported "
            f"(this Cadenza speaks version {SCHEME_VERSION})"
        )
    vocabulary = _require(doc, "vocabulary", list, manifest_path)
    if not vocabulary or not all(isinstance(t, str) for t in vocabulary):
        raise BundleError(f"{manifest_path}: 'vocabulary' must be a non-empty list of tokens")
    if len(set(vocabulary)) != len(vocabulary):
        raise BundleError(f"{manifest_path}: 'vocabulary' has duplicate tokens")
    try:
        for token in vocabulary:
            validate_token(token)
    except TokenError as err:
        raise BundleError(f"{manifest_path}: bad vocabulary entry: {err}") from err
    window = _require(doc, "window", int, manifest_path)
    if window < 1:
        raise BundleError(f"{manifest_path}: 'window' must be at least 1, got {window}")
    encoding = _require(doc, "input_encoding", dict, manifest_path)
    kind = encoding.get("kind")
    if kind not in INPUT_ENCODINGS:
        raise BundleError(f"{manifest_path}: unknown input encoding {kind!r}")
    scale = encoding.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise BundleError(f"{manifest_path}: input encoding scale must be positive, got {scale!r}")
    state = _require(doc, "state", dict, manifest_path)
    state_names = state.get("names", [])
    state_size = state.get("size", 0)
    if not isinstance(state_names, list) or not all(isinstance(n, str) for n in state_names):
        raise BundleError(f"{manifest_path}: 'state.names' must be a list of names")
    if not isinstance(state_size, int) or isinstance(state_size, bool) or state_size < 0:
        raise BundleError(f"{manifest_path}: 'state.size' must be a whole number")
    graphs_doc = _require(doc, "graphs", dict, manifest_path)
    graphs = {}
    for graph_kind, spec in graphs_doc.items():
        if graph_kind not in GRAPH_KINDS:
            raise BundleError(f"{manifest_path}: unknown graph kind {graph_kind!r}")
        if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
            raise BundleError(f"{manifest_path}: graph {graph_kind!r} needs a 'file'")
        graph_path = _graph_path(path, spec["file"], graph_kind, manifest_path)
        if not graph_path.is_file():
            raise BundleError(f"{graph_path}: graph file missing (named in {manifest_path})")
        inputs = {r: _tensor(t, manifest_path, r) for r, t in spec.get("inputs", {}).items()}
        outputs = {r: _tensor(t, manifest_path, r) for r, t in spec.get("outputs", {}).items()}
        if "probs" not in outputs:
            raise BundleError(f"{manifest_path}: graph {graph_kind!r} has no 'probs' output")
        _check_graph_roles(graph_kind, inputs, outputs, state_names, manifest_path)
        probs_size = outputs["probs"].shape[-1] if outputs["probs"].shape else None
        if probs_size is not None and probs_size != len(vocabulary):
            raise BundleError(
                f"{manifest_path}: graph {graph_kind!r} predicts {probs_size} tokens but the "
                f"vocabulary has {len(vocabulary)}"
            )
        graphs[graph_kind] = GraphSpec(graph_kind, graph_path, inputs, outputs)
    if not graphs:
        raise BundleError(f"{manifest_path}: the bundle lists no graphs")
    primers = tuple(
        tuple(p) for p in doc.get("primers", []) if isinstance(p, list) and p
    )
    vocab_set = set(vocabulary)
    for primer in primers:
        unknown = [t for t in primer if t not in vocab_set]
        if unknown:
            raise BundleError(f"{manifest_path}: primer tokens not in the vocabulary: {unknown[:3]}")
    return Bundle(
        path=path,
        vocabulary=tuple(vocabulary),
        window=window,
        input_encoding=kind,
        input_scale=float(scale),
        state_names=tuple(state_names),
        state_size=state_size,
        graphs=graphs,
        primers=primers,
        manifest=doc,
    )


def write_json_atomic(path: str | Path, document: Any) -> None:
    """Write JSON under a temporary name, then rename it into place.

    A crash or a full disk never leaves a half-written manifest behind.
    """

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())

    write_atomic(path, write)


def bundled_model_path() -> Path:
    """Where the model shipped inside the package lies (``cadenza.models``)."""
    import cadenza.models as models  # imported lazily: a tiny package of data

    return Path(models.__file__).parent / "default"
