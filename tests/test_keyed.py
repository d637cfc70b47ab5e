"""Folders keyed by their inputs: a folder is complete only for the key its marker holds and only once
``mark_complete`` wrote it; ``start`` and ``claim`` leave a folder that never reads as done; JSON is written
atomically and a malformed file is an error naming it; the key's hash ignores dict order."""
import json
from pathlib import Path

import numpy as np
import pytest

from clothparse.keyed import KeyedFolder, now, read_json, stable_hash, write_json


def test_stable_hash_ignores_dict_order_and_sees_every_value():
    a = {"model": "unet", "train": {"lr": 1e-3, "epochs": 2}, "size": [64, 64]}
    b = {"size": [64, 64], "train": {"epochs": 2, "lr": 1e-3}, "model": "unet"}
    assert stable_hash(a) == stable_hash(b)
    assert len(stable_hash(a)) == 12 and len(stable_hash(a, length=24)) == 24
    assert stable_hash(a, length=24).startswith(stable_hash(a))
    assert all(c in "0123456789abcdef" for c in stable_hash(a))
    assert stable_hash({**a, "train": {"lr": 1e-3, "epochs": 3}}) != stable_hash(a)
    assert stable_hash({**a, "size": [64, 48]}) != stable_hash(a)
    assert stable_hash([1, 2]) != stable_hash([2, 1])  # list order does count
    assert stable_hash({"p": Path("/x")}) == stable_hash({"p": "/x"})  # non-JSON values by their str()


def test_a_folder_is_complete_only_for_its_key_after_mark_complete(tmp_path):
    folder = KeyedFolder(tmp_path / "out", "abc")
    assert not folder.is_complete() and folder.record() == {}  # no folder at all
    assert folder.start() == tmp_path / "out" and (tmp_path / "out").is_dir()
    (tmp_path / "out" / "data.txt").write_text("content")
    assert not folder.is_complete()                              # content without a marker is not done
    folder.mark_complete(n=42)
    assert folder.is_complete()
    rec = folder.record()
    assert rec["key"] == "abc" and rec["complete"] is True and rec["n"] == 42 and rec["finished"]
    assert folder.marker_path == tmp_path / "out" / "COMPLETE"
    # the same folder asked about with another key (other inputs) is not complete
    assert not KeyedFolder(tmp_path / "out", "abd").is_complete()
    # info cannot overwrite the key or the completion
    folder.mark_complete(key="forged", complete=False)
    assert folder.record()["key"] == "abc" and folder.is_complete()


def test_another_marker_name_is_another_marker(tmp_path):
    KeyedFolder(tmp_path, "k", "REFINE.json").mark_complete()
    assert KeyedFolder(tmp_path, "k", "REFINE.json").is_complete()
    assert not KeyedFolder(tmp_path, "k").is_complete()
    assert (tmp_path / "REFINE.json").is_file() and not (tmp_path / "COMPLETE").exists()


def test_start_drops_the_marker_and_keeps_the_content(tmp_path):
    folder = KeyedFolder(tmp_path / "out", "abc")
    folder.start()
    (tmp_path / "out" / "data.txt").write_text("old")
    folder.mark_complete()
    assert folder.is_complete()
    folder.start()                                               # a rewrite begins
    assert not folder.marker_path.exists() and not folder.is_complete()
    assert (tmp_path / "out" / "data.txt").read_text() == "old"  # start removes only the marker
    folder.start()                                               # twice is fine: no marker to drop


def test_a_claimed_folder_reads_as_incomplete_and_keyless(tmp_path):
    folder = KeyedFolder(tmp_path / "out", "abc")
    folder.start()
    folder.mark_complete()
    assert folder.is_complete()
    assert folder.claim(pid=123) == tmp_path / "out"
    rec = folder.record()
    assert rec == {"pid": 123, "complete": False} and "key" not in rec
    assert not folder.is_complete()
    folder.mark_complete()
    assert folder.is_complete() and "pid" not in folder.record()


@pytest.mark.parametrize("marker", ["{torn", "[1, 2]", '"complete"', '{"key": "abc"}',
                                    '{"key": "abc", "complete": "true"}', '{"key": "abc", "complete": 1}'])
def test_an_unreadable_or_unfinished_marker_is_not_complete(tmp_path, marker):
    folder = KeyedFolder(tmp_path, "abc")
    folder.marker_path.write_text(marker)
    assert not folder.is_complete()
    assert folder.record() == ({} if marker in ("{torn", "[1, 2]", '"complete"') else json.loads(marker))


def test_remove_deletes_named_files_and_folders_only(tmp_path):
    folder = KeyedFolder(tmp_path, "k")
    (tmp_path / "a.npy").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.txt").write_text("y")
    (tmp_path / "keep.txt").write_text("z")
    folder.remove(["a.npy", "sub", "never_written.csv"])        # a missing name is no error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_write_json_is_atomic_sorted_and_converts_numpy_and_paths(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"b": np.int64(3), "a": np.float32(0.5), "arr": np.arange(3), "p": Path("/x/y")})
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no .tmp left beside it
    assert read_json(path) == {"a": 0.5, "arr": [0, 1, 2], "b": 3, "p": "/x/y"}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    write_json(path, [1])                                       # replaced whole
    assert read_json(path) == [1] and not path.with_suffix(".json.tmp").exists()
    with pytest.raises(TypeError, match="not JSON-serialisable: object"):
        write_json(tmp_path / "bad.json", {"o": object()})
    assert read_json(path) == [1] and not (tmp_path / "bad.json").exists()


def test_read_json_names_a_malformed_file(tmp_path):
    path = tmp_path / "params.json"
    path.write_text('{"model": "unet",')
    with pytest.raises(ValueError, match=r"params\.json: not valid JSON"):
        read_json(path)
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "missing.json")


def test_now_is_utc_to_the_second():
    stamp = now()
    assert stamp.endswith("+00:00") and len(stamp) == len("2026-01-01T00:00:00+00:00")
