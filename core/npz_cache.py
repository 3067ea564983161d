"""A cached per-view output as one .npz file: written whole or not at all, read back whole or
reported damaged (then removed, so that the caller makes it again: a file cut short by a full
disk or a kill must not block every rerun).  The geometry data and the style sample cache use it.
"""
import os

import numpy as np

from core.oserrors import remove_quietly, writing


def read_arrays(path, shapes, what, log):
    """{name: array} of the .npz at path, each with shapes[name], or None when the file is missing
    or damaged (warned as a damaged `what`, removed)."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as z:
            got = {name: z[name] for name in shapes}
        bad = {n: a.shape for n, a in got.items() if a.shape != tuple(shapes[n])}
        if bad:
            raise ValueError(f"shapes {bad}, expected {dict((n, tuple(shapes[n])) for n in bad)}")
        return got
    except Exception as e:  # zipfile.BadZipFile, EOFError, KeyError, ValueError, OSError, ...
        log(f"warning: damaged {what} {path} ({type(e).__name__}: {e}); rendering it again")
        remove_quietly(path)
        return None


def write_arrays(path, arrays):
    """{name: array} to path (…npz) through a .tmp.npz beside it, moved into place when whole."""
    tmp = path[:-len(".npz")] + ".tmp.npz"
    try:
        with writing(path):
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
