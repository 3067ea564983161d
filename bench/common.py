"""Pieces the benchmarks and diagnostics share: one NeRF training step, and a profile of
Jittor's ops that flags any op that ran on the CPU during a GPU run."""
import numpy as np


def nerf_train_step(args, scene, opt_class, n_rays):
    """A function step(k) doing one NeRF training step (coarse + fine, Adam) on n_rays rays,
    exactly as pipeline.nerf_stage.train_nerf does; returns (step, system)."""
    import jittor as jt
    from dataset.rays import PixelRays
    from pipeline.nerf_stage import NeRFSystem
    from render.options import RenderOptions
    from render.renderer import render_rays
    rays = PixelRays.from_scene(scene, scene.i_train, ndc=not args.no_ndc)
    opts = RenderOptions.from_args(args, scene, "train")
    system = NeRFSystem(args)
    opt = opt_class(system.parameters(), lr=args.lrate)
    coarse, fine = system.fields()

    def step(k):
        b = rays.sample(n_rays, np.random.default_rng([0, k]))
        target = jt.array(b["rgb"])
        out = render_rays(jt.array(b["rays_o"]), jt.array(b["rays_d"]),
                          jt.array(b["viewdirs"]) if args.use_viewdir else None, coarse, fine, opts=opts)
        opt.step(((out["coarse"]["rgb"] - target) ** 2).mean() + ((out["fine"]["rgb"] - target) ** 2).mean())

    return step, system


def profile_ops(fn, top=25, log=print):
    """Run fn() once under Jittor's profiler; print its `top` most expensive ops and a warning
    for ops compiled for the CPU while CUDA is on (each one is a device->host->device trip).
    Returns (total kernel launches, total ms, names of CPU ops)."""
    import jittor as jt
    jt.sync_all(True)
    jt.profiler.start(0, 0)
    fn()
    jt.sync_all(True)
    jt.profiler.stop()
    rows = jt.profiler.report()
    head, rows = rows[0], rows[1:]
    col, count = head.index("TotalTime"), head.index("Count")
    rows.sort(key=lambda r: -float(r[col]))
    total_ms = sum(float(r[col]) for r in rows) / 1e6
    launches = sum(int(r[count]) for r in rows)
    cpu_ops = [r[0] for r in rows if jt.flags.use_cuda and "JIT_cpu" in r[0]]
    log(f"profile: {len(rows)} op kinds, {launches} launches, {total_ms:.1f} ms in all; the most expensive:")
    for r in rows[:top]:
        log(f"{float(r[col]) / 1e6:9.2f} ms  x{r[count]:>4}  {r[0][:160]}")
    if cpu_ops:
        log(f"WARNING: {len(cpu_ops)} op kind(s) ran on the CPU during a GPU run: "
            + "; ".join(op[:100] for op in cpu_ops))
    elif jt.flags.use_cuda:
        log("no op ran on the CPU")
    return launches, total_ms, cpu_ops


def style_train_step(args, scene, n_rays, n_styles=2, share_color=True, cached_k=0):
    """A function step(k) doing one style-stage step (frozen NeRF density, style MLP + latent
    codes, Adam) on n_rays random (style, view, pixel) rays of random targets, exactly as
    pipeline.style_stage.train_style does; geometry views are the scene's training poses.
    cached_k > 0: the step renders from a sample cache (--style_samples) of random depths and
    weights, K a pixel, as the style stage does with one."""
    from pipeline.geometry import GeometryData
    from pipeline.nerf_stage import NeRFSystem
    from pipeline.style_stage import StyleModel, style_step
    from render.options import RenderOptions
    H, W, focal = scene.hwf
    c2ws = scene.poses[scene.i_train].astype(np.float32)
    geo = GeometryData(rgb=None, depth=None, points=None, c2ws=c2ws, hwf=(H, W, focal))
    rng = np.random.default_rng(0)
    targets = [rng.integers(0, 256, (len(c2ws), H, W, 3), dtype=np.uint8) for _ in range(n_styles)]
    mu = rng.standard_normal((n_styles, 32)).astype(np.float32)
    system = NeRFSystem(args)
    for p in system.parameters():
        p.stop_grad()
    model = StyleModel(args, mu, np.zeros_like(mu), len(c2ws), system.embed_xyz.out_dim,
                       [f"style{i}" for i in range(n_styles)])
    opts = RenderOptions.from_args(args, scene, "frozen_geometry")
    args.batch_size_style = n_rays
    samples = None
    if cached_k:
        from pipeline.style_samples import SampleCache
        shape = (len(c2ws), H, W, cached_k)
        depth = np.sort(rng.uniform(0, 1, shape), axis=-1).astype(np.float16)
        samples = SampleCache(depth, *(rng.uniform(0, 1 / cached_k, shape).astype(np.float16) for _ in range(2)),
                              np.full(shape, 0.01, np.float16))
    return style_step(args, system, geo, targets, model, opts, share_color=share_color, samples=samples)


# the stand-in for Jittor around an op's host code in a stand-alone check program (bench/diag/diag_cudnn.py,
# bench/diag/diag_cublaslt.py): a cudaMalloc allocator, LOGf that prints and exits
STANDALONE_STUB = r"""
#define SN_STANDALONE_CHECK
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <vector>
#include <cuda_runtime.h>
struct SnFatal {
    SnFatal() { std::cerr << "FATAL "; }
    ~SnFatal() { std::cerr << std::endl; std::exit(3); }
    template <class T> SnFatal& operator<<(const T& v) { std::cerr << v << ' '; return *this; }
};
#define LOGf SnFatal()
namespace jittor {
struct Allocator {
    void* alloc(size_t n, size_t& a) { void* p = nullptr; cudaMalloc(&p, n); a = 0; return p; }
    void free(void* p, size_t, size_t) { cudaFree(p); }
};
struct Executor { Allocator* temp_allocator; };
Allocator sn_alloc; Executor exe{&sn_alloc};
}
"""


def checkpoint_parser(stride_default):
    """The options every benchmark of a trained NeRF checkpoint takes (eval_nerf, bench_render)."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--expdir", required=True, help="experiment folder holding nerf_<step>.pkl (the newest is used)")
    ap.add_argument("--config", default="configs/fern.txt")
    ap.add_argument("--datadir", default="data/nerf_llff_data/fern")
    ap.add_argument("--stride", type=int, default=stride_default, help="every stride-th pixel in both directions")
    return ap


def parse_checkpoint_args(ap, argv, at_least_one=("stride",)):
    """ap's options (each of at_least_one must be >= 1) plus .args, the run_stylenerf options of
    --config, --datadir and --extra, and .device for core.cli.run_command's runtime set-up."""
    import argparse
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more run_stylenerf options")
    a = ap.parse_args(argv)
    for name in at_least_one:
        if getattr(a, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(a, name)}")
    from core.config import parse_args
    a.args = parse_args(["--config", a.config, "--datadir", a.datadir] + a.extra)
    a.device = a.args.device
    return a
