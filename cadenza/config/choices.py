"""Every choice a setting offers, in one place.

The config checks, the CLI's ``choices=`` and the code that acts on them all
derive from these.
"""

from __future__ import annotations

# ONNX opsets the exporter may ask for: 17 has every operator the graphs
# need; tf2onnx 1.17 converts to at most 18.
MIN_OPSET, MAX_OPSET = 17, 18

PRESETS = ("seed", "default")
SPLITS = ("windows", "pieces")
STRATEGIES = ("default", "mirrored", "multi-worker")
# The LSTM gates' activation: today's Keras "sigmoid", or the piecewise-linear
# "hard_sigmoid" that Keras up to 2.2 used by default (the original's era).
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
# Which index each token gets: by count (commonest first), or a permutation
# of that drawn with the run's seed, as the original's set() order was.
VOCAB_ORDERS = ("count", "shuffled")
# How the model runs: onnxruntime's stream or window graph, or the native
# step (the stream semantics in C++, built with `make native`).
RUNNERS = ("stream", "window", "native")
#: The runners with ONNX graphs of their own (and int8 twins).
GRAPH_RUNNERS = ("stream", "window")
MODES = ("call-response", "accompany", "continue")
RHYTHMS = ("grid", "mirror")
CLOCKS = ("internal", "midi")
APIS = ("auto", "alsa", "jack", "coremidi", "windows")
#: Length of one grid step in beats (quarter notes), by grid name.
GRID_BEATS = {
    "1/4": 1.0,
    "1/8": 0.5,
    "1/16": 0.25,
    "1/4t": 2.0 / 3.0,
    "1/8t": 1.0 / 3.0,
    "1/16t": 1.0 / 6.0,
}
GRIDS = tuple(GRID_BEATS)
# How MIDI files become tokens: "fast" reads them with symusic and does
# music21's work in numpy; "music21" is the reference (and always the path
# for scores: MusicXML, kern, the music21 corpus).
TOKENIZERS = ("fast", "music21")
#: The shifts ``[train] transpose = "all"`` trains on: every key once, the
#: original (0) among them, no copy moved more than half an octave down.
ALL_SHIFTS = tuple(range(-5, 7))
MAX_SHIFT = 11
#: [live] key: follow the window's key, leave the model alone, or a key name
#: ("D major", "F# minor", "Bb major": anything cadenza.key.parse_key reads).
#: "call" leans towards the window's own pitch classes, as often as each sounds
#: (finer than a key: what was just played, not its scale).
KEY_AUTO, KEY_OFF, KEY_CALL = "auto", "off", "call"
KEY_SETTINGS = (KEY_AUTO, KEY_OFF, KEY_CALL)
#: [live] register: place single notes near the performer, or as the model gave them.
REGISTERS = ("follow", "model")
#: What a MIDI CC can steer in the live engine ([live.cc] maps name -> CC number),
#: and the controllers they answer to by default (general-purpose CCs 21-26).
DEFAULT_CC = {
    "temperature": 21, "mode": 22, "enabled": 23, "panic": 24, "tempo": 25, "key_strength": 26,
}
CC_CONTROLS = tuple(DEFAULT_CC)
