"""MIDI ports: the MIDI systems behind python-rtmidi, one class per backend, and the JACK guards."""
