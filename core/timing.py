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
    STAGE_TIMES[name] = STAGE_TIMES.get(name, 0.0) + time.time() - t
