"""Host memory of the style stage's data for fern at factor 4 with 20 styles (CPU is enough).

Builds what stage 6 holds - the geometry arrays of 20 views at 756x1008 and 20 stylized
target stacks saved as the pipeline saves them (uint8 .npy, opened memory-mapped) - then
draws --steps batches of 1024 (style, view, pixel) rays exactly as pipeline/style_stage.py
does (sample_batch, gather_targets, pixel_rays) and prints the peak resident memory.
Target (issue): under 4 GB.  The target files take about 0.9 GB of disk in a temp folder.

    python bench/bench_style_memory.py [--styles 20 --views 20 --steps 500]
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backend import runtime  # noqa: E402


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--styles", type=int, default=20)
    ap.add_argument("--views", type=int, default=20)
    ap.add_argument("--H", type=int, default=756)
    ap.add_argument("--W", type=int, default=1008)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=1024)
    a = ap.parse_args()
    runtime.setup(quiet=True)
    from pipeline.geometry import GeometryData
    from pipeline.style_stage import gather_targets, pixel_rays, sample_batch
    base = rss_mb()
    folder = tempfile.mkdtemp(prefix="style_mem_")
    try:
        rng = np.random.default_rng(0)
        V, H, W = a.views, a.H, a.W
        geo = GeometryData(rgb=np.zeros((V, H, W, 3), np.float32), depth=np.zeros((V, H, W), np.float32),
                           points=np.zeros((V, H, W, 3), np.float32),
                           c2ws=np.tile(np.eye(4, dtype=np.float32)[:3], (V, 1, 1)), hwf=(H, W, 800.0))
        for arr in (geo.rgb, geo.depth, geo.points):
            arr.fill(0.5)  # touch every page, as loading the geometry cache does
        t = time.time()
        for k in range(a.styles):
            np.save(os.path.join(folder, f"{k:03d}.npy"), rng.integers(0, 255, (V, H, W, 3), dtype=np.uint8))
        write_s = time.time() - t
        targets = [np.load(os.path.join(folder, f"{k:03d}.npy"), mmap_mode="r") for k in range(a.styles)]
        t = time.time()
        for step in range(a.steps):
            r = np.random.default_rng([0, 6, step])
            s, v, rows, cols = sample_batch(r, a.styles, V, H, W, a.batch)
            gather_targets(targets, s, v, rows, cols)
            pixel_rays(H, W, 800.0, geo.c2ws[v], rows.astype(np.float64), cols.astype(np.float64))
        per_step_ms = 1e3 * (time.time() - t) / a.steps
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        disk = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) / 2 ** 20
        print(f"{a.styles} styles x {V} views at {W}x{H}: targets {disk:.0f} MB on disk (memory-mapped)")
        print(f"resident memory: {base:.0f} MB at start, {rss_mb():.0f} MB now, peak {peak:.0f} MB")
        print(f"batch preparation: {per_step_ms:.2f} ms/step over {a.steps} steps (writing targets took {write_s:.1f} s)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
