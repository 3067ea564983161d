"""OS-level failures (read-only folder, full disk, no permission) as one line naming the path.

A write that fails mid-file (ENOSPC from write() or close()) raises an OSError without a
file name; `writing(path)` attaches it, and `describe(e)` turns any OSError into the line
an entry point prints: what failed, on which path, and what to do about it.
"""
import contextlib
import errno
import os

WHERE = "(--basedir, --save_dir, --output)"
HINTS = {
    errno.ENOSPC: f"free some space or write elsewhere {WHERE}",
    errno.EDQUOT: f"free some space or write elsewhere {WHERE}",
    errno.EROFS: f"choose a writable folder {WHERE}",
    errno.EACCES: f"choose a folder you may write to {WHERE}, or fix its permissions",
    errno.EPERM: f"choose a folder you may write to {WHERE}, or fix its permissions",
    errno.EIO: "the disk or network file system failed",
}


@contextlib.contextmanager
def writing(path):
    """Re-raise an OSError from the block with `path` as its file name when it has none."""
    try:
        yield
    except OSError as e:
        if getattr(e, "filename", None) is None:
            e.filename = path
        raise


def remove_quietly(path):
    """Delete a partial file after a failed write (best effort: the disk may be unusable)."""
    try:
        os.remove(path)
    except OSError:
        pass


def describe(e):
    """One line for an OSError: `<path>: <what happened> (<errno name>); <what to do>`."""
    if e.errno is None:  # raised with a message of our own, e.g. FileNotFoundError("no NeRF ...")
        return " ".join(str(e).split())
    what = e.strerror or os.strerror(e.errno)
    name = errno.errorcode.get(e.errno, str(e.errno))
    where = e.filename if e.filename is not None else "(no path given)"
    if getattr(e, "filename2", None) is not None:
        where = f"{where} -> {e.filename2}"
    hint = HINTS.get(e.errno)
    return f"{where}: {what} ({name})" + (f"; {hint}" if hint else "")
