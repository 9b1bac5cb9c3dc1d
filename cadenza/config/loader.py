"""Loading the configuration: a TOML file, then command-line overrides.

Loading checks every key before any work starts: an unknown key, a value of
the wrong type or an impossible value is a ``ConfigError`` that names the
file, the section and the key.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 on older boards
    import tomli as tomllib

from cadenza.config.sections import SECTIONS, Config
from cadenza.errors import ConfigError


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a field's type; allow int for float, list for tuple."""
    hint = annotation
    origin = typing.get_origin(hint)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # TOML has nan and inf; no setting means anything by them, and
            # nan passes every "must be at least" comparison unnoticed.
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    if origin in (Mapping, dict) or hint is Mapping:
        if isinstance(value, Mapping):
            return types.MappingProxyType(dict(value))
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")  # a bug, not user error


def _build_section(
    name: str, base: Any, values: Mapping[str, Any], source: str
) -> Any:
    cls = SECTIONS[name]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in values.items():
        where = f"{source}: [{name}] {key}"
        if key not in known:
            raise ConfigError(f"{where}: unknown key (known keys: {', '.join(sorted(known))})")
        if value is None:
            continue
        changes[key] = _coerce(value, hints[key], where)
    section = dataclasses.replace(base, **changes)
    problems = section.check()
    if problems:
        key, why = next(iter(problems.items()))
        shown = changes.get(key.split(".")[0], getattr(section, key.split(".")[0], None))
        raise ConfigError(f"{source}: [{name}] {key} = {shown!r}: {why}")
    return section


def load_config(
    path: str | Path | None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    base: Config | None = None,
) -> Config:
    """Read ``path`` (None: defaults only), then apply ``overrides`` per section.

    ``overrides`` holds command-line values; ``None`` values mean "not given"
    and leave the file's value in place.
    """
    config = base or Config()
    source = config.source
    sections: dict[str, Any] = {name: getattr(config, name) for name in SECTIONS}
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            with path.open("rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError as err:
            raise ConfigError(f"{path}: config file not found") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        except OSError as err:
            raise ConfigError(f"{path}: cannot read config file: {err}") from err
        for name, values in document.items():
            if name not in SECTIONS and not isinstance(values, Mapping):
                raise ConfigError(
                    f"{path}: {name} is outside any section; settings go under "
                    f"{', '.join(f'[{s}]' for s in SECTIONS)}"
                )
            if name not in SECTIONS:
                raise ConfigError(
                    f"{path}: unknown section [{name}] (known: {', '.join(SECTIONS)})"
                )
            if not isinstance(values, Mapping):
                raise ConfigError(f"{path}: {name} must be a [section] table")
            sections[name] = _build_section(name, sections[name], values, source)
    for name, values in (overrides or {}).items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section {name!r}")
        sections[name] = _build_section(name, sections[name], values, "command line")
    return Config(source=source, **sections)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"key=value"`` from a command line (``--set temperature=0.8``) -> (key, value).

    The value is read as a TOML value where it is one (``0.8``, ``16``,
    ``true``, ``"x"``), else taken as a plain string (``mirror``, ``1/8``);
    whether the key exists and the value fits is checked by ``load_config``.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError(f"{text!r}: expected KEY=VALUE, like temperature=0.8")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def as_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration as plain data (for reports and bundles)."""
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        values = getattr(config, name)
        # Not dataclasses.asdict: it deep-copies, and a mappingproxy ([live.cc]) cannot be.
        section = {f.name: getattr(values, f.name) for f in dataclasses.fields(values)}
        out[name] = {k: (list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v) for k, v in section.items()}
    return out
