"""The exception hierarchy.

Each error is a ``CadenzaError`` and also the built-in type a caller would
expect, so ``except ValueError`` keeps working for code that knows nothing of
Cadenza.  The command line turns a ``CadenzaError`` into one log line and a
non-zero exit status instead of a traceback.
"""

from __future__ import annotations


class CadenzaError(Exception):
    """Base class of every error Cadenza raises on purpose."""

    exit_code = 1


class ConfigError(CadenzaError, ValueError):
    """A configuration file or option is unknown, of the wrong type or impossible."""

    exit_code = 2


class DataError(CadenzaError, ValueError):
    """Training data is missing, empty or unusable."""


class TokenError(CadenzaError, ValueError):
    """A string is not a token of the scheme."""


class BundleError(CadenzaError, ValueError):
    """A model bundle is missing, corrupt or incompatible."""


class ModelError(CadenzaError, RuntimeError):
    """A model failed while predicting."""


class ExportError(CadenzaError, RuntimeError):
    """Export to ONNX failed or did not match Keras (parity)."""


class MidiFileError(CadenzaError, ValueError):
    """A MIDI file cannot be read."""


class PortError(CadenzaError, OSError):
    """A MIDI port is unknown, ambiguous, or the MIDI system is unavailable."""


class OutputError(CadenzaError, OSError):
    """An output folder or file cannot be written (unwritable, a full disk)."""
