"""The offline trainer (needs the [train] extra: TensorFlow, music21)."""
