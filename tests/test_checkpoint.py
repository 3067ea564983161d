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


def test_save_returns_before_a_slow_flush_and_the_file_is_complete(tmp_path, monkeypatch):
    """The fsync runs in the background: a slow disk flush does not hold up the training loop."""
    import os
    import threading
    import time

    import core.checkpoint as ck
    ck.wait_for_flushes()  # earlier saves' flushes must not reach the stand-in below
    flushed, release = [], threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd):
        release.wait(5)
        flushed.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(ck.os, "fsync", slow_fsync)
    p = tmp_path / "nerf_000010.pkl"
    t0 = time.time()
    save_atomic({"step": 10, "w": np.arange(1000, dtype=np.float32)}, str(p))
    assert time.time() - t0 < 2.0
    assert not flushed  # the flush is still waiting...
    np.testing.assert_array_equal(load(str(p), ("step", "w"))["w"], np.arange(1000, dtype=np.float32))
    release.set()
    ck.wait_for_flushes()
    assert len(flushed) == 2  # the file and its folder (the rename)
