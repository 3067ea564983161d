"""core/eta.py: one line, once, when a stage would run longer than an hour at its measured rate."""
from core import eta


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def drive(notice, clock, seconds_per_step, steps):
    for step in range(1, steps + 1):
        clock.t += seconds_per_step * (30 if step == 1 else 1)  # the first step compiles
        notice.step(step)


def test_a_long_stage_gets_one_line_with_the_estimate_and_the_cpu_config():
    lines, clock = [], Clock()
    notice = eta.LongRunNotice("NeRF", 120001, on_cpu=True, write=lines.append, clock=clock)
    drive(notice, clock, 10.0, 50)  # fern.txt on a CPU: about 10 s a step
    assert len(lines) == 1  # measured from step 2 on, two 10 s windows that agree: at step 4
    line = lines[0]
    # 119997 steps left at 10 s a step = 333 hours = 14 days
    assert line.startswith("note: the NeRF stage needs about 14 days more on the CPU")
    assert "119997 steps left at the measured 10.0 s a step" in line and "configs/fern_cpu.txt" in line


def test_on_a_gpu_no_cpu_config_and_hours_in_steps_per_second():
    lines, clock = [], Clock()
    notice = eta.LongRunNotice("style training", 5000001, on_cpu=False, write=lines.append, clock=clock)
    drive(notice, clock, 0.01, 500)  # two windows of 200 steps
    assert len(lines) == 1 and "on this GPU" in lines[0] and "fern_cpu" not in lines[0]
    assert "100.0 steps/s" in lines[0] and "14 hours" in lines[0]


def test_a_stage_under_an_hour_gets_its_expected_time_without_a_note():
    lines, clock = [], Clock()
    notice = eta.LongRunNotice("NeRF", 5000, on_cpu=True, write=lines.append, clock=clock)
    drive(notice, clock, 0.5, 300)  # 5000 steps at 2 steps/s: 42 minutes
    # measured over steps 2..22 and 22..42 (10 s each): 4958 steps left at 2 steps/s = 2479 s
    assert lines == ["NeRF: about 41 minutes more (4958 steps at the measured 2.0 steps/s)"] and notice.done


def test_a_warm_up_that_speeds_up_is_not_extrapolated():
    """A GPU's first seconds run slower (late kernels, cuDNN's algorithm search): the estimate
    waits for two windows that agree."""
    lines, clock = [], Clock()
    notice = eta.LongRunNotice("style training", 30000, on_cpu=False, write=lines.append, clock=clock)
    for step in range(1, 30001):
        clock.t += 1 / 20 if step <= 200 else 1 / 50  # 20 steps/s for the first 10 s, then 50
        notice.step(step)
        if notice.done:
            break
    assert len(lines) == 1 and "at the measured 50.0 steps/s" in lines[0] and "about 10 minutes" in lines[0]


def test_a_rate_that_never_settles_is_said_after_the_last_window():
    lines, clock = [], Clock()
    notice = eta.LongRunNotice("NeRF", 10 ** 6, on_cpu=False, write=lines.append, clock=clock)
    step = 0
    while not notice.done:
        step += 1
        clock.t += 1.0 / step  # ever faster: no two windows of 200 steps agree within 15%
        notice.step(step)
    assert len(lines) == 1 and len(notice._rates) == eta.MAX_WINDOWS


def test_a_stage_under_a_minute_says_nothing():
    lines, clock = [], Clock()
    notice = eta.LongRunNotice("VAE", 1000, on_cpu=True, write=lines.append, clock=clock)
    drive(notice, clock, 0.02, 1000)  # 1000 steps at 50 steps/s: 20 s
    assert lines == [] and notice.done


def test_durations():
    assert eta.format_duration(45 * 60) == "45 minutes"
    assert eta.format_duration(75) == "75 s"
    assert eta.format_duration(3 * 3600) == "3.0 hours"
    assert eta.format_duration(40 * 3600) == "40 hours"
    assert eta.format_duration(10 * 86400) == "10 days"


def test_the_loop_wrapper_times_each_body(monkeypatch):
    seen = []
    monkeypatch.setattr(eta.LongRunNotice, "step", lambda self, s: seen.append(s))
    assert list(eta.announce_long_runs(range(3), "NeRF", 3)) == [0, 1, 2] and seen == [0, 1, 2]
