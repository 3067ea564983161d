"""core/interrupt.py: the first Ctrl-C asks for a clean stop, the second aborts."""
import os
import signal

import pytest

from core.interrupt import StopRequest, TrainingInterrupted


def test_first_sigint_requests_second_aborts():
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    # the previous handler is back: Python's default raises KeyboardInterrupt at once
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


def test_message_says_how_to_resume():
    e = TrainingInterrupted("NeRF", 7, "/x/nerf_000007.pkl")
    assert "step 7" in str(e) and "nerf_000007.pkl" in str(e) and "again to resume" in str(e)
