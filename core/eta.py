"""Say once, early, how long a training stage will take at the rate it is running.

The progress bar shows an ETA, but a CPU user starting fern.txt sees "345 hours" only if
they look.  Every stage with at least EXPECT_S left gets one line with its expected time; one
that would run longer than LONG_S gets a note instead, with, on the CPU, the quick CPU
settings.  The rate is measured after the first WARMUP_STEPS (Jittor compiles its kernels
then), over windows of at least MEASURE_S seconds or MEASURE_STEPS steps, and said once two
windows in a row agree within STABLE (or after MAX_WINDOWS): a GPU's first seconds are slower
(late kernels, cuDNN's algorithm search, caches), and fern_quick's style stage on one H100
(2026-12-05) ran at 20.7 steps/s over its first 10 s against 50 steps/s from the second minute
on, which a single window turned into "about 24 minutes" for 10.
"""
import sys
import time

LONG_S = 3600.0
EXPECT_S = 60.0
WARMUP_STEPS = 2
MEASURE_S = 10.0
MEASURE_STEPS = 200
STABLE = 0.15     # two windows' rates this close (relative) make the estimate
MAX_WINDOWS = 6   # or the last of this many windows does
CPU_HINT = ("for a quick CPU run (9 minutes on 2 cores once Jittor's kernels are compiled, a rough result) "
            "use configs/fern_cpu.txt: bash scripts/setup_and_run.sh configs/fern_cpu.txt")


def format_duration(seconds):
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} hours" if seconds >= 10 * 3600 else f"{seconds / 3600:.1f} hours"
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} s"


class LongRunNotice:
    """notice = LongRunNotice("NeRF", last_step); notice.step(step) after every step."""

    def __init__(self, stage, last_step, on_cpu=None, write=None, clock=time.monotonic):
        self.stage, self.last_step, self.clock = stage, int(last_step), clock
        self.on_cpu = on_cpu
        self.write = write
        self._t0 = self._s0 = None
        self._rates = []  # the measured windows' rates
        self._seen = 0
        self.done = False
        self.message = None

    def step(self, step):
        if self.done:
            return
        self._seen += 1
        if self._seen == WARMUP_STEPS:
            self._t0, self._s0 = self.clock(), step
            return
        if self._t0 is None:
            return
        now = self.clock()
        elapsed, steps = now - self._t0, step - self._s0
        if steps <= 0 or (elapsed < MEASURE_S and steps < MEASURE_STEPS):
            return
        rate = steps / max(elapsed, 1e-9)
        self._rates.append(rate)
        self._t0, self._s0 = now, step
        stable = len(self._rates) > 1 and abs(rate - self._rates[-2]) <= STABLE * rate
        if not stable and len(self._rates) < MAX_WINDOWS and step < self.last_step:
            return
        self.done = True
        left = (self.last_step - step) / rate
        if left > LONG_S:
            self.message = self._line(rate, left, self.last_step - step)
        elif left >= EXPECT_S:
            self.message = (f"{self.stage}: about {format_duration(left)} more "
                            f"({self.last_step - step} steps at the measured {_rate_text(rate)})")
        if self.message:
            self._emit(self.message)

    def _line(self, rate, left, steps_left):
        on_cpu = self.on_cpu
        if on_cpu is None:
            from backend import runtime
            on_cpu = not runtime.use_cuda()
        where = "on the CPU" if on_cpu else "on this GPU"
        line = (f"note: the {self.stage} stage needs about {format_duration(left)} more {where} "
                f"({steps_left} steps left at the measured {_rate_text(rate)})")
        return line + ("; " + CPU_HINT if on_cpu else "")

    def _emit(self, line):
        if self.write is not None:
            return self.write(line)
        from tqdm import tqdm
        tqdm.write(line, file=sys.stderr)


def _rate_text(rate):
    return f"{rate:.1f} steps/s" if rate >= 1 else f"{1 / rate:.1f} s a step"


def announce_long_runs(steps, stage, last_step):
    """Iterate over `steps` (a training loop's range or progress bar), timing each loop body."""
    notice = LongRunNotice(stage, last_step)
    for s in steps:
        yield s
        notice.step(s)  # runs when the loop asks for the next step: after this one's body
