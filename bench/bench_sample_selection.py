"""Host time of the sample selection that follows a frozen-density render, per view.

The style sample cache (pipeline/style_samples.py) and the stylized renders of one point a ray
(render/renderer.py, top_k_samples) take every ray's compositing weights to NumPy and keep its
heaviest samples (render/cached_samples.top_samples); the cache of K heaviest samples also
ranks them to report the share of the weight it holds (kept_weight).  This is CPU work between
GPU renders, so it counts on a GPU machine too.  The sizes are fern_quick's (a 504x378 view at
--target_factor 2, 64 + 64 samples a ray) unless given; the weights are random, concentrated
on a few samples a ray as a trained NeRF's are, with some empty rays.  Prints seconds a view
(the best of --repeat) for each selection, then for a one-point render's whole selection from
the two levels' densities (compositing included): the weights fetched and selected on the host,
against renderer.one_point_samples, which selects where the densities are (on a GPU machine the
former also moves three [rays, samples] arrays to the host and back; not measured here).

    python bench/bench_sample_selection.py [--rays 190512 --samples 128 --repeat 3]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backend import runtime  # noqa: E402


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rays", type=int, default=504 * 378)
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    runtime.setup(device="cpu", quiet=True)
    from render.cached_samples import kept_weight, top_samples

    rng = np.random.default_rng(0)
    R, S = a.rays, a.samples
    z = np.sort(rng.uniform(0, 1, (R, S)).astype(np.float32), 1)
    w_c = rng.random((R, S), dtype=np.float32) ** 8 / 20
    w_f = rng.random((R, S), dtype=np.float32) ** 8 / 20
    w_c[: R // 40], w_f[: R // 40] = 0, 0  # empty rays
    cases = [("top_samples, one point at the expected depth (fern_quick)", lambda: top_samples(z, w_c, w_f, 1, True)),
             ("top_samples, the 16 heaviest", lambda: top_samples(z, w_c, w_f, 16)),
             ("kept_weight at 1 and 2 (the former surface cache's coverage)", lambda: kept_weight(w_c, w_f, [1, 2])),
             ("kept_weight at 16 and 32", lambda: kept_weight(w_c, w_f, [16, 32]))]
    print(f"{R} rays x {S} samples, best of {a.repeat}:")
    for label, fn in cases:
        print(f"  {label}: {best_time(fn, a.repeat):.3f} s")
    one_point_renders(a, rng)


def one_point_renders(a, rng):
    """A one-point-a-ray render's whole selection from the levels' densities: the weights fetched,
    placed and selected on the host (renderer._level_weights + top_samples, the k > 1 path) against
    renderer.one_point_samples, which keeps it on the device (here the CPU)."""
    import jittor as jt
    from render.cached_samples import top_samples
    from render.renderer import _level_weights, one_point_samples

    R, n_c = a.rays, a.samples // 2
    z_vals = np.sort(rng.uniform(0, 1, (R, n_c)), 1).astype(np.float32)
    z_all = np.sort(np.concatenate([z_vals, rng.uniform(0, 1, (R, a.samples - n_c))], 1), 1).astype(np.float32)
    # each coarse depth's place among all depths: one search over the rows laid end to end
    offset = np.arange(R, dtype=np.float64)[:, None] * 2.0
    coarse_at = (np.searchsorted((z_all + offset).ravel(), (z_vals + offset).ravel()).reshape(R, n_c)
                 - np.arange(R)[:, None] * a.samples).astype(np.int32)
    geo = {k: jt.array(v) for k, v in dict(
        z_vals=z_vals, z_all=z_all, coarse_at=coarse_at, sigma_c=rng.normal(0, 3, (R, n_c)).astype(np.float32),
        sigma_f=rng.normal(0, 3, (R, a.samples)).astype(np.float32)).items()}
    rays_d = jt.array(rng.normal(0, 1, (R, 3)).astype(np.float32))
    jt.sync_all()

    def host():
        z, w_c, w_f, *_ = _level_weights(geo, rays_d, n_c)
        return top_samples(z, w_c, w_f, 1, True)

    def device():
        out = one_point_samples(geo, rays_d, True)
        jt.sync([out["z"], out["w_coarse"], out["w_fine"]])

    print("  a one-point render's selection from the levels' densities (composited here too):")
    for label, fn in (("weights to the host, then top_samples", host), ("one_point_samples", device)):
        print(f"    {label}: {best_time(fn, a.repeat):.3f} s")


if __name__ == "__main__":
    main()
