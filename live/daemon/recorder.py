"""Recording a session (performer and Cadenza) to a standard MIDI file.

Messages are collected with their absolute times in seconds, then written
as a type 1 file: a conductor track with the tempo map, a "Performer" track
and a "Cadenza" track.  Seconds become ticks through the tempo map, so the
file plays back exactly as it was heard and a sequencer shows Cadenza's
notes on its grid.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import mido

from cadenza.errors import MidiFileError
from cadenza.files import write_atomic
from cadenza.live.engine.events import is_note_on, is_release

log = logging.getLogger(__name__)

TRACKS = {"performer": "Performer", "cadenza": "Cadenza"}
TICKS_PER_BEAT = 480


def _recordable(message: mido.Message) -> bool:
    # Clock, start/stop and other real-time bytes have no place in a file.
    return hasattr(message, "channel") or message.type == "sysex"


class Recorder:
    """Collects timestamped messages of both voices; ``save`` writes the file.

    ``start_time`` is the caller's clock reading that becomes the start of
    the file; anything earlier is written at the start.
    """

    def __init__(self, bpm: float, *, start_time: float = 0.0, ticks_per_beat: int = TICKS_PER_BEAT) -> None:
        if bpm <= 0:
            raise ValueError(f"tempo must be positive, got {bpm}")
        self.start_time = float(start_time)
        self.ticks_per_beat = int(ticks_per_beat)
        self._tempos: list[tuple[float, float]] = [(0.0, float(bpm))]
        self._messages: dict[str, list[tuple[float, int, mido.Message]]] = {name: [] for name in TRACKS}
        self._order = 0

    def add(self, time: float, message: mido.Message, track: str = "performer") -> None:
        """Record ``message`` at ``time`` (seconds on the caller's clock)."""
        if track not in TRACKS:
            raise ValueError(f"unknown track {track!r} (known: {', '.join(TRACKS)})")
        if not _recordable(message):
            return
        self._order += 1  # equal times keep the order they were added in
        self._messages[track].append((max(0.0, time - self.start_time), self._order, message))

    def add_tempo(self, time: float, bpm: float) -> None:
        """A tempo change from ``time`` on."""
        if bpm <= 0:
            raise ValueError(f"tempo must be positive, got {bpm}")
        tempos = self._tempos
        if tempos[-1][1] == bpm:
            return
        # The map only grows forwards: a change reported late takes effect
        # at the latest change already recorded.
        at = max(0.0, time - self.start_time, tempos[-1][0])
        if at == tempos[-1][0]:
            tempos[-1] = (at, float(bpm))
        else:
            tempos.append((at, float(bpm)))

    def __len__(self) -> int:
        return sum(len(m) for m in self._messages.values())

    def _ticks(self, seconds: float) -> int:
        """Seconds from the start to ticks, through the tempo map."""
        ticks = 0.0
        tempos = self._tempos
        for i, (start, bpm) in enumerate(tempos):
            end = tempos[i + 1][0] if i + 1 < len(tempos) else None
            if end is not None and seconds > end:
                ticks += (end - start) * bpm / 60.0 * self.ticks_per_beat
                continue
            ticks += (seconds - start) * bpm / 60.0 * self.ticks_per_beat
            break
        return round(ticks)

    def _tempo_ticks(self) -> list[tuple[int, float]]:
        return [(self._ticks(start), bpm) for start, bpm in self._tempos]

    def to_midifile(self) -> mido.MidiFile:
        midi = mido.MidiFile(type=1, ticks_per_beat=self.ticks_per_beat)
        conductor = mido.MidiTrack()
        conductor.append(mido.MetaMessage("track_name", name="Tempo", time=0))
        conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
        midi.tracks.append(conductor)
        self._append_delta(
            conductor,
            [(t, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for t, bpm in self._tempo_ticks()],
        )
        for key, name in TRACKS.items():
            track = mido.MidiTrack()
            track.append(mido.MetaMessage("track_name", name=name, time=0))
            timed = sorted(self._messages[key], key=lambda item: (item[0], item[1]))
            events = [(self._ticks(t), m) for t, _, m in timed]
            events.extend(self._close_hanging(events))
            self._append_delta(track, events)
            midi.tracks.append(track)
        return midi

    @staticmethod
    def _close_hanging(events: list[tuple[int, mido.Message]]) -> list[tuple[int, mido.Message]]:
        # A session cut short (Ctrl-C, a crash) may leave notes on; the file
        # still ends every note it starts.
        on: dict[tuple[int, int], int] = {}
        for _, message in events:
            if is_note_on(message):
                key = (message.channel, message.note)
                on[key] = on.get(key, 0) + 1
            elif is_release(message):
                key = (message.channel, message.note)
                if on.get(key):
                    on[key] -= 1
        end = events[-1][0] if events else 0
        return [
            (end, mido.Message("note_off", channel=channel, note=note))
            for (channel, note), count in sorted(on.items())
            for _ in range(count)
        ]

    @staticmethod
    def _append_delta(track: mido.MidiTrack, events: list) -> None:
        previous = 0
        for tick, message in events:
            track.append(message.copy(time=tick - previous))
            previous = tick
        track.append(mido.MetaMessage("end_of_track", time=0))

    def save(self, path: str | Path) -> Path:
        """Write the standard MIDI file; returns its path.

        The file is written under a temporary name beside ``path`` and then
        renamed over it, so a full disk or a crash mid-write never leaves a
        truncated file (or spoils an earlier recording of the same name).
        """
        path = Path(path)
        midi = self.to_midifile()
        try:
            write_atomic(path, lambda temporary: midi.save(temporary))
        except OSError as err:
            raise MidiFileError(f"{path}: cannot write MIDI file: {err}") from err
        log.info("wrote %s (%d messages)", path, len(self))
        return path


def check_writable(path: str | Path) -> Path:
    """Fail now, naming ``path``, if a recording could not be saved there later.

    ``cadenza live --record`` calls this before it opens any port: finding an
    unwritable folder only at the end would lose the whole session.
    """
    path = Path(path)
    if path.is_dir():
        raise MidiFileError(f"{path}: cannot record there: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise MidiFileError(f"{path}: cannot record there: {err}") from err
    if path.exists() and not os.access(path, os.W_OK):
        raise MidiFileError(f"{path}: cannot record there: the file is not writable")
    return path
