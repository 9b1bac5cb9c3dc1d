"""Declarative checks: each setting's range or choices stated once, on its field.

A section's field carries its rule in the dataclass field's metadata
(``setting(default, rule)``); ``field_problems`` checks every field's rule
the same way and names the key.  What one field cannot say alone (a key
name, a table of controllers, one setting that needs another) stays in the
section's own ``_more_problems``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RULE = "rule"  # the metadata key a field's rule is kept under


@dataclass(frozen=True)
class Rule:
    """``ok(value)`` holds, or the value ``must ...`` (``message``)."""

    ok: Callable[[Any], bool]
    message: str


def one_of(choices: tuple[str, ...]) -> Rule:
    return Rule(lambda value: value in choices, f"must be one of {', '.join(choices)}")


def at_least(low: float, message: str | None = None) -> Rule:
    return Rule(lambda value: value >= low, message or f"must be at least {low}")


def positive(message: str = "must be positive") -> Rule:
    return Rule(lambda value: value > 0, message)


def between(low: float, high: float, message: str, *, low_open: bool = False,
            high_open: bool = False) -> Rule:
    """``low <= value <= high``; an open end excludes its bound."""

    def ok(value: float) -> bool:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return Rule(ok, message)


def not_blank(message: str) -> Rule:
    return Rule(lambda value: bool(value.strip()), message)


def setting(default: Any = dataclasses.MISSING, rule: Rule | None = None, *,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A section field with its rule (``rule=None``: any value of its type)."""
    metadata = {} if rule is None else {RULE: rule}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def field_problems(section: Any) -> dict[str, str]:
    """Key -> why, for every field of ``section`` whose rule its value breaks."""
    problems = {}
    for item in dataclasses.fields(section):
        rule = item.metadata.get(RULE)
        if rule is not None and not rule.ok(getattr(section, item.name)):
            problems[item.name] = rule.message
    return problems
