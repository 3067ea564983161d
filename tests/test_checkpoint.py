"""core/checkpoint.py: atomic writes, rotation, clear errors."""
import numpy as np
import pytest

from core.checkpoint import CheckpointError, CheckpointManager, load, save_atomic


def test_roundtrip_and_rotation(tmp_path):
    m = CheckpointManager(str(tmp_path), "nerf", keep=2)
    assert m.latest() == (None, None)
    for step in (5, 10, 15):
        m.save(step, {"step": step, "w": np.full(3, step, np.float32)})
    assert m.steps() == [10, 15]
    step, path = m.latest()
    assert step == 15
    ck = load(path, required_keys=("step", "w"))
    np.testing.assert_array_equal(ck["w"], np.full(3, 15, np.float32))
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_and_incomplete_files_name_the_file(tmp_path):
    p = tmp_path / "x.pkl"
    save_atomic({"a": 1}, str(p))
    with pytest.raises(CheckpointError, match="lacks b"):
        load(str(p), required_keys=("a", "b"))
    p.write_bytes(p.read_bytes()[:5])
    with pytest.raises(CheckpointError, match="x.pkl"):
        load(str(p))
    with pytest.raises(CheckpointError, match="no such file"):
        load(str(tmp_path / "missing.pkl"))
