"""Wall time of named stages (printed by benchmarks; logged by the pipeline)."""
import contextlib
import time

STAGE_TIMES = {}


@contextlib.contextmanager
def stage(name):
    """Time a block, waiting for queued GPU work at both ends so the figure is the block's own."""
    import jittor as jt
    jt.sync_all(True)
    t = time.time()
    yield
    jt.sync_all(True)
    dt = time.time() - t
    STAGE_TIMES[name] = STAGE_TIMES.get(name, 0.0) + dt
    # one line per finished stage, so a run cut short still tells how far it got and how fast
    print(f"[stage time] {name}: {dt:.1f} s", flush=True)
