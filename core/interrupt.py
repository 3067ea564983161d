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
"""
import signal
import threading


class TrainingInterrupted(Exception):
    """Raised after a requested stop was saved; `run again to resume` is the user's next step."""

    def __init__(self, stage, step, path):
        super().__init__(f"{stage} interrupted at step {step}; saved {path}. Run the same command again to resume.")
        self.stage, self.step, self.path = stage, step, path


class StopRequest:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = signal.Signals(signum).name
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
