"""Engine settings for tests of the engine's mechanics.

The shipped defaults sample (temperature 1.4) and lean on the call's key
(``key = "call"``): good music, but a test of timing, voicing or the window
wants the model's own choice, argmax, to know which note comes.
"""

from __future__ import annotations

from typing import Any

from cadenza.config import LiveConfig

MECHANICAL = {"temperature": 0.0, "key": "off"}


def mechanical(**settings: Any) -> LiveConfig:
    """``LiveConfig(**settings)``, argmax and the model alone unless they say otherwise."""
    return LiveConfig(**{**MECHANICAL, **settings})
