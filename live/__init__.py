"""The live side of Cadenza (no TensorFlow here).

- ``engine/``: the pure improviser: messages and clock ticks in, timed messages out;
- ``midi/``: MIDI ports, one class per backend, the JACK guards and JACK time;
- ``daemon/``: ``cadenza live``: the input queue, the worker, the scheduler, the ledger;
- ``offline/``: the engine driven from files: ``simulate``, ``evaluate``, the piano roll.
"""
