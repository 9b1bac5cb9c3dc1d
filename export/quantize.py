"""int8: dynamically quantized twins of the graphs, kept only when they hold up.

onnxruntime's dynamic quantizer stores the weights (LSTM and MatMul) as int8
and quantizes activations on the fly; the graph keeps its tensor names, so
the manifest entry is the fp32 one with another file.  A quantized graph is
kept only if its held-out accuracy is less than ``max_drop`` below the fp32
graph's: an improviser that plays faster but worse is no gain.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cadenza.errors import ExportError

log = logging.getLogger(__name__)


def quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs a line per tensor on the root logger; that is not our log.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    except Exception as err:  # the quantizer raises whatever onnx raises
        raise ExportError(f"{target.name}: int8 quantization of {source.name} failed: {err}") from err
    finally:
        logging.disable(previous)


@dataclass(frozen=True)
class Int8Decision:
    kind: str
    file: str
    windows: int
    top1_agreement: float
    max_abs_diff: float
    accuracy_fp32: float
    accuracy_int8: float
    drop: float
    max_drop: float

    @property
    def kept(self) -> bool:
        return self.drop < self.max_drop

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"kept": self.kept}


def decide(
    kind: str,
    file: str,
    fp32_probs: np.ndarray,
    int8_probs: np.ndarray,
    targets: np.ndarray,
    max_drop: float,
) -> Int8Decision:
    """Compare an int8 graph's answers with its fp32 original on held-out windows."""
    fp32_best = np.asarray(fp32_probs).argmax(axis=1)
    int8_best = np.asarray(int8_probs).argmax(axis=1)
    accuracy_fp32 = float(np.mean(fp32_best == targets))
    accuracy_int8 = float(np.mean(int8_best == targets))
    decision = Int8Decision(
        kind=kind,
        file=file,
        windows=len(targets),
        top1_agreement=float(np.mean(fp32_best == int8_best)),
        max_abs_diff=float(np.abs(np.asarray(fp32_probs) - np.asarray(int8_probs)).max()),
        accuracy_fp32=accuracy_fp32,
        accuracy_int8=accuracy_int8,
        drop=accuracy_fp32 - accuracy_int8,
        max_drop=max_drop,
    )
    log.info(
        "%s: top-1 agreement with fp32 %.2f%%, held-out accuracy %.2f%% (fp32 %.2f%%): %s",
        kind,
        100 * decision.top1_agreement,
        100 * accuracy_int8,
        100 * accuracy_fp32,
        "kept"
        if decision.kept
        else f"dropped, it loses {100 * decision.drop:.2f} points (limit {100 * max_drop:.2f})",
    )
    return decision
