"""Helpers the tests share: bundles made to order, the JACK fixtures' rules, settings, broken MIDI files."""
