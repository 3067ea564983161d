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
    assert len(lines) == 1  # measured from step 2 on, once 10 s have passed: at step 3
    line = lines[0]
    # 119998 steps left at 10 s a step = 333 hours = 14 days
    assert line.startswith("note: the NeRF stage needs about 14 days more on the CPU")
    assert "119998 steps left at the measured 10.0 s a step" in line and "configs/fern_cpu.txt" in line


def test_on_a_gpu_no_cpu_config_and_hours_in_steps_per_second():
    lines, clock = [], Clock()
    notice = eta.LongRunNotice("style training", 5000001, on_cpu=False, write=lines.append, clock=clock)
    drive(notice, clock, 0.01, 300)
    assert len(lines) == 1 and "on this GPU" in lines[0] and "fern_cpu" not in lines[0]
    assert "100.0 steps/s" in lines[0] and "14 hours" in lines[0]


def test_a_stage_under_an_hour_gets_its_expected_time_without_a_note():
    lines, clock = [], Clock()
    notice = eta.LongRunNotice("NeRF", 5000, on_cpu=True, write=lines.append, clock=clock)
    drive(notice, clock, 0.5, 300)  # 5000 steps at 2 steps/s: 42 minutes
    # measured over steps 2..22 (10 s): 4978 steps left at 2 steps/s = 2489 s
    assert lines == ["NeRF: about 41 minutes more (4978 steps at the measured 2.0 steps/s)"] and notice.done


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
