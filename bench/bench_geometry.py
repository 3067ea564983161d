"""Stage 2 (geometry) with the exact renderer against the fast one on a trained NeRF: time per
view and how far the fast renderer's colours, depths and surface points lie from the exact ones.

The views are the geometry stage's own (the training poses at --gen_factor 1), rendered as the
stage renders them (fine colour and expected depth, the coarse level without colour), every
--stride-th pixel in both directions.  The occupancy grid is built in a temporary folder and its
time reported apart (the stage builds it once per NeRF and the videos and evaluate.py reuse it).

    python bench/bench_geometry.py --expdir logs/fern_cpu --config configs/fern_cpu.txt --stride 1
    tar xzf bench/checkpoints/fern_long.tgz      # fern.txt's NeRF after 120,001 steps
    python bench/bench_geometry.py --expdir logs/fern_long/bench --stride 4 --views 3
"""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.bench_render import psnr, timed  # noqa: E402
from bench.common import checkpoint_parser, parse_checkpoint_args  # noqa: E402
from core.cli import run_command  # noqa: E402


def parse(argv):
    ap = checkpoint_parser(stride_default=1)
    ap.add_argument("--views", type=int, default=0, help="geometry views rendered (0: all of them)")
    ap.add_argument("--resolution", type=int, default=0, help="occupancy grid cells per axis (0: the stage's)")
    ap.add_argument("--samples_per_cell", type=int, default=4, help="density probes per grid cell")
    return parse_checkpoint_args(ap, argv, ("stride", "samples_per_cell"))


def bench(a):
    from pipeline import nerf_stage
    from pipeline.geometry import geometry_poses, render_view
    from pipeline.stages import apply_compute_options, load_scene
    from render.fast import fast_options, grid_resolution
    from render.occupancy import GridSettings
    from render.options import RenderOptions
    args = a.args
    apply_compute_options(args)
    scene = load_scene(args)
    system, step, path = nerf_stage.load_trained_nerf(args, a.expdir)
    coarse, fine = system.fields()
    H, W = int(scene.hwf[0]), int(scene.hwf[1])
    poses = geometry_poses(args, scene)
    poses = poses[:a.views] if a.views else poses
    exact = RenderOptions.from_args(args, scene, "eval")
    args.render_mode = "fast"
    settings = GridSettings(resolution=a.resolution or grid_resolution(exact.n_samples),
                            samples_per_cell=a.samples_per_cell)
    with tempfile.TemporaryDirectory() as tmp:
        fast, build_s = timed(lambda: fast_options(exact, args, scene, (coarse, fine), tmp, step, log=lambda *_: None,
                                                   settings=settings))
    grid = fast.skip.grid
    s = a.stride

    def view(opts, c2w):  # the stage's own render of a view
        return render_view(args, scene.hwf, c2w, opts, (coarse, fine), stride=s)

    h, w = len(range(0, H, s)), len(range(0, W, s))
    print(f"{path} (step {step}); {len(poses)} views of {w}x{h} rays; occupancy grid {grid.resolution[0]}^3, "
          f"{100 * grid.fraction:.1f}% occupied, built in {build_s:.1f} s", flush=True)
    for opts in (exact, fast):  # compile before timing
        view(opts, poses[0])
    times = {"exact": 0.0, "fast": 0.0}
    worst_psnr, depth_diff, rel_move = np.inf, [], []
    for c2w in poses:
        (rgb_e, depth_e, pts_e), t_e = timed(lambda: view(exact, c2w))
        (rgb_f, depth_f, pts_f), t_f = timed(lambda: view(fast, c2w))
        times["exact"] += t_e
        times["fast"] += t_f
        worst_psnr = min(worst_psnr, psnr(rgb_f, rgb_e))
        depth_diff.append(np.abs(depth_f - depth_e).ravel())
        # how far each surface point moved, relative to its distance from the camera
        dist = np.linalg.norm(pts_e - c2w[:3, 3], axis=-1)
        rel_move.append((np.linalg.norm(pts_f - pts_e, axis=-1) / np.maximum(dist, 1e-6)).ravel())
    depth_diff, rel_move = np.concatenate(depth_diff), np.concatenate(rel_move)
    n = len(poses)
    print(f"exact: {times['exact'] / n:.2f} s a view; fast: {times['fast'] / n:.2f} s a view "
          f"(x{times['exact'] / max(times['fast'], 1e-9):.2f})")
    print(f"fast against exact: colour >= {worst_psnr:.1f} dB; depth (ray parameter) |diff| mean "
          f"{depth_diff.mean():.2e}, 99.9th percentile {np.percentile(depth_diff, 99.9):.2e}, max {depth_diff.max():.2e}; "
          f"surface points moved / their distance: median {np.median(rel_move):.1e}, 99.9th percentile "
          f"{np.percentile(rel_move, 99.9):.1e}, max {rel_move.max():.1e}; moved more than 1%: "
          f"{100 * np.mean(rel_move > 0.01):.3f}% of pixels")


def main(argv=None):
    """Exit code 0; a bad option or folder: one `error:` line (core.cli)."""
    def user_errors():
        from pipeline.stages import UserError
        return UserError
    return run_command(lambda: parse(argv), bench, user_errors)


if __name__ == "__main__":
    sys.exit(main())
