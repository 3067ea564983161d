"""Host-side cost of one NeRF training step: kernel launches and milliseconds at a tiny workload.

At fern's real workload a GPU step takes about 24 ms (41 it/s on the H200); a good part of it is
fixed host work - building Jittor's graph in Python and the executor's cost per kernel launch -
which does not shrink with a faster GPU.  This measures exactly that part, on any machine: the
same step (coarse + fine NeRF, view directions, Adam) on 4 rays with 4+4 samples, where the
arithmetic is negligible.  Compares jt.optim.Adam with the project's Adam (core/optim.py),
both its per-tensor path (fused=False) and its multi-tensor kernel (fused=True, one launch per
parameter group); the differences in launches per step are the optimizers' own.  Last, the
style stage's step (frozen density, style MLP, latent codes) on the same tiny workload, with
the style MLP evaluated at both levels' depths and (as the style stage does) once, and from a
sample cache of 8 samples a pixel (--style_samples: the style MLP alone, no density).

    python bench/bench_host_overhead.py [--steps 200]
"""
import argparse
import functools
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from backend import runtime  # noqa: E402
from bench.common import nerf_train_step, profile_ops, style_train_step  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datadir", default=os.path.join(ROOT, "data", "nerf_llff_data", "fern"))
    ap.add_argument("--steps", type=int, default=200)
    a = ap.parse_args()
    jt = runtime.setup()
    from core.config import parse_args
    from core.optim import Adam
    from pipeline.stages import load_scene
    args = parse_args(["--config", os.path.join(ROOT, "configs", "fern.txt"), "--datadir", a.datadir,
                       "--factor", "8", "--N_samples", "4", "--N_samples_fine", "4"])
    scene = load_scene(args)
    variants = (("jt.optim.Adam", jt.optim.Adam),
                ("Adam unfused", functools.partial(Adam, fused=False)),
                ("Adam fused", functools.partial(Adam, fused=True)))
    steps = [(name, nerf_train_step(args, scene, opt_class, n_rays=4)[0]) for name, opt_class in variants]
    steps += [("style, 2 MLP passes", style_train_step(args, scene, n_rays=4, share_color=False)),
              ("style stage step", style_train_step(args, scene, n_rays=4)),  # one MLP pass; fused Adam
              ("style, sample cache", style_train_step(args, scene, n_rays=4, cached_k=8))]  # --style_samples 8
    for name, step in steps:
        for k in range(5):  # compile
            step(k)
        jt.sync_all(True)
        t = time.time()
        for k in range(a.steps):
            step(k)
        jt.sync_all(True)
        ms = (time.time() - t) / a.steps * 1e3
        launches, _, _ = profile_ops(lambda: step(0), top=0, log=lambda *_: None)
        print(f"{name:20s} {ms:6.1f} ms/step  {launches:4d} kernel launches/step  ({runtime.summary()})")


if __name__ == "__main__":
    main()
