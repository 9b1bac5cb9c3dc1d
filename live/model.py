"""The model ``cadenza live``, ``simulate`` and ``evaluate`` run, from the live settings."""

from __future__ import annotations

import logging

from cadenza.bundle import MANIFEST, bundled_model_path, read_bundle
from cadenza.config import LiveConfig
from cadenza.errors import BundleError
from cadenza.runtime import StreamRunner, WindowRunner, load_predictor

log = logging.getLogger(__name__)


def load_live_predictor(settings: LiveConfig) -> StreamRunner | WindowRunner:
    """The predictor ``cadenza live`` and ``simulate`` run: the settings' model ("" -> the bundled
    model), runner and int8 choice, with a clear refusal when there is no model."""
    if not settings.model and not (bundled_model_path() / MANIFEST).is_file():
        raise BundleError(
            f"{bundled_model_path()}: no bundled model in this installation; pass "
            "--model BUNDLE, or train and export one (cadenza train, then cadenza export)"
        )
    int8 = settings.int8
    if int8 and settings.runner != "native":  # the native step's own warning comes later
        bundle = read_bundle(settings.model or bundled_model_path())
        if f"{settings.runner}_int8" not in bundle.graphs:
            log.warning(
                "%s: no int8 %s graph in this bundle (export with --int8 to add one "
                "where it keeps accuracy); using the fp32 graph",
                bundle.path, settings.runner,
            )
            int8 = False
    return load_predictor(settings.model or None, runner=settings.runner, int8=int8)
