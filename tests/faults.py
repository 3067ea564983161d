"""Simulated OS faults for the fault tests.

The tests run as root, whom permissions do not stop, and cannot mount file systems
everywhere; a read-only folder or a full disk is made instead by failing, with the errno
the kernel gives, every call that would write under a folder: open for writing, mkdir,
rename/replace (docs/FAULTS.md lists the same cases tried on real tmpfs mounts).
"""
import builtins
import errno
import io
import os

_WRITE_MODES = set("wax+")


def _under(path, folder):
    try:
        path = os.path.abspath(os.fspath(path))
    except TypeError:  # a file descriptor or a file object
        return False
    return path == folder or path.startswith(folder + os.sep)


def fail_writes_under(monkeypatch, folder, code=errno.EROFS):
    """Every write below `folder` raises OSError(code) naming the path, as the kernel would
    for a read-only mount (EROFS) or a full disk (ENOSPC, when a new file is written)."""
    folder = os.path.abspath(str(folder))
    real_open, real_mkdir, real_replace, real_rename = builtins.open, os.mkdir, os.replace, os.rename

    def fail(path):
        raise OSError(code, os.strerror(code), os.fspath(path))

    def fake_open(file, mode="r", *a, **k):
        if _WRITE_MODES & set(mode) and _under(file, folder):
            fail(file)
        return real_open(file, mode, *a, **k)

    def fake_mkdir(path, *a, **k):
        if _under(path, folder) and not os.path.isdir(path):
            fail(path)
        return real_mkdir(path, *a, **k)

    def guarded(real):
        def call(src, dst, *a, **k):
            if _under(dst, folder) or _under(src, folder):
                fail(dst)
            return real(src, dst, *a, **k)
        return call

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "replace", guarded(real_replace))
    monkeypatch.setattr(os, "rename", guarded(real_rename))
