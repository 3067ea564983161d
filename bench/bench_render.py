"""Fast renderer (render/fast.py) against the exact one on a trained NeRF: speed, skipped MLP
work, and how close the images are.

Photoreal: the held-out views (fine and coarse images, view directions as trained).
Stylized: frames of the novel-view path in --styles styles at once (render_image_colors, as
--render_valid_style), with the experiment's newest style model, or - without one - a style MLP
of the run's size with random weights and random latent codes (the skipping depends on the
NeRF's density; the colour MLP only sets what is drawn).  Every --stride-th pixel of the full
image in both directions is rendered (2 on fern: 504x378).  Prints frames/s
of both paths (per style for the stylized one; after a warm-up render of each), the fraction
of MLP rows each level skipped, and the PSNR between the paths (and of each against the photo).

    tar xzf bench/checkpoints/fern_long.tgz      # fern.txt's NeRF after 120,001 steps
    python bench/bench_render.py --expdir logs/fern_long/bench --stride 8

Measured (2026-12-04, 2-core CPU shared with other work, FP32, fern_long step 120,001,
--stride 8: 95x126 rays a frame; bench/results/2026-12-04_cpu_render_fast_vs_exact.log):
grid 128^3 with 4 probes a cell, 53.8% occupied, built in 120 s (once; cached);
- held-out views 0, 8, 16: fast against exact >= 69.4 dB PSNR (both levels); against the
  photos the same to 0.001 dB; 0.054 -> 0.094 frames/s (x1.75); MLP rows skipped: coarse 68.2%,
  fine 33.4%;
- 3 novel-view path frames in 2 styles at once (random style MLP): >= 92.5 dB; 0.053 -> 0.102
  frames/s per style (x1.92); rows skipped: coarse 68.0%, fine density 33.4%, style colour 50.3%.
What bounds it: the exact renderer's fine samples sit where the weight is, so a fern ray still
needs about 76 of its 128 fine densities (nearly all 64 importance samples lie in front of the
point where its transmittance falls below 1e-4); the savings are the empty space in front of the
surface and the samples behind it.

Half precision: `--extra --matmul fp16` (or bf16) runs the products in half precision on the
GPU (tensor cores, fp32 data); on the CPU Jittor 1.3.11's float16 matmul is a plain loop (360x
slower than float32 on this machine), so the CPU figures are FP32.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.common import checkpoint_parser, parse_checkpoint_args  # noqa: E402
from core.cli import run_command  # noqa: E402


def parse(argv):
    ap = checkpoint_parser(stride_default=2)
    ap.add_argument("--path_frames", type=int, default=3, help="novel-view path frames (spread over the path)")
    ap.add_argument("--styles", type=int, default=2, help="styles rendered together on the path")
    ap.add_argument("--resolution", type=int, default=128, help="occupancy grid cells per axis")
    ap.add_argument("--samples_per_cell", type=int, default=4, help="density probes per grid cell")
    ap.add_argument("--repeat", type=int, default=1, help="renders of each frame per path; the fastest counts")
    return parse_checkpoint_args(ap, argv, ("stride", "path_frames", "styles", "resolution", "samples_per_cell",
                                            "repeat"))


def psnr(a, b):
    return -10.0 * np.log10(max(float(np.mean((np.asarray(a, np.float64) - b) ** 2)), 1e-20))


def rays_of(args, scene, c2w, stride):
    from dataset.rays import image_rays
    H, W, focal = int(scene.hwf[0]), int(scene.hwf[1]), scene.hwf[2]
    ro, rd, vd = (r.reshape(H, W, 3)[::stride, ::stride] for r in image_rays(H, W, focal, c2w, ndc=not args.no_ndc))
    return ro, rd, (vd if args.use_viewdir else None)


def timed(fn, repeat=1):
    """fn()'s result and its fastest wall time over repeat runs."""
    import jittor as jt
    best = np.inf
    for _ in range(repeat):
        jt.sync_all(True)
        t = time.time()
        out = fn()
        jt.sync_all(True)
        best = min(best, time.time() - t)
    return out, best


def style_colours(a, system, n):
    """(coarse field, colour field, what they are) for n styles."""
    import jittor as jt
    from pipeline.style_stage import StyleColors, StyleField, StyleModel, load_style_model
    args = a.args
    try:
        model, step = load_style_model(args, system, a.expdir)
        styles = [k % len(model.mu) for k in range(n)]
        latents = [jt.array(model.mu[k]) for k in styles]
        mlp, what = model.mlp, f"style model step {step}"
    except FileNotFoundError:  # the run's style model (--style_encoding, --style_W) with random weights
        jt.set_global_seed(0)
        rng = np.random.default_rng(0)
        mu = rng.normal(0, 1, (n, args.vae_latent)).astype(np.float32)
        model = StyleModel(args, mu, np.zeros_like(mu), 1, system.embed_xyz.out_dim, [f"random_{k}" for k in range(n)])
        latents, styles = [jt.array(m) for m in mu], list(range(n))
        mlp = model.mlp
        what = (f"a random style MLP, {args.style_encoding} encoding (no style checkpoint in --expdir)")
    return (StyleField(system.coarse, mlp, system.embed_xyz, None),
            StyleColors(system.fine, mlp, system.embed_xyz, latents, styles), what)


def bench(a):
    from pipeline import nerf_stage
    from pipeline.stages import apply_compute_options, load_scene
    from render.fast import fast_options
    from render.occupancy import GridSettings
    from render.options import RenderOptions
    from render.renderer import render_image, render_image_colors
    args = a.args
    apply_compute_options(args)
    scene = load_scene(args)
    system, step, path = nerf_stage.load_trained_nerf(args, a.expdir)
    fields = system.fields()
    exact = RenderOptions.from_args(args, scene, "eval")
    settings = GridSettings(resolution=a.resolution, samples_per_cell=a.samples_per_cell)
    args.render_mode = "fast"
    fast, build_s = timed(lambda: fast_options(exact, args, scene, fields, a.expdir, step, settings=settings))
    skip, grid = fast.skip, fast.skip.grid
    ro, rd, vd = rays_of(args, scene, scene.poses[0], a.stride)
    h, w = ro.shape[:2]
    print(f"{path} (step {step}); {h}x{w} rays a frame; grid {grid.resolution}"
          + f", {100 * grid.fraction:.1f}% occupied (ready in {build_s:.1f} s)", flush=True)

    def photo(opts, ro, rd, vd):
        return render_image(ro, rd, vd, ro.shape[0], ro.shape[1], args.chunk, opts=opts, coarse_field=fields[0],
                            fine_field=fields[1], keys=("rgb", "depth"))

    warm = rays_of(args, scene, scene.poses[0], a.stride * 4)
    for opts in (exact, fast):  # compile before timing
        photo(opts, *warm)
    skip.stats.clear()
    times = {"exact": 0.0, "fast": 0.0}
    worst = {"fine": np.inf, "coarse": np.inf}
    for i in scene.i_test:
        rays = rays_of(args, scene, scene.poses[i], a.stride)
        ref, t_exact = timed(lambda: photo(exact, *rays), a.repeat)
        out, t_fast = timed(lambda: photo(fast, *rays), a.repeat)
        times["exact"] += t_exact
        times["fast"] += t_fast
        gt = scene.images[i][::a.stride, ::a.stride]
        p = {lv: psnr(out[lv]["rgb"], ref[lv]["rgb"]) for lv in worst}
        worst = {lv: min(worst[lv], p[lv]) for lv in worst}
        print(f"  held-out view {int(i):2d}: fast vs exact PSNR fine {p['fine']:.2f} coarse {p['coarse']:.2f}; "
              f"against the photo exact "
              f"{psnr(ref['fine']['rgb'], gt):.3f} fast {psnr(out['fine']['rgb'], gt):.3f}; "
              f"{t_exact:.2f} s -> {t_fast:.2f} s", flush=True)
    n = len(scene.i_test)
    print(f"photoreal: exact {n / times['exact']:.3f} frames/s, fast {n / times['fast']:.3f} frames/s "
          f"(x{times['exact'] / times['fast']:.2f}); MLP rows skipped: coarse {skip.skipped_fraction('coarse'):.3f}, "
          f"fine {skip.skipped_fraction('fine'):.3f}; worst PSNR fast vs exact: fine {worst['fine']:.2f}, "
          f"coarse {worst['coarse']:.2f}", flush=True)

    coarse, colours, what = style_colours(a, system, a.styles)
    # the stylized path as the videos render it: --style_render_samples / --style_point of the
    # config or --extra (fern_quick: one point a ray at its expected depth)
    style_exact = exact.for_style(args)
    style_fast = fast_options(style_exact, args, scene, fields, a.expdir, step, settings=settings)
    skip = style_fast.skip
    if style_exact.top_k:
        what += (f"; coloured at {style_exact.top_k} point(s) a ray"
                 + (" (expected depth)" if style_exact.surface else ""))
    path_poses = nerf_stage.valid_poses(args, scene)
    picks = np.linspace(0, len(path_poses) - 1, a.path_frames).round().astype(int)

    def stylized(opts, ro, rd):
        return render_image_colors(ro, rd, ro.shape[0], ro.shape[1], args.chunk, coarse, colours, a.styles, opts=opts,
                                   keys=("rgb", "depth"))

    for opts in (style_exact, style_fast):
        stylized(opts, *warm[:2])
    skip.stats.clear()
    times = {"exact": 0.0, "fast": 0.0}
    worst = np.inf
    for i in picks:
        ro, rd, _ = rays_of(args, scene, path_poses[i], a.stride)
        ref, t_exact = timed(lambda: stylized(style_exact, ro, rd), a.repeat)
        out, t_fast = timed(lambda: stylized(style_fast, ro, rd), a.repeat)
        times["exact"] += t_exact
        times["fast"] += t_fast
        p = [min(psnr(o[lv]["rgb"], r[lv]["rgb"]) for lv in ("fine", "coarse")) for o, r in zip(out, ref)]
        worst = min(worst, min(p))
        print(f"  path frame {i:3d}: fast vs exact PSNR per style (worse level) "
              + " ".join(f"{v:.2f}" for v in p) + f"; {t_exact:.2f} s -> {t_fast:.2f} s", flush=True)
    per_style = len(picks) * a.styles
    print(f"stylized ({a.styles} styles together, {what}): exact {per_style / times['exact']:.3f} frames/s per "
          f"style, fast {per_style / times['fast']:.3f} (x{times['exact'] / times['fast']:.2f}); MLP rows skipped: "
          f"coarse {skip.skipped_fraction('coarse'):.3f}, fine density {skip.skipped_fraction('fine'):.3f}, "
          f"colour {skip.skipped_fraction('colour'):.3f}; worst PSNR fast vs exact {worst:.2f}", flush=True)
    return worst


def main(argv=None):
    """Exit code 0; a bad option or folder: one `error:` line (core.cli)."""
    def user_errors():
        from pipeline.stages import UserError
        return UserError
    return run_command(lambda: parse(argv), bench, user_errors)


if __name__ == "__main__":
    sys.exit(main())
