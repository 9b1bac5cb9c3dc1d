"""Print the results tables of docs/results.md from training reports.

Reads every ``RUNS/*/report.json`` (what ``cadenza train`` writes last) and
the training report inside each bundle given with ``--bundle`` (the bundled
model's run is committed only as its bundle), and prints one markdown table
per data source: held-out (test) and training accuracy and loss of the next
token after each window.  Runs on seed-mozart get the original notebook's
published figures as their first row.

A run folder with no ``report.json`` but a ``history.csv`` (in the folder,
or in the trainer's staging folder ``.partial-*`` inside it) is still
training, or was stopped: it gets a row marked unfinished, with the best
held-out figures of the epochs logged so far.

    python scripts/results_table.py                      # print the tables
    python scripts/results_table.py --update docs/results.md
    python scripts/results_table.py --runs docs/results --update docs/results.md   # the committed runs

``--update`` replaces the text between the ``<!-- results:begin -->`` and
``<!-- results:end -->`` lines of that file and leaves the rest alone.
Only the standard library is used, so this runs anywhere.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
REPORT = "report.json"
HISTORY = "history.csv"
MANIFEST = "model.json"
STAGING = ".partial-"  # the trainer's staging folder inside a run's output folder

# The original notebook's figures after 120 epochs on its three Mozart
# pieces, shuffled-window split: as it printed them, not re-measured.
ORIGINAL = {
    "train_accuracy": 0.8257,
    "train_loss": 0.5014,
    "test_accuracy": 0.5220,
    "test_loss": 2.5357,
}
ORIGINAL_DATA = "seed-mozart"
SEED_PRESET_SEED = 42  # scripts/reproduce_seed.sh's seed

HEADER = (
    "| model | split | epochs (best) | judged | test accuracy | test loss "
    "| train accuracy | train loss | best epoch: test accuracy / loss "
    "| windows train / test | where |"
)
RULE = "|---|---|---|---|---|---|---|---|---|---|---|"


@dataclass
class Row:
    source: str  # the data, as a heading
    preset: str
    split: str
    cells: list[str]
    finished: bool
    identity: tuple = ()  # (data digest, created): one run seen twice is shown once


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _source_label(sources: Sequence[str]) -> str:
    """A stable heading for a run's data: folder names, or the corpus names."""
    labels = []
    for source in sources:
        text = str(source)
        labels.append(text if text.startswith("music21:") else Path(text).name or text)
    return " + ".join(labels) or "unknown data"


def _model_label(report: dict) -> str:
    preset = report.get("preset", "?")
    units = report.get("lstm_units")
    label = f"`{preset}`" + (f", LSTM {units}" if units and units != 256 else "")
    scale = report.get("input_scale")
    if preset == "seed" and scale not in (None, 1, 1.0):
        # Runs made before the seed preset fed raw indices, as the original does.
        label += ", index / V input (superseded)"
    if report.get("vocab_order") == "shuffled":
        label += ", tokens numbered in a seeded shuffled order"
    if report.get("recurrent_activation") == "hard_sigmoid":
        label += ", Keras 2.2 gates (hard_sigmoid)"
    seed = report.get("config", {}).get("train", {}).get("seed")
    if preset == "seed" and seed not in (None, SEED_PRESET_SEED):
        # The spread of the original's recipe: the same run with another seed
        # (its split and its initial weights).
        label += f", seed {seed}"
    return label


def row_from_report(report: dict, where: str) -> Row:
    epochs = report.get("epochs")
    requested = report.get("epochs_requested")
    best = report.get("best_epoch")
    epoch_text = f"{epochs}" if epochs == requested or requested is None else f"{epochs} of {requested}"
    if best is not None:
        epoch_text += f" ({best})"
    if report.get("interrupted"):
        epoch_text += ", stopped"
    windows = ""
    if report.get("train_windows") is not None:
        windows = f"{report['train_windows']} / {report.get('test_windows', '?')}"
    # Reports before the trainer recorded it kept their best epoch.
    last = report.get("kept_epoch", "best") == "last"
    # A run judged by its last epoch reports train figures as Keras printed
    # them (running means, dropout on), as the original notebook did.
    train_accuracy = report.get("train_accuracy_keras") if last else None
    train_loss = report.get("train_loss_keras") if last else None
    best = ""
    if report.get("best_test_accuracy") is not None:
        best = f"{_fmt(report['best_test_accuracy'])} / {_fmt(report.get('best_test_loss'))}"
    cells = [
        _model_label(report),
        str(report.get("split", "?")),
        epoch_text,
        "last epoch" if last else "best epoch",
        _fmt(report.get("test_accuracy")),
        _fmt(report.get("test_loss")),
        _fmt(train_accuracy if train_accuracy is not None else report.get("train_accuracy")),
        _fmt(train_loss if train_loss is not None else report.get("train_loss")),
        best,
        windows,
        where,
    ]
    return Row(_source_label(report.get("sources", [])), str(report.get("preset", "")),
               str(report.get("split", "")), cells, True,
               (report.get("data_digest"), report.get("created")))


def _history_of_unfinished(folder: Path) -> Path | None:
    """The history.csv a run in progress is writing: in its staging folder
    (``.partial-*``, where the trainer keeps every file until the run ends),
    the newest one if a killed run left another behind; or in the folder itself."""
    staged = sorted(folder.glob(f"{STAGING}*/{HISTORY}"), key=lambda p: p.stat().st_mtime)
    if staged:
        return staged[-1]
    return folder / HISTORY if (folder / HISTORY).is_file() else None


def _unfinished_row(folder: Path, history: Path, where: str) -> Row | None:
    """A run still training: the best held-out epoch so far, from its history.csv."""
    try:
        with history.open(newline="", encoding="utf-8") as handle:
            epochs = [r for r in csv.DictReader(handle) if r.get("val_loss")]
    except (OSError, csv.Error):
        return None
    # The run's own settings are in its log only once it ends; the folder
    # name is what the person who started it chose to call it.
    name = folder.name
    preset = "seed" if "seed" in name else "default" if "default" in name else "?"
    split = "pieces" if "pieces" in name else "windows" if "windows" in name else "?"
    if epochs:
        best_index, best = min(enumerate(epochs), key=lambda item: float(item[1]["val_loss"]))
        test_acc, test_loss = _fmt(float(best["val_accuracy"])), _fmt(float(best["val_loss"]))
        epoch_text = f"{len(epochs)} so far ({best_index + 1})"
    else:
        test_acc = test_loss = ""
        epoch_text = "0 so far"
    cells = [f"`{preset}`", split, epoch_text, "best so far", test_acc, test_loss, "", "",
             "", "", f"{where}, *unfinished*"]
    source = _guess_source(folder)
    return Row(source, preset, split, cells, False)


def _guess_source(folder: Path) -> str:
    # An unfinished run has no report naming its data; the convention of
    # this repository's runs is "<data>-<preset>-<split>" (runs/mozart-seed-windows).
    return ORIGINAL_DATA if folder.name.startswith("mozart") else "unknown data (unfinished)"


def collect(runs: Path, bundles: Sequence[Path], root: Path) -> list[Row]:
    rows: list[Row] = []
    # Bundles first: a bundle is committed and its run folder is not, so a
    # run seen both ways is shown where a reader of the repository finds it.
    for bundle in bundles:
        if not (bundle / MANIFEST).is_file():
            continue  # not built yet
        manifest = _read_json(bundle / MANIFEST)
        report = ((manifest or {}).get("training") or {}).get("report")
        if isinstance(report, dict):
            rows.append(row_from_report(report, f"{_relative(bundle, root)} (bundle)"))
    shown = {row.identity for row in rows}
    for folder in sorted(p for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []:
        where = _relative(folder, root)
        report_path = folder / REPORT
        if report_path.is_file():
            report = _read_json(report_path)
            if report is not None:
                row = row_from_report(report, where)
                if row.identity not in shown:
                    rows.append(row)
        elif (history := _history_of_unfinished(folder)) is not None:
            row = _unfinished_row(folder, history, where)
            if row is not None:
                rows.append(row)
    return rows


def _relative(path: Path, root: Path) -> str:
    try:
        return f"`{path.resolve().relative_to(root.resolve()).as_posix()}`"
    except ValueError:
        return f"`{path}`"


def _read_json(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        print(f"warning: skipping {path}: {err}", file=sys.stderr)
        return None
    return document if isinstance(document, dict) else None


def _order(row: Row) -> tuple:
    # The brief's reading order: same split as the original first, seed before default.
    return ({"windows": 0, "pieces": 1}.get(row.split, 2),
            {"seed": 0, "default": 1}.get(row.preset, 2), not row.finished, row.cells[-1])


def render(rows: list[Row]) -> str:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.source, []).append(row)
    groups.setdefault(ORIGINAL_DATA, [])  # the original's row is always worth showing
    parts = []
    for source in sorted(groups, key=lambda s: (s != ORIGINAL_DATA, s)):
        lines = [f"#### {source}", "", HEADER, RULE]
        if source == ORIGINAL_DATA:
            lines.append(
                "| the original notebook, as published | windows | 120 | last epoch "
                f"| {ORIGINAL['test_accuracy']:.4f} | {ORIGINAL['test_loss']:.4f} "
                f"| {ORIGINAL['train_accuracy']:.4f} | {ORIGINAL['train_loss']:.4f} "
                "| | 5084 / 1272 | its notebook |"
            )
        lines.extend("| " + " | ".join(row.cells) + " |" for row in sorted(groups[source], key=_order))
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def update(document: Path, tables: str) -> None:
    text = document.read_text(encoding="utf-8")
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{document}: no {BEGIN} ... {END} lines to replace between")
    new = text[: begin + len(BEGIN)] + "\n\n" + tables + "\n" + text[end:]
    document.write_text(new, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=REPO / "runs",
                        help="folder of training runs (default: runs/)")
    parser.add_argument("--bundle", type=Path, action="append",
                        help="a model bundle whose training report to add "
                        "(default: models/default); may be repeated")
    parser.add_argument("--update", type=Path, metavar="MARKDOWN",
                        help=f"replace the tables between {BEGIN} and {END} in this file")
    args = parser.parse_args(argv)
    bundles = args.bundle if args.bundle is not None else [REPO / "models" / "default"]
    tables = render(collect(args.runs, bundles, REPO))
    if args.update:
        update(args.update, tables)
        print(f"updated {args.update}", file=sys.stderr)
    else:
        sys.stdout.write(tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
