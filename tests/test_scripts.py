"""scripts/test.sh: which tests it hands to pytest (python3 replaced by a stub that records)."""
import os
import stat
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pytest_args(tmp_path, *args):
    stub = tmp_path / "bin" / "python3"
    stub.parent.mkdir()
    log = tmp_path / "calls"
    stub.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{stub.parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", "scripts/test.sh", *args], cwd=ROOT, env=env, check=True, timeout=60)
    calls = log.read_text().splitlines()
    assert calls[0].startswith("-m pip install")
    assert calls[1].startswith("-m pytest -q -p no:cacheprovider")
    return calls[1].split()[5:]


@pytest.mark.parametrize("args, expect", [
    ((), ["tests"]),
    (("tests/test_checkpoint.py",), ["tests/test_checkpoint.py"]),
    (("tests/test_checkpoint.py::test_roundtrip_and_rotation", "-x"),
     ["tests/test_checkpoint.py::test_roundtrip_and_rotation", "-x"]),
    (("-k", "resume"), ["tests", "-k", "resume"]),
])
def test_a_file_given_runs_just_that_file(tmp_path, args, expect):
    assert _pytest_args(tmp_path, *args) == expect
