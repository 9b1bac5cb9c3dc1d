"""What a MIDI CC value means for each control that ``[live.cc]`` can map."""

from __future__ import annotations

from collections.abc import Mapping

from cadenza.config import MODES

TEMPERATURE_CC_MAX = 2.0  # CC value 127 means this temperature
TEMPO_CC_RANGE = (40.0, 240.0)  # CC values 0..127 span this tempo range
SWITCH_ON = 64  # a switch CC (enabled, panic) is on from this value up


def controls_of(cc_map: Mapping[str, int], number: int) -> list[str]:
    """The controls mapped to controller ``number``."""
    return [name for name, mapped in cc_map.items() if mapped == number]


def temperature_from(value: int) -> float:
    return TEMPERATURE_CC_MAX * value / 127.0


def mode_from(value: int) -> str:
    """Three equal bands of 0..127, in the order of ``MODES``."""
    return MODES[min(len(MODES) - 1, value * len(MODES) // 128)]


def tempo_from(value: int) -> float:
    low, high = TEMPO_CC_RANGE
    return low + (high - low) * value / 127.0


def strength_from(value: int) -> float:
    """0..127 -> 0.0..1.0 (key_strength)."""
    return value / 127.0


def switch_from(value: int) -> bool:
    return value >= SWITCH_ON
