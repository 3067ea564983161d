"""Checkpoints: atomic writes, rotation, and finding the latest step.

A checkpoint is a pickle of a dict of plain values and NumPy arrays (Jittor
vars are converted), written to `<name>.tmp` and renamed, so a kill mid-write
never leaves a truncated file under the real name.  The file is complete for
every reader as soon as save_atomic returns; flushing it to the disk (fsync)
runs in a background thread, because on an H200 machine's virtual disk a
training loop stalled for 17-60 s around its first checkpoint (2026-12-02,
docs/MEASUREMENTS.md), likely an fsync waiting for hundreds of MB of other
unflushed files.  A save that still takes long says where its time went.
"""
import glob
import os
import pickle
import re
import sys
import threading
import time

import numpy as np

from core.oserrors import remove_quietly, writing

SLOW_SAVE_S = 2.0          # saves (or background flushes) slower than this are reported
_flushers = []             # background fsync threads still running


def _report(msg):
    from tqdm import tqdm
    tqdm.write(msg, file=sys.stderr)


def _flush_to_disk(path):
    t0 = time.time()
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)  # the rename, too
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        return  # best effort: the file itself is already complete (e.g. rotated away meanwhile)
    if time.time() - t0 > SLOW_SAVE_S:
        _report(f"checkpoint {path}: flushing to disk took {time.time() - t0:.1f} s (in the background)")


def wait_for_flushes():
    """Block until every background fsync has finished (tests; callers wanting durability now)."""
    while _flushers:
        _flushers.pop().join()


class CheckpointError(ValueError):
    """An unreadable or incomplete checkpoint file; the message names it."""


class CorruptCheckpoint(CheckpointError):
    """A file that does not unpickle to a dict (truncated, overwritten): resumes skip it."""


def _to_numpy(obj):
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    if hasattr(obj, "numpy") and not isinstance(obj, np.ndarray):
        return obj.numpy()
    return obj


def save_atomic(obj, path):
    """Write obj (Jittor vars become NumPy) to path atomically; fsync in the background."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    t0 = time.time()
    data = _to_numpy(obj)
    t1 = time.time()
    try:
        with writing(path), open(tmp, "wb") as f:  # ENOSPC from write/close names the checkpoint
            pickle.dump(data, f, protocol=4)
        os.replace(tmp, path)
    except BaseException:  # full disk, read-only folder, Ctrl-C: no partial file left behind
        remove_quietly(tmp)
        raise
    t2 = time.time()
    if t2 - t0 > SLOW_SAVE_S:
        _report(f"checkpoint {path}: {t1 - t0:.1f} s fetching arrays, {t2 - t1:.1f} s writing")
    _flushers[:] = [t for t in _flushers if t.is_alive()]
    flusher = threading.Thread(target=_flush_to_disk, args=(path,), daemon=True, name="checkpoint-fsync")
    flusher.start()
    _flushers.append(flusher)


def load(path, required_keys=()):
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: no such file") from None
    except OSError:
        raise  # the disk, not the file: reported as such
    except Exception as e:  # truncated or garbage bytes fail in many ways (EOF, opcodes, imports)
        raise CorruptCheckpoint(f"checkpoint {path} is not a readable checkpoint "
                                f"({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise CorruptCheckpoint(f"checkpoint {path} does not hold a dict")
    missing = [k for k in required_keys if k not in obj]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    return obj


class CheckpointManager:
    """`<folder>/<prefix>_<step:06d>.pkl` files; keeps the newest `keep`."""

    def __init__(self, folder, prefix, keep=3):
        self.folder, self.prefix, self.keep = folder, prefix, keep
        self._pattern = re.compile(re.escape(prefix) + r"_(\d+)\.pkl$")

    def path(self, step):
        return os.path.join(self.folder, f"{self.prefix}_{step:06d}.pkl")

    def steps(self):
        found = []
        for p in glob.glob(os.path.join(self.folder, self.prefix + "_*.pkl")):
            m = self._pattern.search(os.path.basename(p))
            if m:
                found.append(int(m.group(1)))
        return sorted(found)

    def latest(self):
        """(step, path) of the newest checkpoint, or (None, None)."""
        steps = self.steps()
        return (steps[-1], self.path(steps[-1])) if steps else (None, None)

    def remove_partial_files(self):
        """Delete `<prefix>_*.pkl.tmp` left by a run killed mid-write (never a finished file)."""
        for p in glob.glob(os.path.join(self.folder, self.prefix + "_*.pkl.tmp")):
            remove_quietly(p)

    def load_latest(self, required_keys=(), log=None, clean=True):
        """(step, path, checkpoint) of the newest readable checkpoint, or (None, None, None).

        A corrupt file (truncated, overwritten) is renamed to `<name>.corrupt`, out of the way
        of rotation and of later resumes, with a warning naming it and the file used instead;
        when none is readable the stage starts over (the files are kept, renamed).
        clean: remove partial files first (a training run; not a render, which may run beside one).
        """
        if clean:
            self.remove_partial_files()
        bad = []
        for step in reversed(self.steps()):
            path = self.path(step)
            try:
                ck = load(path, required_keys)
            except CorruptCheckpoint as e:
                bad.append((path, e))
                continue
            for bad_path, err in bad:
                _set_aside(bad_path, err, f"resuming from {path} instead", log)
            return step, path, ck
        for bad_path, err in bad:
            _set_aside(bad_path, err, "no readable checkpoint is left: starting this stage over", log)
        return None, None, None

    def save(self, step, state):
        save_atomic(state, self.path(step))
        for old in self.steps()[:-self.keep]:
            os.remove(self.path(old))
        return self.path(step)


def _set_aside(bad_path, err, then, log):
    aside = bad_path + ".corrupt"
    try:
        os.replace(bad_path, aside)
    except OSError:
        aside = bad_path  # cannot rename (read-only folder): it stays where it is
    (log or _report)(f"warning: {err}; kept it as {aside}; {then}")


def adam_state(opt):
    """Moment buffers and step count of a jt.optim.Adam, as NumPy (for checkpoints)."""
    return {"n_step": int(opt.n_step),
            "m": [[m.numpy() for m in pg["m"]] for pg in opt.param_groups],
            "v": [[v.numpy() for v in pg["values"]] for pg in opt.param_groups]}


def load_adam_state(opt, state, source="checkpoint"):
    """Restore what adam_state() saved into an optimizer over the same parameters."""
    import jittor as jt
    if len(state["m"]) != len(opt.param_groups):
        raise CheckpointError(f"{source}: optimizer has {len(opt.param_groups)} parameter groups, "
                              f"checkpoint {len(state['m'])}")
    for pg, ms, vs in zip(opt.param_groups, state["m"], state["v"]):
        if len(ms) != len(pg["m"]):
            raise CheckpointError(f"{source}: optimizer state does not match the model's parameters")
        for buf, val in zip(pg["m"], ms):
            buf.assign(jt.array(val).stop_grad())
        for buf, val in zip(pg["values"], vs):
            buf.assign(jt.array(val).stop_grad())
    opt.n_step = state["n_step"]


def load_module_state(module, state, source="checkpoint"):
    """load_state_dict with a clear error for missing keys or shape mismatches."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    bad = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
           if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        raise CheckpointError(f"{source} does not fit the model: "
                              + (f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} " if missing else "")
                              + (f"shape mismatch {bad[:5]}" if bad else "")
                              + " (was it made with other model-size options?)")
    module.load_state_dict({k: state[k] for k in own})
