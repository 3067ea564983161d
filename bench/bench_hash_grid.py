"""Time of the style field's hash-grid step: one table shared by the styles against a table per
style (--hash_per_style), the rest of the step left out.

A step = the grid features of --points points (their styles drawn at random, as a batch of
several styles has them), a loss on them, its gradient and the project's Adam update of the
table(s).  The sizes are fern_quick's (16 levels of 2^21 rows, 2 features, 3 styles) unless
given.  Prints ms a step for each layout and their ratio.

    python bench/bench_hash_grid.py [--styles 3 --points 4096 --log2_size 21 --steps 20]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backend import runtime  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--styles", type=int, default=3)
    ap.add_argument("--points", type=int, default=4096)
    ap.add_argument("--log2_size", type=int, default=21)
    ap.add_argument("--levels", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    jt = runtime.setup(quiet=True)
    from core.optim import Adam
    from models.hash_grid import HashGrid
    from models.style_mlp import HashStyleMLP

    rng = np.random.default_rng(0)
    pts = jt.array(rng.uniform(-1, 1, (a.points, 3)).astype(np.float32))
    ids = rng.integers(0, a.styles, a.points)
    times = {}
    for label, n_tables in (("one table", 1), (f"a table per style ({a.styles})", a.styles)):
        grid = HashGrid(-np.ones(3), np.ones(3), n_levels=a.levels, log2_size=a.log2_size, max_res=2048,
                        n_tables=n_tables)
        field = HashStyleMLP(grid, D=2, W=16, input_ch=3, latent_dim=2)
        opt = Adam(field.grid_tables(), lr=1e-2)

        def step():
            f = field.features(pts, ids)
            opt.step((f * f).mean())
            jt.sync_all()

        for _ in range(3):  # compiling
            step()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        times[label] = (time.perf_counter() - t0) / a.steps * 1e3
        print(f"{label}: {times[label]:.2f} ms a step ({a.points} points, {a.levels} levels of 2^{a.log2_size} "
              f"rows, {jt.flags.use_cuda and 'GPU' or 'CPU'})", flush=True)
        del field, opt, grid
        jt.gc()
    shared, own = times.values()
    print(f"a table per style / one table: {own / shared:.2f}x")


if __name__ == "__main__":
    main()
