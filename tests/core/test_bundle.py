"""The bundle manifest reader: what it accepts, and each way it refuses a bundle.

These tests need no ONNX Runtime: the graph files are placeholders, since
``read_bundle`` checks the manifest and that the files exist; loading the
graphs is ``cadenza.runtime``'s job (tests/core/test_runtime.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cadenza.bundle import MANIFEST, read_bundle, write_json_atomic
from cadenza.errors import BundleError

VOCAB = ["C4", "D4", "E-4", "0.4.7"]
UNITS = 8


def _tensor(name, shape, dtype="float32"):
    return {"name": name, "shape": shape, "dtype": dtype}


def manifest(vocab=VOCAB, window=3):
    states = ["h1", "c1", "h2", "c2"]
    return {
        "format": "cadenza-bundle",
        "format_version": 1,
        "token_scheme": 1,
        "preset": "default",
        "vocabulary": list(vocab),
        "window": window,
        "input_encoding": {"kind": "embedding"},
        "state": {"names": states, "size": UNITS},
        "graphs": {
            "window": {
                "file": "window.onnx",
                "inputs": {"tokens": _tensor("tokens", [None, window], "int64")},
                "outputs": {"probs": _tensor("probs", [None, len(vocab)])},
            },
            "stream": {
                "file": "stream.onnx",
                "inputs": {"token": _tensor("token", [None, 1], "int64")}
                | {s: _tensor(s, [None, UNITS]) for s in states},
                "outputs": {"probs": _tensor("probs", [None, len(vocab)])}
                | {s: _tensor(f"{s}_out", [None, UNITS]) for s in states},
            },
        },
        "primers": [["C4", "D4", "E-4"], ["0.4.7", "C4", "C4"]],
    }


def write_bundle(path: Path, doc: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for spec in doc.get("graphs", {}).values():
        (path / spec["file"]).write_bytes(b"placeholder")
    (path / MANIFEST).write_text(json.dumps(doc))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(BundleError) as caught:
        read_bundle(path)
    return str(caught.value)


def test_reads_a_good_bundle(tmp_path):
    bundle = read_bundle(write_bundle(tmp_path / "b", manifest()))
    assert bundle.vocabulary == tuple(VOCAB)
    assert bundle.vocab_size == 4
    assert bundle.window == 3
    assert bundle.input_encoding == "embedding"
    assert bundle.state_names == ("h1", "c1", "h2", "c2")
    assert bundle.state_size == UNITS
    assert set(bundle.graphs) == {"window", "stream"}
    stream = bundle.graph("stream")
    assert stream.path == tmp_path / "b" / "stream.onnx"
    assert stream.outputs["h1"].name == "h1_out"
    assert stream.inputs["token"].shape == (None, 1)
    assert bundle.primers[1] == ("0.4.7", "C4", "C4")


def test_reads_the_manifest_path_itself(tmp_path):
    folder = write_bundle(tmp_path / "b", manifest())
    assert read_bundle(folder / MANIFEST).path == folder


def test_scalar_encoding_keeps_its_scale(tmp_path):
    doc = manifest()
    doc["input_encoding"] = {"kind": "scalar", "scale": 4, "in_graph": True}
    assert read_bundle(write_bundle(tmp_path / "b", doc)).input_scale == 4.0


def test_asking_for_an_absent_graph_names_what_there_is(tmp_path):
    bundle = read_bundle(write_bundle(tmp_path / "b", manifest()))
    with pytest.raises(BundleError, match=r"no 'stream_int8' graph .*window, stream"):
        bundle.graph("stream_int8")


def test_refuses_a_missing_folder(tmp_path):
    message = refusal(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message and "no such model bundle" in message


def test_refuses_a_folder_without_manifest(tmp_path):
    (tmp_path / "empty").mkdir()
    message = refusal(tmp_path / "empty")
    assert str(tmp_path / "empty" / MANIFEST) in message and "missing" in message


def test_refuses_truncated_json(tmp_path):
    folder = write_bundle(tmp_path / "b", manifest())
    text = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(text[: len(text) // 2])
    message = refusal(folder)
    assert str(folder / MANIFEST) in message and "corrupt JSON" in message


def test_refuses_binary_garbage(tmp_path):
    folder = write_bundle(tmp_path / "b", manifest())
    (folder / MANIFEST).write_bytes(b"\xff\xfe\x00garbage")
    assert "corrupt JSON" in refusal(folder)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(format="something-else"), "not a cadenza-bundle manifest"),
        (lambda d: d.update(format_version=2), "bundle format 2 is newer"),
        (lambda d: d.pop("format_version"), "missing 'format_version'"),
        (lambda d: d.update(token_scheme=2), "token scheme version 2 is not supported"),
        (lambda d: d.update(token_scheme="1"), "'token_scheme' has the wrong type"),
        (lambda d: d.update(vocabulary=[]), "non-empty list of tokens"),
        (lambda d: d.update(vocabulary=["C4", "C4", "D4", "E4"]), "duplicate tokens"),
        (lambda d: d.update(vocabulary=["C4", "H9", "D4", "E4"]), "bad vocabulary entry"),
        (lambda d: d.update(window=0), "'window' must be at least 1"),
        (lambda d: d.update(input_encoding={"kind": "onehot"}), "unknown input encoding"),
        (lambda d: d.update(input_encoding={"kind": "scalar", "scale": 0}), "scale must be positive"),
        (lambda d: d.update(state={"names": "h1", "size": 8}), "'state.names' must be a list"),
        (lambda d: d.update(graphs={}), "lists no graphs"),
        (lambda d: d["graphs"].update(magic={"file": "window.onnx"}), "unknown graph kind 'magic'"),
        (lambda d: d["graphs"]["window"]["outputs"].clear(), "graph 'window' has no 'probs' output"),
        (lambda d: d["graphs"]["stream"]["inputs"].pop("c2"), "graph 'stream' lacks input 'c2'"),
        (lambda d: d["graphs"]["stream"]["outputs"].pop("h1"), "graph 'stream' lacks output 'h1'"),
        (
            lambda d: d["graphs"]["window"]["inputs"]["tokens"].update(shape="batch"),
            "bad shape",
        ),
        (lambda d: d.update(primers=[["C4", "F#9"]]), "primer tokens not in the vocabulary"),
    ],
)
def test_refuses_a_bad_manifest(tmp_path, change, expected):
    doc = manifest()
    change(doc)
    folder = write_bundle(tmp_path / "b", doc)
    message = refusal(folder)
    assert str(folder / MANIFEST) in message
    assert expected in message


def test_refuses_a_vocabulary_that_does_not_fit_the_graph(tmp_path):
    doc = manifest()
    doc["vocabulary"] = VOCAB[:3]  # the graphs still declare 4 probabilities
    doc["primers"] = [VOCAB[:3]]
    message = refusal(write_bundle(tmp_path / "b", doc))
    assert "predicts 4 tokens but the vocabulary has 3" in message


def test_refuses_a_missing_graph_file(tmp_path):
    folder = write_bundle(tmp_path / "b", manifest())
    (folder / "stream.onnx").unlink()
    message = refusal(folder)
    assert str(folder / "stream.onnx") in message and "graph file missing" in message


def outside_bundle(tmp_path: Path, file: str) -> tuple[Path, str]:
    """A bundle whose stream graph is named ``file``, and a real graph file
    beside the bundle that such a name could reach."""
    (tmp_path / "other.onnx").write_bytes(b"not this bundle's")
    folder = write_bundle(tmp_path / "b", manifest())
    doc = json.loads((folder / MANIFEST).read_text())
    doc["graphs"]["stream"]["file"] = file
    (folder / MANIFEST).write_text(json.dumps(doc))
    return folder, refusal(folder)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("../other.onnx", "climbs out with '..'"),
        ("sub/../../other.onnx", "climbs out with '..'"),
        ("..\\other.onnx", "climbs out with '..'"),
        ("ABSOLUTE", "is an absolute path"),
        ("\\\\server\\share\\other.onnx", "is an absolute path"),
        ("C:other.onnx", "is an absolute path"),
    ],
)
def test_refuses_a_graph_file_named_outside_the_bundle(tmp_path, file, expected):
    if file == "ABSOLUTE":
        file = str(tmp_path / "other.onnx")
    folder, message = outside_bundle(tmp_path, file)
    assert str(folder / MANIFEST) in message
    assert f"graph 'stream' file {file!r}" in message
    assert expected in message


def test_refuses_a_graph_file_that_is_a_symlink_out_of_the_bundle(tmp_path):
    folder = write_bundle(tmp_path / "b", manifest())
    (tmp_path / "other.onnx").write_bytes(b"not this bundle's")
    (folder / "stream.onnx").unlink()
    (folder / "stream.onnx").symlink_to(tmp_path / "other.onnx")
    message = refusal(folder)
    assert str(folder / MANIFEST) in message and "graph 'stream' file 'stream.onnx'" in message
    assert f"symlink to {(tmp_path / 'other.onnx').resolve()}, outside {folder}" in message


def test_refuses_a_graph_file_reached_through_a_symlinked_folder(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "stream.onnx").write_bytes(b"not this bundle's")
    folder = write_bundle(tmp_path / "b", manifest())
    (folder / "graphs").symlink_to(tmp_path / "elsewhere")
    doc = json.loads((folder / MANIFEST).read_text())
    doc["graphs"]["stream"]["file"] = "graphs/stream.onnx"
    (folder / MANIFEST).write_text(json.dumps(doc))
    assert "outside" in refusal(folder)


def test_symlinks_that_stay_inside_the_bundle_are_fine(tmp_path):
    """A bundle folder reached through a symlink, and a graph linked to another
    file of the same bundle, are still the bundle's own files."""
    folder = write_bundle(tmp_path / "b", manifest())
    (folder / "stream.onnx").unlink()
    (folder / "stream.onnx").symlink_to("window.onnx")
    (tmp_path / "current").symlink_to(folder)
    bundle = read_bundle(tmp_path / "current")
    assert bundle.graph("stream").path == tmp_path / "current" / "stream.onnx"


def test_a_graph_file_in_a_subfolder_of_the_bundle_is_fine(tmp_path):
    doc = manifest()
    doc["graphs"]["stream"]["file"] = "int8/stream.onnx"
    (tmp_path / "b" / "int8").mkdir(parents=True)
    bundle = read_bundle(write_bundle(tmp_path / "b", doc))
    assert bundle.graph("stream").path == tmp_path / "b" / "int8" / "stream.onnx"


def test_write_json_atomic_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "doc.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2, "b": [1, 2]})
    assert json.loads(target.read_text()) == {"a": 2, "b": [1, 2]}
    assert os.listdir(target.parent) == ["doc.json"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_json_atomic_keeps_the_old_file_when_serialising_fails(tmp_path):
    target = tmp_path / "doc.json"
    write_json_atomic(target, {"good": True})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"good": True}
    assert os.listdir(tmp_path) == ["doc.json"]
