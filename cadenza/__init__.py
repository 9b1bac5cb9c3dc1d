"""Cadenza: a live MIDI improviser driven by a next-note LSTM.

The package ``cadenza`` holds the contract shared by the trainer, the exporter
and the daemon: the token scheme, the bundle format, the configuration, the
command line and the error types.  The heavy parts live in ``cadenza.train``
and ``cadenza.export`` (TensorFlow, music21) and are imported only on demand.
"""

__version__ = "0.1.0"
