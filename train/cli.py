"""Handlers of ``cadenza train`` and ``cadenza generate``.

TensorFlow and music21 are imported only inside the work itself, so that
``cadenza generate`` on an exported bundle runs on the light install.
"""

from __future__ import annotations

import argparse
import logging

from cadenza.config import Config
from cadenza.sampling import SamplingSettings

log = logging.getLogger(__name__)


def run_train(args: argparse.Namespace, config: Config) -> int:
    from cadenza.train.training import train

    report = train(config, resume=args.resume)
    return 130 if report.get("interrupted") else 0


def run_generate(args: argparse.Namespace, config: Config) -> int:
    from cadenza.train.generate import generate_file

    if args.length < 1:
        from cadenza.errors import ConfigError

        raise ConfigError(f"--length {args.length}: must be at least 1")
    live = config.live
    settings = SamplingSettings(
        temperature=live.temperature,
        top_k=live.top_k,
        top_p=live.top_p,
        loop_guard=0,  # the original's generation: plain argmax, loops and all
    )
    generate_file(args.model, args.out, length=args.length, seed=live.seed, settings=settings)
    return 0
