"""core/train_loop: resume, periodic saves with rotation, a signal saves and stops, the time box."""
import os
import signal

import pytest

from core.checkpoint import CheckpointManager, wait_for_flushes
from core.interrupt import TrainingInterrupted
from core.train_loop import TimeLimitReached, TrainLoop, resume


def _train(ckpts, start, last, every, body=lambda step: None, **kw):
    state = {"x": 0}

    def save(step):
        return ckpts.save(step, {"step": step, "x": state["x"]})
    loop = TrainLoop("toy", start, last, save=save, every=every, **kw)
    for step in loop:
        state["x"] += step  # the "training": a running sum a resume must continue exactly
        body(step)
    wait_for_flushes()
    return state["x"], loop


def test_periodic_saves_rotation_and_an_exact_resume(tmp_path):
    ckpts = CheckpointManager(str(tmp_path), "toy", keep=2)
    total, loop = _train(ckpts, 0, 7, every=3)
    assert loop.saved == [3, 6, 7] and ckpts.steps() == [6, 7]  # keep 2
    assert total == sum(range(1, 8))
    start, path, ck = resume(ckpts, ("step", "x"), "toy", log=lambda *_: None, key="step")
    assert (start, os.path.basename(path), ck["x"]) == (7, "toy_000007.pkl", 28)
    assert resume(ckpts, (), "toy", no_reload=True) == (0, None, None)


def test_no_save_at_the_end_when_the_stage_writes_its_own_result(tmp_path):
    ckpts = CheckpointManager(str(tmp_path), "toy", keep=5)
    _, loop = _train(ckpts, 2, 6, every=3, save_last=False)
    assert loop.saved == [3]  # 6 is the last step: not saved


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_step_saves_and_stops(tmp_path, sig):
    ckpts = CheckpointManager(str(tmp_path), "toy", keep=5)

    def body(step):
        if step == 4:
            os.kill(os.getpid(), sig)
    with pytest.raises(TrainingInterrupted) as e:
        _train(ckpts, 0, 100, every=50, body=body)
    assert e.value.step == 4 and ckpts.steps() == [4]
    # the rerun resumes at step 5 and reaches the same total as an uninterrupted run
    start, _, ck = resume(ckpts, ("x",), "toy", log=lambda *_: None)
    assert start == 4 and ck["x"] == 1 + 2 + 3 + 4


def test_the_time_box_saves_and_stops_then_the_rerun_finishes(tmp_path):
    ckpts = CheckpointManager(str(tmp_path), "toy", keep=5)
    now = {"t": 0.0}

    def clock():
        return now["t"]

    def body(step):
        now["t"] += 10.0  # each step takes 10 s of the fake clock
    with pytest.raises(TimeLimitReached) as e:
        _train(ckpts, 0, 100, every=1000, body=body, deadline=35.0, clock=clock)
    assert e.value.step == 4 and ckpts.steps() == [4] and "again to resume" in str(e.value)
    start, _, ck = resume(ckpts, ("x",), "toy", log=lambda *_: None)
    total, _ = _train(ckpts, start, 6, every=1000)
    assert ck["x"] + total == sum(range(1, 7))  # steps 5 and 6 after the saved 1..4


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.mark.parametrize("compiled,first_s,said", [(37, 95.0, True), (0, 95.0, False), (37, 1.0, False)])
def test_a_first_step_that_compiles_says_so_and_the_bar_restarts_its_clock(tmp_path, monkeypatch, compiled,
                                                                           first_s, said):
    """Step 1 that took long because Jittor compiled kernels gets a line with the count, and the
    bar's estimate restarts after it; a slow step without compiling, or a quick one, says nothing."""
    import core.train_loop as tl
    counts = iter([100, 100 + compiled])
    monkeypatch.setattr(tl, "jit_kernels", lambda: next(counts))
    clock, written = FakeClock(), []
    ckpts = CheckpointManager(str(tmp_path), "toy", keep=2)
    loop = TrainLoop("style training", 10, 14, save=lambda s: ckpts.save(s, {"step": s}), every=100,
                     clock=clock, bar_base=10)
    for step in loop:
        clock.t += first_s if step == 11 else 0.01
        if step == 11:
            monkeypatch.setattr(loop.bar, "write", written.append)
        if step == 12:
            bar_n, bar_initial = loop.bar.n, loop.bar.initial
    wait_for_flushes()
    if said:
        assert written == [f"style training: the first step took 95 s: Jittor compiled {compiled} kernels "
                           "(kept in its cache, so a later run starts at once)"]
        assert (bar_n, bar_initial) == (1, 1)  # the rate counts from step 2
    else:
        assert written == [] and (bar_n, bar_initial) == (1, 0)
