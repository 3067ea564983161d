"""core/oserrors.py: an OSError becomes one line that names the path and what to do."""
import errno
import os

import pytest

from core.oserrors import describe, remove_quietly, writing


def test_a_write_error_without_a_file_name_gets_the_path():
    with pytest.raises(OSError) as e:
        with writing("/x/nerf_000010.pkl"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it
    assert e.value.filename == "/x/nerf_000010.pkl"
    line = describe(e.value)
    assert line.startswith("/x/nerf_000010.pkl: ") and "ENOSPC" in line and "free some space" in line
    assert "\n" not in line


def test_an_error_that_names_its_own_file_keeps_it():
    with pytest.raises(OSError) as e:
        with writing("/x/outer"):
            raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), "/ro/logs/exp")
    assert e.value.filename == "/ro/logs/exp"
    assert describe(e.value).startswith("/ro/logs/exp: ") and "writable folder" in describe(e.value)


def test_describe_renames_and_messages_of_our_own():
    e = OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/a.tmp", None, "/b")
    assert describe(e).startswith("/a.tmp -> /b: ") and "EXDEV" in describe(e)
    assert describe(FileNotFoundError("no NeRF checkpoint in\n /x")) == "no NeRF checkpoint in /x"


def test_remove_quietly(tmp_path):
    p = tmp_path / "partial.tmp"
    p.write_bytes(b"x")
    remove_quietly(str(p))
    remove_quietly(str(p))  # already gone: no error
    assert not p.exists()
