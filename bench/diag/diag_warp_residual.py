"""Where the consistency metric's error lies: near the geometry's depth edges or away from them.

    python bench/diag/diag_warp_residual.py --config configs/fern_cpu.txt --expname fern_cpu_hash1205 \
        [--style la_muse] [--k 7] [--edge_px 2] [--edge_tol 0.05] [--eval_frames 20]

Renders the path as evaluate.py does (the photoreal NeRF, the stylized NeRF of one style with its
mean code, per-frame AdaIN of the photoreal frames), warps frame t onto t+k with both warps
(evaluation/consistency.py) and splits each pair's squared error over the counted pixels between
those near a depth edge of the destination (a camera depth within --edge_px pixels that differs
from the pixel's own by more than --edge_tol, relative) and the rest. The stylized NeRF's colours
do not depend on the view and its geometry is the photoreal NeRF's, so what its error keeps after
the backward warp's small resampling error is where one expected-depth point per pixel does not
describe what the pixel shows. Prints per method and warp: the RMSE on each part, and the edge
part's share of the counted pixels and of the squared error. Then, for the backward warp, the
RMSE over the destination pixels in each quarter of the density's spread along the ray (the
weights' standard deviation of the ray parameter, NDC units): a composite of samples spread in
depth is what one expected-depth point per pixel describes least. --supersample S adds rows for
both NeRFs rendered at S times the size and averaged down (INTER_AREA): what point-sampling
colour detail finer than a pixel (aliasing, which differs from view to view) adds to the error.
Last, how well the two frames' point maps agree: each destination pixel's point is projected into
the source, the source's own point there (bilinear) is projected back into the destination, and
the distance to the pixel it started from is a misregistration in pixels that the warp
inherits: a colour gradient of g per pixel then leaves an error of about g times it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402


def depth_edges(depth, radius, tol):
    """[H,W] bool: a depth within `radius` pixels differs from this pixel's by more than tol (relative)."""
    import numpy as np
    from scipy.ndimage import maximum_filter, minimum_filter
    size = 2 * radius + 1
    hi, lo = maximum_filter(depth, size=size, mode="nearest"), minimum_filter(depth, size=size, mode="nearest")
    return np.maximum(hi - depth, depth - lo) > tol * np.maximum(depth, 1e-6)


def pair_errors(frames, points, c2ws, H, W, focal, k, warp):
    """Per pair t -> t+k: (destination index, squared error [H,W] averaged over colour, mask [H,W])."""
    from evaluation.consistency import warp_onto
    for t in range(len(frames) - k):
        d = t + k
        warped, mask = warp_onto(frames[t], points[t], c2ws[t], points[d], c2ws[d], H, W, focal, warp)
        yield d, ((warped - frames[d]) ** 2).mean(-1), mask


def frame_edges(points, c2ws, H, W, focal, radius, tol):
    """[T,H,W] bool: each frame's depth edges (depth_edges of its own camera depth)."""
    import numpy as np
    from render.splatting import project_points
    return np.stack([depth_edges(project_points(p.reshape(-1, 3), c, H, W, focal)[2].reshape(H, W), radius, tol)
                     for p, c in zip(points, c2ws)])


def split_error(frames, points, c2ws, H, W, focal, k, warp, edges):
    """Squared error sums and pixel counts over the path's pairs, split by the destination's
    depth edges [T,H,W]: (edge sum, edge n, rest sum, rest n)."""
    import numpy as np
    acc = np.zeros(4)
    for d, err, mask in pair_errors(frames, points, c2ws, H, W, focal, k, warp):
        for i, part in enumerate((mask & edges[d], mask & ~edges[d])):
            acc[2 * i] += err[part].sum()
            acc[2 * i + 1] += part.sum()
    return acc


def round_trip_px(points, c2ws, H, W, focal, k):
    """Pixels [N] over the path's pairs: |dst pixel - (dst point -> src -> src's point there -> dst)|,
    where the backward warp counts the pixel."""
    import numpy as np
    from evaluation.consistency import backward_warp
    from render.splatting import project_points
    j, i = np.mgrid[0:H, 0:W]
    out = []
    for t in range(len(points) - k):
        d = t + k
        # the source's points read where the destination's points land, exactly as its colours are
        back, mask = backward_warp(points[t], points[t], c2ws[t], points[d], c2ws[d], H, W, focal)
        u, v, _ = project_points(back.reshape(-1, 3), c2ws[d], H, W, focal)
        dist = np.hypot(u.reshape(H, W) - i, v.reshape(H, W) - j)
        out.append(dist[mask])
    return np.concatenate(out)


def ray_spread(args, fields, opts, poses, H, W, focal):
    """[T,H,W]: the standard deviation of the fine ray parameter under the compositing weights."""
    import numpy as np
    from dataset.rays import image_rays
    from render.renderer import render_image
    out = []
    for c2w in poses:
        ro, rd, vd = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
        res = render_image(ro, rd, vd if args.use_viewdir else None, H, W, args.chunk, opts=opts,
                           coarse_field=fields[0], fine_field=fields[1], coarse_rgb=False, keys=("weights", "z_vals"))
        res = res["fine" if "fine" in res else "coarse"]
        w, z = res["weights"].astype(np.float64), res["z_vals"].astype(np.float64)
        total = np.maximum(w.sum(-1), 1e-8)
        mean = (w * z).sum(-1) / total
        out.append(np.sqrt(np.maximum((w * (z - mean[..., None]) ** 2).sum(-1) / total, 0)))
    return np.stack(out)


def error_by_spread(frames, points, c2ws, H, W, focal, k, spread, edges):
    """Backward-warp RMSE over the counted destination pixels in each quarter of `spread`
    (quarter bounds `edges`, 5 values)."""
    import numpy as np
    sums, counts = np.zeros(4), np.zeros(4)
    for d, err, mask in pair_errors(frames, points, c2ws, H, W, focal, k, "backward"):
        q = np.clip(np.searchsorted(edges[1:-1], spread[d], side="right"), 0, 3)
        for i in range(4):
            part = mask & (q == i)
            sums[i] += err[part].sum()
            counts[i] += part.sum()
    return np.sqrt(sums / np.maximum(counts, 1))


def main(argv=None):
    from core.config import build_parser, check_args
    ap = build_parser()
    ap.add_argument("--k", type=int, default=7, help="frame gap")
    ap.add_argument("--edge_px", type=int, default=2, help="how near a depth edge a pixel counts as on it")
    ap.add_argument("--edge_tol", type=float, default=0.05, help="relative depth step that makes an edge")
    ap.add_argument("--supersample", type=int, default=1, help="also render both NeRFs at this many times the size, "
                    "averaged down (1: no)")
    args = ap.parse_args(argv)
    check_args(args)
    runtime.setup()
    import jittor as jt
    import numpy as np
    from dataset.rays import scaled_hwf
    from evaluation.consistency import WARPS
    from evaluation.report import render_path
    from pipeline import stages
    from pipeline.nerf_stage import load_trained_nerf, valid_poses
    from core.checkpoint import load, load_module_state
    from pipeline.style_selection import load_style_images, load_style_networks, style_indices
    from pipeline.style_stage import load_style_model, style_fields
    from pipeline.targets import stylize_view
    from render.options import RenderOptions

    stages.apply_compute_options(args)
    run = stages.Run(args, stages.load_scene(args), os.path.join(args.basedir, args.expname))
    system, _, _ = load_trained_nerf(args, run.expdir)
    H, W, focal = scaled_hwf(run.scene.hwf, args.eval_factor)
    poses = valid_poses(args, run.scene)
    if args.eval_frames and len(poses) > args.eval_frames:
        poses = poses[:args.eval_frames]
    opts = RenderOptions.from_args(args, run.scene, "eval")
    photo, points = render_path(args, system.fields(), opts, poses, H, W, focal, "photoreal path")
    model, _ = load_style_model(args, system, run.expdir)
    k = style_indices(args.style, model.style_names, "the trained style model")[0]
    name = model.style_names[k]
    nerf, _ = render_path(args, style_fields(system, model.mlp, jt.array(model.mu[k]), k), opts.for_style(args),
                          poses, H, W, focal, f"stylized NeRF {name}", viewdirs=False, share_color=True)
    encoder, decoder = load_style_networks(args, print)  # as evaluate.py: the fine-tuned decoder if there
    ft = os.path.join(run.expdir, "decoder.pkl")
    if os.path.exists(ft):
        load_module_state(decoder, load(ft, required_keys=("decoder",))["decoder"], ft)
    style_img = load_style_images([os.path.join(args.styledir, name)], args.style_size)[0]
    with jt.no_grad():
        s_feat = encoder.encode(jt.array(style_img.transpose(2, 0, 1)[None]))
    adain = np.stack([stylize_view(encoder, decoder, f, s_feat) for f in photo])
    c2ws = np.asarray(poses, np.float32)[:, :3, :4]
    methods = [("photoreal NeRF", photo), (f"stylized NeRF ({name})", nerf), (f"per-frame AdaIN ({name})", adain)]
    S = args.supersample
    if S > 1:  # the same frames from S x S rays a pixel, averaged down; the points stay the 1x render's
        import cv2

        def down(frames):
            return np.stack([cv2.resize(f, (W, H), interpolation=cv2.INTER_AREA) for f in frames])
        big_photo, _ = render_path(args, system.fields(), opts, poses, H * S, W * S, focal * S, "photoreal, supersampled")
        big_nerf, _ = render_path(args, style_fields(system, model.mlp, jt.array(model.mu[k]), k), opts.for_style(args),
                                  poses, H * S, W * S, focal * S, "stylized, supersampled", viewdirs=False,
                                  share_color=True)
        methods += [(f"photoreal NeRF, {S}x{S} rays a pixel", down(big_photo)),
                    (f"stylized NeRF ({name}), {S}x{S} rays a pixel", down(big_nerf))]
    print(f"{len(poses)} path frames at {W}x{H}, k={args.k}; depth edge: a step over {args.edge_tol:.0%} "
          f"within {args.edge_px} px", flush=True)
    print("| method | warp | RMSE near edges | RMSE elsewhere | edge share of pixels | of squared error |")
    print("|---|---|---|---|---|---|")
    edges = frame_edges(points, c2ws, H, W, focal, args.edge_px, args.edge_tol)  # once for every method
    for label, frames in methods:
        for warp in WARPS:
            e_sum, e_n, r_sum, r_n = split_error(frames, points, c2ws, H, W, focal, args.k, warp, edges)
            print(f"| {label} | {warp} | {np.sqrt(e_sum / max(e_n, 1)):.4f} | {np.sqrt(r_sum / max(r_n, 1)):.4f} | "
                  f"{e_n / max(e_n + r_n, 1):.2f} | {e_sum / max(e_sum + r_sum, 1e-12):.2f} |", flush=True)
    spread = ray_spread(args, system.fields(), opts, poses, H, W, focal)
    quarters = np.quantile(spread, [0, 0.25, 0.5, 0.75, 1])
    print("\nbackward warp, RMSE by the destination pixel's spread along its ray (NDC; quarters bounded by "
          + ", ".join(f"{q:.3g}" for q in quarters) + ")")
    print("| method | 1st quarter (most surface-like) | 2nd | 3rd | 4th (most spread) |")
    print("|---|---|---|---|---|")
    for label, frames in methods:
        r = error_by_spread(frames, points, c2ws, H, W, focal, args.k, spread, quarters)
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in r) + " |", flush=True)
    px = round_trip_px(points, c2ws, H, W, focal, args.k)
    print(f"\npoint maps' round trip over the counted pixels, k={args.k}: median {np.median(px):.2f} px, "
          f"mean {px.mean():.2f}, 90th percentile {np.quantile(px, 0.9):.2f}, over 1 px: {(px > 1).mean():.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
