"""Configuration: one TOML file with sections [data] [train] [export] [live].

Each section is a frozen dataclass (``sections``) whose fields state their
own ranges and choices (``rules``; the choice lists: ``choices``).  Loading
(``loader``) checks every key before any work starts: an unknown key, a
value of the wrong type or an impossible value is a ``ConfigError`` that
names the file, the section and the key.  Command-line options override the
file through ``load_config(..., overrides=...)`` and are checked the same way.
"""

from cadenza.config.choices import (
    ALL_SHIFTS,
    APIS,
    CC_CONTROLS,
    CLOCKS,
    DEFAULT_CC,
    GRAPH_RUNNERS,
    GRID_BEATS,
    GRIDS,
    KEY_AUTO,
    KEY_CALL,
    KEY_OFF,
    KEY_SETTINGS,
    MAX_OPSET,
    MAX_SHIFT,
    MIN_OPSET,
    MODES,
    PRESETS,
    RECURRENT_ACTIVATIONS,
    REGISTERS,
    RHYTHMS,
    RUNNERS,
    SPLITS,
    STRATEGIES,
    TOKENIZERS,
    VOCAB_ORDERS,
)
from cadenza.config.loader import as_dict, load_config, parse_assignment
from cadenza.config.sections import (
    SECTIONS,
    Config,
    DataConfig,
    EngineSettings,
    ExportConfig,
    LiveConfig,
    TrainConfig,
    transpose_shifts,
)

__all__ = [
    "ALL_SHIFTS", "APIS", "CC_CONTROLS", "CLOCKS", "DEFAULT_CC", "GRID_BEATS", "GRIDS",
    "KEY_AUTO", "KEY_CALL", "KEY_OFF", "KEY_SETTINGS", "MAX_OPSET", "MAX_SHIFT", "MIN_OPSET",
    "MODES", "PRESETS", "RECURRENT_ACTIVATIONS", "REGISTERS", "RHYTHMS", "RUNNERS", "GRAPH_RUNNERS", "SECTIONS",
    "SPLITS", "STRATEGIES", "TOKENIZERS", "VOCAB_ORDERS", "Config", "DataConfig",
    "EngineSettings", "ExportConfig", "LiveConfig", "TrainConfig", "as_dict", "load_config",
    "parse_assignment", "transpose_shifts",
]
