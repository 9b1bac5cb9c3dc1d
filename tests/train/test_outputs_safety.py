"""A training run never harms what is already in its output folder.

Everything a run writes goes to a staging folder and moves into place only
when the run has finished.  These tests break a run at each of its writes
(a full disk, by a patched write or by the kernel's file size limit) over a
folder holding an older model, and check the older files are byte for byte
as they were; and they check an unusable folder fails at once, by name.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cadenza import cli
from cadenza.errors import OutputError

pytest.importorskip("tensorflow")
pytest.importorskip("music21")

from cadenza.train import callbacks, outputs, training  # noqa: E402  (needs TensorFlow)
from cadenza.train.generate import write_midi  # noqa: E402
from cadenza.train.vocab import Vocabulary  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RUN_FILES = ["accuracy.png", "heldout.json", "history.csv", "loss.png", "model.keras",
             "report.json", "vocab.json"]
USER_FILE = "my-notes.txt"  # something of the user's in the folder: never touched
TUNE = ["C4", "E4", "G4", "0.4.7", "A4", "F4", "D4", "2.5.9", "B3", "G3"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for number in range(3):
        write_midi((TUNE[number:] + TUNE[:number]) * 3, folder / f"tune{number}.mid")
    return folder


def _config(folder: Path, **train: object) -> Path:
    settings = {"epochs": 2, "batch_size": 32, "lstm_units": 8, "embedding_dim": 4, **train}
    path = folder / "config.toml"
    path.write_text(
        f"[data]\nwindow = 6\nmin_count = 1\nworkers = 1\n"
        f"cache_dir = {json.dumps(str(folder / 'cache'))}\n[train]\n"
        + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    )
    return path


def _train(tmp: Path, corpus: Path, out: Path, *extra: str, **train: object) -> int:
    return cli.main(["--config", str(_config(tmp, **train)), "train", "--preset", "default",
                     "--data", str(corpus), "--out", str(out), *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too), by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def old_run(tmp_path_factory, corpus) -> Path:
    """A finished run's folder, plus a file of the user's."""
    tmp = tmp_path_factory.mktemp("old")
    out = tmp / "run"
    assert _train(tmp, corpus, out, seed=1) == 0
    (out / USER_FILE).write_text("the take from Tuesday sounded best\n")
    assert sorted(p.name for p in out.iterdir()) == sorted([*RUN_FILES, USER_FILE])
    return out


@pytest.fixture
def run_dir(old_run, tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A copy of the old run to train over, and its bytes."""
    out = tmp_path / "run"
    shutil.copytree(old_run, out)
    return out, snapshot(out)


def disk_full(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# -- a full disk at each write of a run --------------------------------------------------


def _fail_checkpoint(monkeypatch):
    monkeypatch.setattr(callbacks, "save_atomic", disk_full)


def _fail_history(monkeypatch):
    import keras

    original = keras.callbacks.CSVLogger.on_epoch_end

    def write_then_fail(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            disk_full()

    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", write_then_fail)


def _fail_vocabulary(monkeypatch):
    monkeypatch.setattr(Vocabulary, "save", disk_full)


def _fail_plot(monkeypatch):
    monkeypatch.setattr(outputs, "_save_figure_atomic", disk_full)


def _fail_report(monkeypatch):
    original = training.write_json_atomic

    def fail_on_report(path, document):
        if Path(path).name == "report.json":
            disk_full()
        original(path, document)

    monkeypatch.setattr(training, "write_json_atomic", fail_on_report)


@pytest.mark.parametrize(
    "fail", [_fail_vocabulary, _fail_checkpoint, _fail_history, _fail_plot, _fail_report]
)
def test_a_full_disk_mid_run_leaves_the_old_run_byte_identical(
    run_dir, corpus, tmp_path, monkeypatch, caplog, fail
):
    out, before = run_dir
    fail(monkeypatch)
    with caplog.at_level(logging.ERROR):
        code = _train(tmp_path, corpus, out, seed=2)
    assert code == OutputError.exit_code != 0
    assert f"{out}: cannot write the training run: No space left on device" in caplog.text
    after = snapshot(out)
    staged = {name for name in after if name.startswith(".partial-")}
    assert {name: after[name] for name in after.keys() - staged} == before
    # A staging folder stays only when it holds finished epochs to resume from.
    if staged:
        assert f"{out}/.partial-run/resume.json" in {f"{out}/{name}" for name in staged}
        assert "--resume" in caplog.text


def test_the_kernel_refusing_a_write_leaves_the_old_run_byte_identical(run_dir, corpus, tmp_path):
    """No patching: a real process whose file size limit makes the kernel refuse the model file."""
    out, before = run_dir
    limit = 16 * 1024  # the JSON files fit; the model does not

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    assert len(before["model.keras"]) > limit
    result = subprocess.run(
        [sys.executable, "-m", "cadenza", "--config", str(_config(tmp_path, seed=2)), "train",
         "--preset", "default", "--data", str(corpus), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO, preexec_fn=small_files,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}, check=False,
    )
    assert result.returncode == OutputError.exit_code, result.stderr[-3000:]
    assert f"{out}: cannot write the training run: File too large" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(out) == before


def test_a_finished_run_replaces_the_old_one_and_nothing_else(run_dir, corpus, tmp_path):
    out, before = run_dir
    assert _train(tmp_path, corpus, out, seed=2) == 0
    after = snapshot(out)
    assert sorted(after) == sorted([*RUN_FILES, USER_FILE])  # and no staging folder
    assert after[USER_FILE] == before[USER_FILE]
    assert after["model.keras"] != before["model.keras"]
    assert json.loads(after["report.json"])["config"]["train"]["seed"] == 2


def test_a_failed_move_into_place_says_where_the_finished_run_is(
    run_dir, corpus, tmp_path, monkeypatch, caplog
):
    out, _ = run_dir
    real_replace = os.replace

    def replace(source, target):
        # The run's own writes work; moving the model into the output folder fails.
        if Path(target) == out / "model.keras":
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        real_replace(source, target)

    monkeypatch.setattr(outputs.os, "replace", replace)
    with caplog.at_level(logging.ERROR):
        code = _train(tmp_path, corpus, out, seed=2)
    assert code != 0
    (staged,) = out.glob(".partial-*")
    assert f"{out}: cannot move the finished run into place: Permission denied" in caplog.text
    assert f"(the run's files are in {staged})" in caplog.text
    assert {"model.keras", "report.json"} <= {p.name for p in staged.iterdir()}
    # The folder reads as unfinished: its report went first.
    assert not (out / "report.json").exists()


# -- a folder that cannot be used at all ---------------------------------------------------


def test_an_output_folder_under_a_file_fails_at_once_by_name(corpus, tmp_path, caplog):
    blocker = tmp_path / "runs"
    blocker.write_text("a file where a folder should be\n")
    out = blocker / "latest"
    with caplog.at_level(logging.INFO):
        code = _train(tmp_path, corpus, out)
    assert code == OutputError.exit_code != 0
    assert f"{out}: cannot write the output folder: Not a directory" in caplog.text
    assert "parsing" not in caplog.text  # refused before any work
    assert blocker.read_text() == "a file where a folder should be\n"


def test_an_output_path_that_is_a_file_is_refused(corpus, tmp_path, caplog):
    out = tmp_path / "model.keras"
    out.write_bytes(b"somebody's model")
    with caplog.at_level(logging.ERROR):
        code = _train(tmp_path, corpus, out)
    assert code != 0
    assert f"{out}: the output folder exists and is not a folder" in caplog.text
    assert out.read_bytes() == b"somebody's model"


def test_a_run_without_usable_data_leaves_no_trace(corpus, tmp_path, run_dir, caplog):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.mid").write_bytes(b"not midi")
    new = tmp_path / "new-run"
    old, before = run_dir
    for out in (new, old):
        with caplog.at_level(logging.ERROR):
            code = cli.main(["--config", str(_config(tmp_path)), "train",
                             "--data", str(tmp_path / "junk"), "--out", str(out)])
        assert code != 0 and "no usable file" in caplog.text
    assert not new.exists()  # the run made it, and took it away again
    assert snapshot(old) == before
