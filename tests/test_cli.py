"""core/cli.py: every failure a user can meet at the command line is one `error:` line."""
import errno
import os
import signal
import subprocess
import sys

import pytest

import run_stylenerf
import train_style_modules
from backend import runtime
from core import cli
from tests.faults import fail_writes_under

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("main, argv, expect", [
    (run_stylenerf.main, ["--factor", "abc"], "argument --factor: invalid int value: 'abc'"),
    (run_stylenerf.main, ["--device", "gpu"], "argument --device: invalid choice: 'gpu'"),
    (train_style_modules.main, ["--task", "nope"], "argument --task: invalid choice: 'nope'"),
])
def test_option_errors_are_one_line_without_the_usage_dump(main, argv, expect, capsys):
    assert main(argv) == 2
    out = capsys.readouterr()
    line = _one_error_line(out.err)
    assert expect in line and "--help" in line and "usage" not in out.err + out.out


def test_os_errors_in_the_work_are_one_line_naming_the_path(capsys):
    def work(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/logs/exp/nerf_000010.pkl")
    args = type("Args", (), {"device": None})()
    assert cli.run_command(lambda: args, work, lambda: (ValueError,)) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "/logs/exp/nerf_000010.pkl" in line and "ENOSPC" in line and "free some space" in line


def _toy_training(tmp_path, body):
    """work(args) for run_command: a toy TrainLoop saving every 2 steps, body(step) in each step."""
    from core.checkpoint import CheckpointManager, wait_for_flushes
    from core.train_loop import TrainLoop

    def work(args):
        ckpts = CheckpointManager(str(tmp_path), "toy", keep=5)
        for step in TrainLoop("toy stage", 0, 100, save=lambda s: ckpts.save(s, {"step": s}), every=2):
            body(step)
        wait_for_flushes()
    return work


def _last_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    return lines[-1]


def test_a_step_that_fails_after_sigterm_is_one_stop_line_naming_the_checkpoint(tmp_path, capsys):
    """`timeout` signals the whole process group: a compile that was running fails with the signal."""
    def body(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
            raise RuntimeError("Compile fused operator(1/4)failed:[Op(253256...)]\nReason: Check failed ret(15)")
    args = type("Args", (), {"device": "cpu"})()
    assert cli.run_command(lambda: args, _toy_training(tmp_path, body), lambda: (ValueError,)) == 130
    line = _last_line(capsys.readouterr().err)
    assert line.startswith("SIGTERM arrived during a step, which then failed (RuntimeError: Compile fused")
    assert str(tmp_path / "toy_000004.pkl") in line and "step 4" in line and "again to resume" in line
    # without a signal the same failure is a bug: it is not hidden
    with pytest.raises(ZeroDivisionError):
        cli.run_command(lambda: args, _toy_training(tmp_path, lambda step: 1 / 0 if step == 3 else None),
                        lambda: (ValueError,))


def test_a_second_signal_aborts_at_once_with_one_line(tmp_path, capsys, monkeypatch):
    import core.interrupt as interrupt
    monkeypatch.setattr(interrupt, "REPEAT_WINDOW_S", 0.0)  # a user's second request, not a duplicate

    def body(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # the second: KeyboardInterrupt mid-step
    args = type("Args", (), {"device": "cpu"})()
    assert cli.run_command(lambda: args, _toy_training(tmp_path, body), lambda: (ValueError,)) == 130
    line = _last_line(capsys.readouterr().err)
    assert line.startswith("aborted at once; the newest checkpoint is ") and "toy_000002.pkl" in line


def test_a_read_only_basedir_is_one_line_naming_it(tmp_path, monkeypatch, capsys, fern_dir):
    ro = tmp_path / "ro"
    ro.mkdir()
    fail_writes_under(monkeypatch, ro)
    argv = ["--datadir", fern_dir, "--basedir", str(ro), "--expname", "e", "--total_step", "0",
            "--origin_step", "0", "--device", "cpu"]
    assert run_stylenerf.main(argv) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(ro / "e") in line and "Read-only file system" in line and "--basedir" in line


def test_a_device_that_cannot_be_set_up_is_one_line(monkeypatch, capsys):
    """What Jittor gives on a machine without a GPU: a nested error ending in libcudart."""
    def broken_setup(device=None, **k):
        raise RuntimeError("Jittor failed to import on this machine:\nTraceback (most recent call last):\n"
                           '  File "jittor/compiler.py", line 869\n'
                           "OSError: /usr/local/lib64/libcudart.so: cannot open shared object file")
    monkeypatch.setattr(runtime, "setup", broken_setup)
    monkeypatch.setattr(runtime, "_gpu_present", lambda: False)
    args = type("Args", (), {"device": "cuda"})()
    assert cli.run_command(lambda: args, lambda a: None, lambda: ()) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "--device cuda: no NVIDIA GPU" in line and "libcudart.so" in line and "--device cpu" in line


@pytest.mark.skipif(runtime._gpu_present(), reason="this machine has a GPU: --device cuda works here")
def test_device_cuda_on_a_machine_without_a_gpu(tmp_path):
    """The real command, in a fresh process (Jittor is set up once per process)."""
    env = dict(os.environ, STYLENERF_DEVICE="cuda")
    out = subprocess.run([sys.executable, "train_style_modules.py", "--task", "stylize"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    line = _one_error_line(out.stderr)
    assert "STYLENERF_DEVICE=cuda" in line and "no NVIDIA GPU" in line and "Traceback" not in out.stderr
