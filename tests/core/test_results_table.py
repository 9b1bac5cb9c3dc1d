"""scripts/results_table.py: the results tables from runs' reports, finished or not."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "results_table.py"


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def report(preset, split, test_accuracy, *, sources=("/data/seed-mozart",), created="t1", **extra):
    return {
        "preset": preset, "split": split, "sources": list(sources), "lstm_units": 256,
        "epochs": 120, "epochs_requested": 120, "best_epoch": 97, "interrupted": False,
        "test_accuracy": test_accuracy, "test_loss": 2.0, "train_accuracy": 0.9,
        "train_loss": 0.25, "train_windows": 5084, "test_windows": 1272,
        "data_digest": "d" + created, "created": created, **extra,
    }


def write_run(runs: Path, name: str, document: dict) -> None:
    (runs / name).mkdir(parents=True)
    (runs / name / "report.json").write_text(json.dumps(document))


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def test_no_runs_still_shows_the_originals_figures(table, tmp_path):
    text = table.render(table.collect(tmp_path / "runs", [], tmp_path))
    lines = table_lines(text)
    assert len(lines) == 2  # the header and the original's row
    assert "0.5220 | 2.5357 | 0.8257 | 0.5014" in lines[1]


def test_finished_runs_in_reading_order(table, tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "a", report("default", "pieces", 0.31, created="1"))
    write_run(runs, "b", report("default", "windows", 0.55, created="2"))
    write_run(runs, "c", report("seed", "windows", 0.51234, created="3"))
    write_run(runs, "d", report("default", "pieces", 0.2, sources=["music21:bach"],
                                lstm_units=128, created="4"))
    text = table.render(table.collect(runs, [], tmp_path))
    mozart, bach = text.split("#### music21:bach")
    rows = table_lines(mozart)[1:]
    assert "original" in rows[0]
    assert rows[1].startswith(
        "| `seed` | windows | 120 (97) | best epoch | 0.5123 | 2.0000 | 0.9000 | 0.2500 |")
    assert rows[2].startswith("| `default` | windows |")
    assert rows[3].startswith("| `default` | pieces |") and "0.3100" in rows[3]
    (bach_row,) = table_lines(bach)[1:]
    assert bach_row.startswith("| `default`, LSTM 128 | pieces |")


def test_a_stopped_run_says_so(table, tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "x", report("seed", "windows", 0.4, epochs=37, interrupted=True))
    (row,) = table_lines(table.render(table.collect(runs, [], tmp_path)))[2:]
    assert "37 of 120 (97), stopped" in row


def test_a_run_judged_by_its_last_epoch_shows_keras_train_figures_and_its_best(table, tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "s", report("seed", "windows", 0.5, kept_epoch="last",
                                train_accuracy_keras=0.81, train_loss_keras=0.52,
                                best_test_accuracy=0.55, best_test_loss=2.3))
    lines = table_lines(table.render(table.collect(runs, [], tmp_path)))
    (row,) = [line for line in lines if line.startswith("| `seed`")]
    assert "| last epoch | 0.5000 | 2.0000 | 0.8100 | 0.5200 | 0.5500 / 2.3000 |" in row


def test_a_seed_run_with_another_seed_says_which(table, tmp_path):
    runs = tmp_path / "runs"
    for name, seed in (("a", 42), ("b", 3)):
        write_run(runs, name, report("seed", "windows", 0.6, created=name,
                                     config={"train": {"seed": seed}}))
    lines = table_lines(table.render(table.collect(runs, [], tmp_path)))
    labels = sorted(line.split(" | ")[0] for line in lines if line.startswith("| `seed`"))
    assert labels == ["| `seed`", "| `seed`, seed 3"]


def test_unfinished_runs_show_their_best_epoch_so_far(table, tmp_path):
    staged = tmp_path / "runs" / "mozart-default-pieces" / ".partial-123-abc"
    staged.mkdir(parents=True)
    (staged / "history.csv").write_text(
        "epoch,accuracy,loss,seconds,val_accuracy,val_loss\n"
        "0,0.1,3.0,30,0.12,3.1\n"
        "1,0.2,2.5,30,0.25,2.4\n"
        "2,0.3,2.0,30,0.24,2.6\n"
    )
    old_layout = tmp_path / "runs" / "mozart-seed-windows"
    old_layout.mkdir()
    (old_layout / "history.csv").write_text("epoch,accuracy,loss,seconds,val_accuracy,val_loss\n")
    (tmp_path / "runs" / "empty").mkdir()
    rows = table_lines(table.render(table.collect(tmp_path / "runs", [], tmp_path)))[2:]
    assert len(rows) == 2
    seed_row, default_row = rows
    assert default_row.startswith(
        "| `default` | pieces | 3 so far (2) | best so far | 0.2500 | 2.4000 |")
    assert "*unfinished*" in default_row
    assert seed_row.startswith("| `seed` | windows | 0 so far |")


def test_a_bundles_report_is_a_row_and_one_run_is_shown_once(table, tmp_path):
    runs = tmp_path / "runs"
    bach = report("default", "pieces", 0.3, sources=["music21:bach"], created="9")
    write_run(runs, "bundled", bach)
    bundle = tmp_path / "models" / "default"
    bundle.mkdir(parents=True)
    (bundle / "model.json").write_text(json.dumps({"training": {"report": bach}}))
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.json").write_text(
        json.dumps({"training": {"report": dict(bach, created="10", test_accuracy=0.29)}})
    )
    text = table.render(table.collect(runs, [bundle, other, tmp_path / "missing"], tmp_path))
    rows = table_lines(text.split("#### music21:bach")[1])[1:]
    assert len(rows) == 2
    assert any("`other` (bundle)" in row and "0.2900" in row for row in rows)
    # The run and its bundle are one row, named where the repository keeps it.
    assert any("`models/default` (bundle)" in row and "0.3000" in row for row in rows)
    assert not any("runs/bundled" in row for row in rows)


def test_update_replaces_only_between_the_markers(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "r", report("seed", "windows", 0.4444))
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nbefore\n\n<!-- results:begin -->\nold table\n"
                   "<!-- results:end -->\n\nafter\n")
    command = [sys.executable, str(SCRIPT), "--runs", str(runs), "--bundle", str(tmp_path / "x")]
    subprocess.run([*command, "--update", str(doc)], check=True, capture_output=True)
    text = doc.read_text()
    assert text.startswith("# Results\n\nbefore\n\n<!-- results:begin -->\n")
    assert text.endswith("<!-- results:end -->\n\nafter\n")
    assert "old table" not in text and "0.4444" in text
    subprocess.run([*command, "--update", str(doc)], check=True, capture_output=True)
    assert doc.read_text() == text  # running it again changes nothing

    printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    assert printed.strip() in text


def test_update_without_markers_is_refused(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("# no markers here\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--runs", str(tmp_path), "--update", str(doc)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode != 0 and "results:begin" in result.stderr
    assert doc.read_text() == "# no markers here\n"
