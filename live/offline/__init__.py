"""The engine without ports: ``simulate`` (a duet from a MIDI file), ``evaluate``, the piano roll."""
