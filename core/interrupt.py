"""Ctrl-C that stops a training loop cleanly: finish the step, save a checkpoint, exit.

    with StopRequest() as stop:
        for step in ...:
            ...one training step...
            if stop.requested:
                save(step)
                raise TrainingInterrupted(step, path)

The first Ctrl-C (SIGINT) or SIGTERM (what `timeout`, `kill` and job schedulers such as
SLURM send before they kill) only sets `requested`; a second one raises KeyboardInterrupt at
once.  Outside the main thread (where signal handlers cannot be set) it does nothing.
A second signal within REPEAT_WINDOW_S of the first is the same request delivered twice, not a
user's second Ctrl-C: `timeout` signals the whole process group and a parent that runs jobs
(bench/style_levers.py) passes the signal on to them as well, so a job gets it twice within
milliseconds. Taken as "abort at once", that lost a job's steps since its last checkpoint
(3,500 style steps once on one H100).

`timeout` and SLURM signal the whole process group, so a signal that lands while Jittor is
compiling a step's kernels also stops the compiler, and the step fails with Jittor's compile
error before the loop can save.  stopped_by() names the signal that came, and last_saved() the
newest checkpoint a loop wrote, so that the entry point can say that instead of a traceback.
The same group signal may kill a child of the process (a compiler, say), and Jittor's SIGCHLD
handler ends a process whose child died of a signal ("Caught SIGCHLD. Maybe out of memory ...
quick exit", exit 1): on one H100 it did so right after the loop had saved.  A stop request
therefore hands SIGCHLD back to the system's default for the rest of the process, which is
about to end anyway; Jittor's handler, installed outside Python, cannot be put back.
"""
import signal
import threading
import time

# seconds after a stop request in which the same request arriving again is ignored
REPEAT_WINDOW_S = 1.0


class TrainingInterrupted(Exception):
    """Raised after a requested stop was saved; `run again to resume` is the user's next step."""

    def __init__(self, stage, step, path):
        super().__init__(f"{stage} interrupted at step {step}; saved {path}. Run the same command again to resume.")
        self.stage, self.step, self.path = stage, step, path


class WorkInterrupted(Exception):
    """Ctrl-C in work that is not a training loop (an evaluation, say), whose message says what
    was kept and how to go on; the entry point prints it as TrainingInterrupted's."""


_state = {"signal": None, "saved": None}


def reset():
    """Forget the signal and checkpoint of an earlier job in this process (run_command starts
    each job with it)."""
    _state.update(signal=None, saved=None)


def stopped_by():
    """The name of the stop signal (SIGINT, SIGTERM) received during a training loop, or None."""
    return _state["signal"]


def note_saved(stage, step, path):
    """A training loop wrote a checkpoint (what last_saved returns)."""
    _state["saved"] = (stage, int(step), path)


def last_saved():
    """(stage, step, path) of the newest checkpoint a training loop wrote, or None."""
    return _state["saved"]


def _kept():
    saved = last_saved()
    if saved is None:
        return "the checkpoints written so far are kept. Run the same command again to resume."
    stage, step, path = saved
    return f"the newest checkpoint is {path} ({stage}, step {step}). Run the same command again to resume."


def stop_line(error):
    """One line for an error raised after a stop signal arrived (a step cut short)."""
    cause = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), type(error).__name__)
    return f"{stopped_by()} arrived during a step, which then failed ({type(error).__name__}: {cause[:160]}); " + _kept()


def abort_line():
    """One line for a second signal's KeyboardInterrupt (aborted at once, mid-step)."""
    return "aborted at once; " + _kept()


class StopRequest:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._first = 0.0
        self._previous = None

    def _handler(self, signum, frame):
        now = time.monotonic()
        if self.requested:
            if now - self._first < REPEAT_WINDOW_S:
                print(f"{signal.Signals(signum).name} again within {REPEAT_WINDOW_S:g} s: the same stop request "
                      f"delivered twice (process group and parent); still stopping after this step", flush=True)
                return
            raise KeyboardInterrupt
        self.requested, self._first = True, now
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # children dying of the same signal: expected
        name = signal.Signals(signum).name
        _state["signal"] = name
        print(f"\n{name}: stopping after this step and saving a checkpoint (again to abort at once)", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handler) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for sig, handler in (self._previous or {}).items():
            signal.signal(sig, handler)
        self._previous = None
        return False
