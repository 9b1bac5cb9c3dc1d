"""Test infrastructure shared by the tests and the benchmark scripts; never installed.

A private JACK server and MIDI clients (``jack_harness``), a machine made noisy
on purpose (``xrun_storm``) and a deterministic model (``fake_predictor``).
"""
