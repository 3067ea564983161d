"""The NumPy part of a style step from the sample cache (--style_samples), at fern_quick's size.

    python bench/diag/diag_cached_batch.py [--steps 300] [--k 32] [--rays 1024]

Before a step reaches Jittor, the host draws the batch, gathers its targets, builds its rays,
looks up its cached samples and jitters them (pipeline/style_stage.py's style_step and
render_cached). On a GPU that work bounds the step rate from below whatever the kernels cost.
Random stand-ins of fern_quick's shapes (3 styles, 20 views at 504x378); prints ms a step per part.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--rays", type=int, default=1024)
    a = ap.parse_args(argv)
    runtime.setup(quiet=True)
    from dataset.rays import pixel_rays
    from pipeline.style_samples import SampleCache
    from pipeline.style_stage import gather_targets, sample_batch
    from render.cached_samples import jittered
    H, W, V, S = 378, 504, 20, 3
    rng0 = np.random.default_rng(0)
    targets = [np.zeros((V, H, W, 3), np.uint8) for _ in range(S)]
    cache = SampleCache(*[rng0.random((V, H, W, a.k), dtype=np.float32).astype(np.float16) for _ in range(4)])
    c2ws = rng0.random((V, 3, 4)).astype(np.float32)
    t = dict.fromkeys(("batch", "targets", "rays", "lookup", "jitter"), 0.0)
    for step in range(a.steps):
        rng = np.random.default_rng([0, 6, step])
        t0 = time.perf_counter()
        s, v, r, c = sample_batch(rng, S, V, H, W, a.rays)
        t1 = time.perf_counter()
        gather_targets(targets, s, v, r, c)
        t2 = time.perf_counter()
        pixel_rays(H, W, 400.0, c2ws[v], r.astype(np.float64), c.astype(np.float64), ndc=True)
        t3 = time.perf_counter()
        z, _, _, spread = cache.lookup(v, r, c)
        t4 = time.perf_counter()
        jittered(z, spread, rng)
        t5 = time.perf_counter()
        for key, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            t[key] += dt
    parts = ", ".join(f"{k} {1e3 * v / a.steps:.3f}" for k, v in t.items())
    print(f"ms a step ({a.rays} rays, K {a.k}): {parts}; total {1e3 * sum(t.values()) / a.steps:.2f}")


if __name__ == "__main__":
    main()
