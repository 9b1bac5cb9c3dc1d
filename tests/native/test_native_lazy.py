"""The lazy model step: ``feed`` and ``reset`` only record what is owed, and
every distribution is, bit for bit, the one of the eager step.

The eager reference is the same runner caught up after every call
(``catch_up``: the steps ``feed`` and ``reset`` used to run at once).  The
lazy one is asked only now and then, so its steps run in bunches, after
resets, across the 2 * window re-priming and through an overflowing queue
(more than ``MAX_PENDING`` feeds without an ask).
"""

from __future__ import annotations

import numpy as np
import pytest

from cadenza import native
from cadenza.bundle import bundled_model_path, read_bundle
from cadenza.errors import ModelError
from tests.support.native_support import require_native


@pytest.fixture(autouse=True)
def _library():
    require_native()


def _keep(window: int, count: int, fill: int) -> int:
    """Tokens reset steps (StreamRunner.reset's skipping, after the left-fill)."""
    total = count + (window - count if count < window and fill else 0)
    return total if total <= window else window + (total - window) % window


def _pair(int8: bool = False):
    bundle = read_bundle(bundled_model_path())
    if int8 and not native.NativeStreamRunner(bundle).weights.has_int8:
        pytest.skip("the bundled model's native weights hold no int8 section")
    return bundle, native.NativeStreamRunner(bundle, int8=int8), native.NativeStreamRunner(bundle, int8=int8)


def _same(lazy, eager) -> None:
    assert lazy.length == eager.length
    got, want = lazy.distribution(), eager.distribution()
    assert got.tobytes() == want.tobytes()
    assert lazy.pending == 0


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_lazy_distributions_are_the_eager_ones_bit_for_bit(int8):
    bundle, lazy, eager = _pair(int8)
    size, window = bundle.vocab_size, bundle.window
    rng = np.random.default_rng(26)

    def feed(index: int) -> None:
        lazy.feed(index)
        eager.feed(index)
        eager.catch_up()

    def reset(primer: list[int]) -> None:
        lazy.reset(primer)
        eager.reset(primer)
        eager.catch_up()

    asked = overflowed = 0
    lengths = (0, 1, window - 1, window, window + 1, 2 * window, 3 * window + 7)
    for round_ in range(40):
        reset(rng.integers(0, size, lengths[round_ % len(lengths)]).tolist())
        if round_ % 3 == 0:  # a reset, then another before anything was stepped
            reset(rng.integers(0, size, int(rng.integers(0, 2 * window))).tolist())
        # Feeds before any ask: sometimes many more than the queue holds.
        for _ in range(int(rng.integers(0, 3 * native.MAX_PENDING))):
            feed(int(rng.integers(0, size)))
            overflowed += lazy.pending == native.MAX_PENDING
        _same(lazy, eager)
        asked += 1
        # Then a stream past the re-priming, asked at random gaps.
        for _ in range(int(rng.integers(window, 3 * window))):
            feed(int(rng.integers(0, size)))
            if rng.random() < 0.3:
                _same(lazy, eager)
                asked += 1
        _same(lazy, eager)
    assert asked > 500 and overflowed > 100


def test_feed_and_reset_step_nothing_until_asked():
    bundle, lazy, eager = _pair()
    size, window, fill = bundle.vocab_size, bundle.window, len(lazy.fill)
    primer = list(range(3 * window + 7))
    lazy.reset(primer)
    keep = _keep(window, len(primer), fill)
    assert lazy.pending == keep and lazy.length == keep  # the length it will have
    for k in range(native.MAX_PENDING):
        lazy.feed(k % size)
        assert lazy.pending == keep + k + 1
    # Full: the reset (owed first) and the oldest token are stepped, the newest queued.
    lazy.feed(5)
    assert lazy.pending == native.MAX_PENDING
    lazy.catch_up()
    assert lazy.pending == 0
    eager.reset(primer)
    eager.catch_up()
    for index in [k % size for k in range(native.MAX_PENDING)] + [5]:
        eager.feed(index)
        eager.catch_up()
    _same(lazy, eager)
    # An invalid index is refused and owes nothing.
    with pytest.raises(ModelError):
        lazy.feed(size)
    assert lazy.pending == 0


def test_a_reset_drops_what_an_earlier_one_owed():
    bundle, lazy, eager = _pair()
    lazy.reset([1, 2, 3])
    for k in range(10):
        lazy.feed(k)
    lazy.reset([7, 8])
    assert lazy.pending == _keep(bundle.window, 2, len(lazy.fill))
    eager.reset([7, 8])
    eager.catch_up()
    _same(lazy, eager)
