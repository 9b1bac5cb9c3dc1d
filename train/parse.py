"""One file -> token sequences, with music21 (runs inside parser processes).

The rule for piano music is the original notebook's, exactly:
``instrument.partitionByInstrument`` splits the score by instrument; every
part whose name contains ``Piano`` is kept, and its notes and chords, in
``recurse()`` order, part after part, make the file's one sequence.  A Note
becomes ``str(pitch)``; a Chord its ``normalOrder`` pitch classes joined
with ``.``.

Scores with no piano part (chorales, quartets) have no such sequence, so
each written part becomes its own sequence of notes, and, with ``chordify``
on, the whole score chordified becomes one more sequence, whose vertical
sonorities give the vocabulary chords as well as notes.

Notes of MIDI files keep music21's own spelling (the same as
``cadenza.tokens.midi_to_name``, which the tests prove).  Scores (MusicXML,
kern, ...) get two more rules, because a performer's MIDI notes are what the
model will hear: notes are respelled the way music21 spells MIDI input
(``D-4`` in a score is ``C#4``), and a note (or a chordified slice) that
only continues a tie is no new onset, so it gives no token.

A MIDI file reaches music21 only after ``midifile.check_midi`` has found its
chunks and events well-formed and its length sane; a file that gives no
tokens comes back as a reason, never as an exception (``parse_job``).

With ``tokenizer = "fast"`` (the default) a checked MIDI file is read by
``fastmidi`` instead, which gives the same tokens without music21; a file it
does not reproduce (``fastmidi.Unsupported``) is read by music21 after all.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cadenza.files import is_midi_name
from cadenza.tokens import SCHEME_VERSION, midi_to_name, notes_token
from cadenza.train.midifile import MidiLayout, ParseFailure, check_midi, size_problem

log = logging.getLogger(__name__)

__all__ = ["ParseFailure", "ParseSettings", "parse_file", "parse_job", "tokens_of_score"]

#: Bumped whenever this module turns the same file into different tokens.
#: 2: format-2 MIDI files are read, one sequence per pattern.
PARSER_VERSION = 2
PIANO_MARK = "Piano"


@dataclass(frozen=True)
class ParseSettings:
    """Everything besides the file's bytes that decides its tokens."""

    chordify: bool = True
    piano_mark: str = PIANO_MARK
    tokenizer: str = "fast"  # for MIDI files: config.TOKENIZERS

    def fingerprint(self) -> dict[str, Any]:
        """What the cache key holds: the rules, and which tokenizer made the entry."""
        document = {"parser": PARSER_VERSION, "token_scheme": SCHEME_VERSION, **asdict(self)}
        if self.tokenizer == "fast":
            from cadenza.train.fastmidi import FAST_VERSION

            document["fast_version"] = FAST_VERSION
        return document


def _is_piano(part: Any, mark: str) -> bool:
    # str(part) is what the original tested; partName catches the parts
    # whose id is a number (partitionByInstrument names them "Instrument 7").
    return mark in str(part) or mark in (part.partName or "")


def _continues_tie(note: Any) -> bool:
    return note.tie is not None and note.tie.type in ("stop", "continue")


def _element_tokens(stream: Any, score_rules: bool) -> list[str]:
    from music21 import chord, note

    tokens = []
    for element in stream.recurse():
        if isinstance(element, note.Note):
            if score_rules and _continues_tie(element):
                continue
            pitch = element.pitch
            tokens.append(midi_to_name(pitch.midi) if score_rules else str(pitch))
        elif isinstance(element, chord.Chord):
            if score_rules and all(_continues_tie(n) for n in element.notes):
                continue
            tokens.append(".".join(str(pc) for pc in element.normalOrder))
    return tokens


def _chordified_tokens(score: Any) -> list[str]:
    from music21 import chord

    tokens = []
    for element in score.chordify().recurse():
        if not isinstance(element, chord.Chord) or not element.pitches:
            continue
        if all(_continues_tie(n) for n in element.notes):
            continue
        # A slice where all voices sound one note is that note, as a
        # performer's unison would be in the live engine.
        tokens.append(notes_token([p.midi for p in element.pitches]))
    return tokens


def tokens_of_score(score: Any, settings: ParseSettings, score_rules: bool) -> list[list[str]]:
    """The token sequences of a parsed music21 score (see the module's rules)."""
    from music21 import instrument

    partitioned = instrument.partitionByInstrument(score)
    parts = list(partitioned.parts) if partitioned is not None else []
    piano = [part for part in parts if _is_piano(part, settings.piano_mark)]
    if piano:
        return [[t for part in piano for t in _element_tokens(part, score_rules)]]
    written = list(score.parts) if hasattr(score, "parts") and score.parts else [score]
    sequences = [_element_tokens(part, score_rules) for part in written]
    if settings.chordify and len(written) > 1:
        sequences.append(_chordified_tokens(score))
    return [s for s in sequences if s]


def _scores(path: Path, layout: MidiLayout | None) -> list[Any]:
    if layout is None:
        from music21 import converter

        return [converter.parse(path)]
    # music21 reads the checked chunks, not the file: it then never meets a
    # chunk that lies about its length, and a format-2 file's patterns
    # come apart.
    from music21.midi import translate

    return [translate.midiStringToStream(music) for music in layout.music()]


def parse_file(path: str | Path, settings: ParseSettings) -> list[list[str]]:
    """Token sequences of one file; ``ParseFailure`` says why there are none."""
    path = Path(path)
    try:
        too_large = size_problem(path.stat().st_size)
        if too_large:
            raise ParseFailure(too_large)
        data = path.read_bytes()
    except OSError as err:
        raise ParseFailure(f"cannot read it: {err.strerror or err}") from err
    if not data:
        raise ParseFailure("empty file")
    is_midi = is_midi_name(path)
    layout = check_midi(data) if is_midi else None
    if layout is not None and settings.tokenizer == "fast":
        fast = _fast_sequences(path, layout, settings)
        if fast is not None:
            return fast
    with warnings.catch_warnings():
        # music21 warns about every track name it cannot map to an
        # instrument; those are harmless and would drown the real warnings.
        warnings.simplefilter("ignore")
        try:
            sequences = [
                sequence
                for score in _scores(path, layout)
                for sequence in tokens_of_score(score, settings, score_rules=not is_midi)
            ]
        except Exception as err:  # music21 raises many types on bad input
            raise ParseFailure(f"music21 cannot read it: {type(err).__name__}: {err}") from err
    if not sequences:
        raise ParseFailure("no notes or chords in it")
    return sequences


def _fast_sequences(path: Path, layout: MidiLayout, settings: ParseSettings
                    ) -> list[list[str]] | None:
    """The fast tokenizer's sequences, or None when music21 must read the file."""
    from cadenza.train.fastmidi import Unsupported, fast_sequences

    if settings.piano_mark != PIANO_MARK:
        return None  # the fast path knows only the original's rule
    try:
        sequences = fast_sequences(layout)
    except Unsupported as err:
        log.debug("%s: read by music21: %s", path, err)
        return None
    except Exception as err:  # symusic or a bug: the reference still has the answer
        log.warning("%s: the fast tokenizer failed (%s: %s); reading it with music21",
                    path, type(err).__name__, err)
        return None
    if not sequences:
        raise ParseFailure("no notes or chords in it")
    return sequences


class ParseTimeout(BaseException):
    """One file's time ran out.

    A BaseException, so that no ``except Exception`` inside music21 can
    swallow it and parse on.
    """


REARM_SECONDS = 0.1


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ``ParseTimeout`` in this thread after ``seconds`` (0: no limit).

    music21 is pure Python, so a timer signal interrupts it anywhere.  Only
    the main thread receives signals: elsewhere there is no limit.
    """
    if (seconds <= 0 or threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise ParseTimeout

    def drop_our_own(unraisable: Any) -> None:
        # The signal landed in a callback that cannot raise (a gc callback,
        # a finalizer): Python reports it as unraisable.  It is ours and
        # expected; the next re-arm raises it where it can be raised.  Handing
        # it on would run the host's reporting (a test runner's, say) while
        # the timer keeps firing into it.
        if not isinstance(unraisable.exc_value, ParseTimeout):
            previous_hook(unraisable)

    previous = signal.signal(signal.SIGALRM, expire)
    previous_hook, sys.unraisablehook = sys.unraisablehook, drop_our_own
    # Then again every 0.1 s: a bare ``except:`` inside music21 that happens
    # to catch the first one must not buy the file unlimited time.
    signal.setitimer(signal.ITIMER_REAL, seconds, REARM_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_hook


def parse_job(
    path: str, settings: ParseSettings, time_limit: float = 0.0
) -> tuple[list[list[str]] | None, str | None, bool]:
    """Process-pool entry point: (sequences, None, True) or (None, reason, cacheable).

    Never raises.  A reason is cacheable when it is a fact about the file;
    running out of time is not (a longer limit or a faster machine may
    finish), so that file is tried again next time.
    """
    # Imported before the clock starts: the limit is for the file, and a
    # fresh parser process spends a second importing music21 (which the
    # fast tokenizer needs only for a file it leaves to music21).
    if settings.tokenizer == "fast" and is_midi_name(Path(path)):
        import symusic  # noqa: F401
    else:
        from music21 import converter  # noqa: F401
        from music21.midi import translate  # noqa: F401

    try:
        with _time_limit(time_limit):
            return parse_file(path, settings), None, True
    except ParseTimeout:
        return None, f"parsing took longer than {time_limit:g} s ([data] parse_timeout)", False
    except ParseFailure as err:
        return None, str(err), True
    except Exception as err:  # a bug or an odd file must not stop the whole run
        # Out of memory says as little about the file as out of time.
        return None, f"unexpected {type(err).__name__}: {err}", not isinstance(err, MemoryError)
