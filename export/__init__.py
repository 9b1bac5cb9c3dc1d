"""Keras -> ONNX bundle export (needs the [train] extra)."""
