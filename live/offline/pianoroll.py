"""``cadenza plot``: a duet MIDI file drawn as a piano roll.

Time runs left to right in beats (so the grid Cadenza plays on is the grid
drawn, whatever the tempo), pitch bottom to top; the performer and Cadenza
get one colour each, bar lines are darker than beat lines.  matplotlib comes
with the ``[plot]`` (or ``[train]``) extra and is imported only here, and
only through its object API: no pyplot, no global backend.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from cadenza.config import Config
from cadenza.errors import CadenzaError, MidiFileError
from cadenza.files import read_midi
from cadenza.live.engine.clock import BEATS_PER_BAR
from cadenza.live.engine.events import is_note_on, is_release
from cadenza.tokens import midi_to_name

log = logging.getLogger(__name__)

COLOURS = {"Performer": "#1f77b4", "Cadenza": "#ff7f0e"}
OTHER_COLOUR = "#7f7f7f"


class PlotUnavailable(CadenzaError, ImportError):
    """matplotlib is not installed."""


@dataclass(frozen=True)
class Note:
    start: float  # beats
    end: float
    pitch: int
    velocity: int


def read_notes(path: str | Path) -> dict[str, list[Note]]:
    """Notes of each track, keyed by track name; times in beats from the start."""
    path = Path(path)
    midi = read_midi(path)
    per_beat = float(midi.ticks_per_beat)
    tracks: dict[str, list[Note]] = {}
    for number, track in enumerate(midi.tracks):
        name = next((m.name.strip() for m in track if m.type == "track_name"), "") or f"Track {number}"
        tick = 0
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        notes: list[Note] = []
        for message in track:
            tick += message.time
            if is_note_on(message):
                open_notes.setdefault((message.channel, message.note), []).append((tick, message.velocity))
            elif is_release(message):
                started = open_notes.get((message.channel, message.note))
                if started:
                    begin, velocity = started.pop(0)
                    notes.append(Note(begin / per_beat, tick / per_beat, message.note, velocity))
        for (_, pitch), starts in open_notes.items():
            notes.extend(Note(b / per_beat, tick / per_beat, pitch, v) for b, v in starts)
        if notes:
            name = name if name not in tracks else f"{name} ({number})"
            tracks[name] = sorted(notes, key=lambda n: (n.start, n.pitch))
    return tracks


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise PlotUnavailable(
            'drawing a piano roll needs matplotlib: pip install ".[plot]" (from the Cadenza checkout)'
        ) from err
    return Figure


def plot_file(midi_path: str | Path, png_path: str | Path, *, title: str | None = None) -> Path:
    """Draw ``midi_path`` as a piano roll PNG at ``png_path``; returns the PNG's path."""
    figure_class = _figure_class()  # before reading: a missing extra is the first thing to say
    tracks = read_notes(midi_path)
    if not tracks:
        raise MidiFileError(f"{midi_path}: no notes to draw")
    png_path = Path(png_path)
    all_notes = [n for notes in tracks.values() for n in notes]
    length = max(BEATS_PER_BAR, max(n.end for n in all_notes))
    low = min(n.pitch for n in all_notes) - 2
    high = max(n.pitch for n in all_notes) + 2
    width = min(40.0, max(8.0, length * 0.35))
    height = min(12.0, max(4.0, (high - low) * 0.18))
    figure = figure_class(figsize=(width, height), dpi=100)
    axes = figure.subplots()
    for beat in range(int(length) + 2):
        bar = beat % BEATS_PER_BAR == 0
        axes.axvline(beat, color="#000000" if bar else "#cccccc", linewidth=0.8 if bar else 0.4, zorder=0)
    for name, notes in tracks.items():
        colour = COLOURS.get(name, OTHER_COLOUR)
        for note in notes:
            axes.add_patch(_rectangle(note, colour))
        axes.plot([], [], color=colour, linewidth=6, label=f"{name} ({len(notes)} notes)")
    axes.set_xlim(0, length + 0.5)
    axes.set_ylim(low, high)
    c_notes = [p for p in range(low, high + 1) if p % 12 == 0]
    axes.set_yticks(c_notes)
    axes.set_yticklabels([midi_to_name(p) for p in c_notes])
    axes.set_xlabel(f"beats (bars of {BEATS_PER_BAR})")
    axes.set_ylabel("pitch")
    axes.set_title(title or Path(midi_path).name)
    axes.legend(loc="upper right")
    figure.tight_layout()
    try:
        png_path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(png_path, format="png")
    except OSError as err:
        raise CadenzaError(f"{png_path}: cannot write the picture: {err}") from err
    log.info("drew %s", png_path)
    return png_path


def _rectangle(note: Note, colour: str):
    from matplotlib.patches import Rectangle

    alpha = 0.45 + 0.55 * note.velocity / 127.0  # louder notes are darker
    return Rectangle(
        (note.start, note.pitch - 0.4), max(note.end - note.start, 0.05), 0.8,
        facecolor=colour, edgecolor="#333333", linewidth=0.3, alpha=alpha,
    )


def run_plot(args: argparse.Namespace, config: Config) -> int:
    """The ``cadenza plot`` command."""
    plot_file(args.midi, args.out)
    return 0
