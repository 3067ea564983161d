"""core/npz_cache.py: a per-view .npz written whole or not at all, read back or reported damaged."""
import os

import numpy as np
import pytest

from core.npz_cache import read_arrays, write_arrays


def test_round_trip_and_a_missing_file(tmp_path):
    path = str(tmp_path / "view_000.npz")
    assert read_arrays(path, {"a": (2, 3)}, "thing", print) is None
    a, b = np.arange(6, dtype=np.float16).reshape(2, 3), np.ones(4, np.float32)
    write_arrays(path, {"a": a, "b": b})
    got = read_arrays(path, {"a": (2, 3), "b": (4,)}, "thing", print)
    np.testing.assert_array_equal(got["a"], a)
    assert got["a"].dtype == np.float16 and os.listdir(tmp_path) == ["view_000.npz"]  # no .tmp left


@pytest.mark.parametrize("damage", ["cut", "shape", "missing array"])
def test_a_damaged_file_is_reported_and_removed(tmp_path, damage):
    path = str(tmp_path / "view_001.npz")
    write_arrays(path, {"a": np.zeros((2, 3)), "b": np.zeros(4)})
    shapes = {"a": (2, 3), "b": (4,)}
    if damage == "cut":
        with open(path, "r+b") as f:
            f.truncate(40)
    elif damage == "shape":
        shapes["a"] = (3, 3)
    else:
        shapes["c"] = (1,)
    logs = []
    assert read_arrays(path, shapes, "geometry view", logs.append) is None
    assert len(logs) == 1 and logs[0].startswith(f"warning: damaged geometry view {path} (")
    assert logs[0].endswith("; rendering it again") and not os.path.exists(path)


def test_a_failed_write_leaves_neither_file(tmp_path, monkeypatch):
    path = str(tmp_path / "view_002.npz")

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError) as e:
        write_arrays(path, {"a": np.zeros(2)})
    assert e.value.filename == path and os.listdir(tmp_path) == []
