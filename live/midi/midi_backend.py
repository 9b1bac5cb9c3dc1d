"""Why python-rtmidi would not import, said as something a user can act on.

python-rtmidi's Linux wheels carry their own libjack but link the system's
ALSA library, ``libasound.so.2``, which minimal images (a container, Debian's
netinst, a bare cloud box) do not have.  The import then fails with the
dynamic loader's ``ImportError``; ``cadenza live``, ``ports`` and ``panic``
turn it into a ``PortError`` that names the library and the package that
brings it, instead of a traceback that ``make run`` would misread.
"""

from __future__ import annotations

import re

from cadenza.errors import PortError

# The loader's text starts with the file it could not open:
# "libasound.so.2: cannot open shared object file: No such file or directory".
_LIBRARY = re.compile(r"\b(lib[\w+-]+\.so(?:\.\d+)*)")

SIMULATE_HINT = "To hear Cadenza without a MIDI system, run `cadenza simulate --out duet.mid`."


def missing_library(err: ImportError) -> str | None:
    """The shared library the loader could not open, as it named it."""
    found = _LIBRARY.search(str(err))
    return found.group(1) if found else None


def _install_hint(library: str | None) -> str:
    """What to install, as Debian, Ubuntu and Raspberry Pi OS name it."""
    stem = re.sub(r"(\.\d+)+$", "", library or "")
    if stem == "libjack.so":
        return "install the JACK library: `sudo apt install libjack-jackd2-0`"
    if library and stem != "libasound.so":
        return f"install the package that provides {library} (`apt-file search {library}`)"
    # Every python-rtmidi wheel links libasound, so JACK users need it as well.
    return (
        "install the ALSA library: `sudo apt install libasound2` "
        "(JACK users: also `libjack-jackd2-0`)"
    )


def rtmidi_import_error(err: ImportError) -> PortError:
    """The ``PortError`` for an ``import rtmidi`` that failed with ``err``."""
    if isinstance(err, ModuleNotFoundError) and err.name == "rtmidi":
        return PortError(
            "python-rtmidi, Cadenza's MIDI backend, is not installed in this Python: "
            f"`pip install python-rtmidi` (or reinstall Cadenza). {SIMULATE_HINT}"
        )
    library = missing_library(err)
    # One line, whatever the loader wrote: the CLI logs it as one log record.
    reason = " ".join(str(err).split()) or type(err).__name__
    subject = f"cannot load {library}" if library else "cannot be imported"
    return PortError(
        f"python-rtmidi, Cadenza's MIDI backend, {subject} ({reason}); "
        f"{_install_hint(library)}. {SIMULATE_HINT}"
    )


# The one import of python-rtmidi: every module that talks to MIDI gets it
# from here, so a machine without the libraries it links gets one clear line.
try:
    import rtmidi  # noqa: F401  (re-exported)
except ImportError as _err:  # a system library it links is missing: say which, no traceback
    raise rtmidi_import_error(_err) from _err
