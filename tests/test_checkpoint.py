"""core/checkpoint.py: atomic writes, rotation, clear errors."""
import errno
import os

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


def _manager_with(tmp_path, steps, keep=3):
    m = CheckpointManager(str(tmp_path), "nerf", keep=keep)
    for step in steps:
        m.save(step, {"step": step, "w": np.full(2, step, np.float32)})
    return m


def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_readable(tmp_path):
    """A file cut short (full disk, kill during a copy) must not block every rerun."""
    m = _manager_with(tmp_path, (10, 20, 30))
    newest = tmp_path / "nerf_000030.pkl"
    newest.write_bytes(newest.read_bytes()[:40])
    (tmp_path / "nerf_000020.pkl").write_bytes(b"not a pickle at all")
    logs = []
    step, path, ck = m.load_latest(("step", "w"), log=logs.append)
    assert (step, path, ck["step"]) == (10, m.path(10), 10)
    # one warning per bad file, naming it and the file used instead; both kept, renamed
    assert len(logs) == 2 and all(m.path(10) in line for line in logs)
    assert str(newest) in logs[0] and "nerf_000020.pkl" in logs[1]
    assert (tmp_path / "nerf_000030.pkl.corrupt").exists() and m.steps() == [10]
    # the next save takes its place: rotation never counts the set-aside files
    m.save(40, {"step": 40, "w": np.zeros(2, np.float32)})
    assert m.load_latest(("step",))[0] == 40


def test_no_readable_checkpoint_starts_the_stage_over_and_keeps_the_files(tmp_path):
    m = _manager_with(tmp_path, (10,))
    (tmp_path / "nerf_000010.pkl").write_bytes(b"\x80\x04garbage")
    logs = []
    assert m.load_latest(("step",), log=logs.append) == (None, None, None)
    assert "starting this stage over" in logs[0] and (tmp_path / "nerf_000010.pkl.corrupt").exists()


def test_a_checkpoint_of_another_layout_is_an_error_not_skipped(tmp_path):
    """Missing keys are not corruption (another version or stage): say so, never skip it."""
    m = _manager_with(tmp_path, (10,))
    with pytest.raises(CheckpointError, match="lacks optimizer"):
        m.load_latest(("step", "optimizer"))
    assert m.steps() == [10]


def test_leftover_partial_files_are_removed_on_resume(tmp_path):
    m = _manager_with(tmp_path, (10,))
    (tmp_path / "nerf_000020.pkl.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / "style_000020.pkl.tmp").write_bytes(b"another stage's")
    assert m.load_latest(("step",))[0] == 10
    assert not (tmp_path / "nerf_000020.pkl.tmp").exists()
    assert (tmp_path / "style_000020.pkl.tmp").exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_failed_write_names_the_checkpoint_and_leaves_the_older_ones(tmp_path, monkeypatch, code):
    """Disk full mid-write (pickle's write() fails, no file name in the error) or a read-only
    folder: the error names the checkpoint, no partial file stays, older checkpoints survive."""
    import pickle

    import core.checkpoint as ckmod
    m = _manager_with(tmp_path, (10,))
    real_dump = pickle.dump

    def failing_dump(obj, f, protocol=None):
        f.write(b"partial")
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(ckmod.pickle, "dump", failing_dump)
    with pytest.raises(OSError) as e:
        m.save(20, {"step": 20})
    assert e.value.errno == code and e.value.filename == m.path(20)
    monkeypatch.setattr(ckmod.pickle, "dump", real_dump)
    assert sorted(os.listdir(tmp_path)) == ["nerf_000010.pkl"]
    assert m.load_latest(("step",))[0] == 10
