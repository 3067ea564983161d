"""core/interrupt.py: the first Ctrl-C or SIGTERM asks for a clean stop, the second aborts."""
import os
import signal

import pytest

from core.interrupt import StopRequest, TrainingInterrupted


@pytest.fixture
def python_sigint_handler():
    """Python's own Ctrl-C handler, whatever this process started with: a shell running the
    suite in the background (`cmd &` in a script) starts it with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_first_sigint_requests_second_aborts(python_sigint_handler):
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    # the previous handler is back: Python's default raises KeyboardInterrupt at once
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


def test_these_tests_pass_when_sigint_is_ignored_at_start():
    """`bash -c 'bash scripts/test.sh > log 2>&1 & wait'` starts pytest with SIGINT ignored."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                          "-k", "not ignored_at_start"], cwd=root, capture_output=True, text=True, timeout=300,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert out.returncode == 0, out.stdout[-2000:]


def test_sigterm_requests_a_stop_and_the_handler_is_restored():
    """`timeout` and job schedulers send SIGTERM: it must give the same clean stop."""
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *a: seen.append("outer"))
    try:
        with StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.requested and not seen
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == ["outer"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_message_says_how_to_resume():
    e = TrainingInterrupted("NeRF", 7, "/x/nerf_000007.pkl")
    assert "step 7" in str(e) and "nerf_000007.pkl" in str(e) and "again to resume" in str(e)
