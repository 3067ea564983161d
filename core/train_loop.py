"""What every training loop does around its step: resume, progress bar, periodic checkpoints
with rotation, a clean stop on Ctrl-C / SIGTERM, and the run's time box.

    start, path, ck = resume(ckpts, required_keys, "NeRF", log, no_reload=args.no_reload)
    ...restore the model from ck...
    loop = TrainLoop("NeRF", start, last, save=lambda s: ckpts.save(s, state(s)), every=args.i_weights)
    for step in loop:            # start+1 .. last
        ...one training step...
        if loop.due(args.i_print):
            loop.postfix(loss=...)

After each step the loop saves when `step % every == 0` (and at `last` with save_last), and
when a stop was asked for (a signal, or the time box ran out): then it saves and raises
TrainingInterrupted / TimeLimitReached, which the entry point turns into its resume hint.
Step numbers count finished steps, so a checkpoint at step s resumes at step s + 1.
The expected-time line (core/eta.py) comes with it, and a first step that compiled Jittor
kernels gets a line of its own (core/compile_count.py), after which the bar's estimate restarts.
"""
import time

from tqdm import tqdm

from core.compile_count import jit_kernels
from core.eta import LongRunNotice, format_duration
from core.interrupt import StopRequest, TrainingInterrupted, note_saved

FIRST_STEP_NOTE_S = 5.0  # a first step this slow that compiled kernels gets its own line


def sync():
    """Wait for Jittor's queued work (where Jittor is loaded)."""
    import sys
    jt = sys.modules.get("jittor")
    if jt is not None:
        jt.sync_all()

_deadline = None  # time.monotonic() by which every training loop of this run stops (None: none)
_minutes = None   # the --time_limit behind it, for the message


class TimeLimitReached(TrainingInterrupted):
    """The run's --time_limit passed: the loop saved and stopped; a rerun resumes."""

    def __init__(self, stage, step, path, minutes):
        Exception.__init__(self, f"--time_limit {minutes:g} min reached: {stage} stopped at step {step}; "
                                 f"saved {path}. Run the same command again to resume.")
        self.stage, self.step, self.path = stage, step, path


def start_time_box(minutes, clock=time.monotonic):
    """Every training loop from now on stops, saved, `minutes` from now (0 or None: no limit)."""
    global _deadline, _minutes
    _deadline = clock() + 60.0 * minutes if minutes else None
    _minutes = minutes


def resume(ckpts, required_keys, stage, log=print, no_reload=False, unit="step", key=None):
    """(start, path, checkpoint) from the newest readable checkpoint of `ckpts` (a
    CheckpointManager), or (0, None, None); says what it resumed from."""
    if no_reload:
        return 0, None, None
    step, path, ck = ckpts.load_latest(required_keys, log)
    if path is None:
        return 0, None, None
    start = int(ck[key]) if key else int(step)
    log(f"resumed {stage} from {path} ({unit} {start})")
    return start, path, ck


class TrainLoop:
    """Iterates steps start+1..last with a tqdm bar; saves and stops as the module doc says.

    save(step) -> path writes a checkpoint (rotation is the CheckpointManager's).
    save_last: also save after the last step (False where the stage writes its own final file).
    bar_base: subtracted from the steps shown on the bar (the style stage counts from origin_step).
    eta_last: the step the one-hour estimate aims at (default last).
    """

    def __init__(self, stage, start, last, save, every, save_last=True, desc=None, bar_base=0,
                 eta_last=None, deadline=None, clock=time.monotonic, bar_kwargs=None):
        self.stage, self.start, self.last = stage, int(start), int(last)
        self.save, self.every, self.save_last = save, int(every), save_last
        self.desc, self.bar_base = desc or stage, bar_base
        self.eta_last = self.last if eta_last is None else eta_last
        self.deadline = _deadline if deadline is None else deadline
        self.minutes = _minutes
        self.clock = clock
        self.bar_kwargs = dict(bar_kwargs or {})
        self.step = self.start
        self.bar = None
        self.t0 = None
        self.saved = []  # steps saved by this loop (tests, reports)

    def due(self, every):
        """True every `every` steps and at the last one (when to fetch and show losses)."""
        return self.step % every == 0 or self.step == self.last

    def rate(self):
        """Steps a second since this loop started."""
        return (self.step - self.start) / max(self.clock() - self.t0, 1e-9)

    def postfix(self, **values):
        self.bar.set_postfix(refresh=False, **values)

    def _timed_out(self):
        return self.deadline is not None and self.clock() >= self.deadline

    def _first_step(self, seconds, kernels):
        """After step 1: when it compiled kernels and took long, say so, and restart the bar's
        clock so that its estimate is the steady rate's, not the compile's."""
        if kernels <= 0 or seconds < FIRST_STEP_NOTE_S:
            return
        self.bar.write(f"{self.stage}: the first step took {format_duration(seconds)}: Jittor compiled "
                       f"{kernels} kernels (kept in its cache, so a later run starts at once)")
        n = self.bar.n
        self.bar.reset()
        self.bar.n = self.bar.last_print_n = self.bar.initial = n
        self.bar.refresh()

    def __iter__(self):
        self.bar = tqdm(initial=self.start - self.bar_base, total=self.last - self.bar_base, desc=self.desc,
                        dynamic_ncols=True, **self.bar_kwargs)
        notice = LongRunNotice(self.stage, self.eta_last)
        self.t0 = self.clock()
        kernels = jit_kernels()
        try:
            with StopRequest() as stop:
                for step in range(self.start + 1, self.last + 1):
                    self.step = step
                    yield step
                    self.bar.update(1)
                    if step == self.start + 1:
                        sync()  # Jittor runs (and compiles) a step's graph lazily: finish it first
                        self._first_step(self.clock() - self.t0, jit_kernels() - kernels)
                    notice.step(step)
                    timed_out = self._timed_out()
                    periodic = step % self.every == 0 and (step < self.last or self.save_last)
                    if periodic or (step == self.last and self.save_last) or stop.requested or timed_out:
                        path = self.save(step)
                        self.saved.append(step)
                        note_saved(self.stage, step, path)
                        if stop.requested:
                            raise TrainingInterrupted(self.stage, step, path)
                        if timed_out and step < self.last:
                            raise TimeLimitReached(self.stage, step, path, self.minutes or 0)
        finally:
            self.bar.close()
