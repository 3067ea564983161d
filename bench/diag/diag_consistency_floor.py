"""About the lowest consistency ratio a stylization with per-frame AdaIN's texture can reach on a
trained NeRF's path: per-frame AdaIN of the photoreal path against the same carried in 3D from its middle
frame (evaluation/consistency.carried_sequence: flicker-free, AdaIN's texture).  Needs only the
NeRF and the decoder (stages 1-3), not a stylized NeRF.

    python bench/diag/diag_consistency_floor.py --config configs/fern_quick.txt --eval_frames 30 \
        [--floor_out floor.json]

Prints per style the warping errors (both warps, k = --eval_k_short and --eval_k_long) of the
photoreal NeRF, per-frame AdaIN and AdaIN carried in 3D, the carried / per-frame ratio (what
evaluate.py's "AdaIN carried in 3D" column gives), the share of pixels carried, and both
sharpness figures (relative to the photoreal frames).  A consistency target below the carried
ratio asks for a stylization blurrier than AdaIN's, or one more consistent than the NeRF's
geometry lets the measure see.  (Where the depth is rough the carried frames gain detail of their
own, the sharpness figures show how much, so the ratio is, if anything, above that floor.)

It also prints the style side of the same reference: the style loss (evaluate.py's measure) of
per-frame AdaIN and of the carried frames, their ratio over the path, and that ratio by the
frames' distance from the carried (middle) frame.  Ratios that grow with the distance say the
texture's statistics drift as the view moves away from the one it was made for; a ratio already
high next to the middle frame would point at the carrying itself (resampling, depth jumps).
--carry_occlusion_tol T carries only the pixels whose surface point the middle frame itself sees
(within T of its camera depth; the rest keep per-frame AdaIN's colour), to tell what the reads
through occluders cost; --path_npz F keeps the photoreal path (frames and surface points) in F and
reads it back on the next run with the same options (the NeRF renders are most of the time).
Last, per-frame AdaIN propagated along the path as --target_propagation makes the training
targets (consistent wherever some frame sees the point, no read through an occluder): the fair
reference for a consistent texture, its style loss and consistency ratios.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402


def style_by_distance(encoder, style_stats, adain, carried, photo):
    """Style loss of per-frame AdaIN and of the carried frames (path means, evaluate.py's figures)
    and carried / per-frame by |t - middle frame| (means of each distance's frames, a ratio of
    means as evaluate.py's)."""
    from evaluation.style_strength import measure
    a = measure(encoder, adain, None, photo, style_stats=style_stats)["style_loss"]
    c = measure(encoder, carried, None, photo, style_stats=style_stats)["style_loss"]
    dist = abs(np.arange(len(a)) - len(a) // 2)
    by = {int(d): float(c[dist == d].mean() / a[dist == d].mean()) for d in np.unique(dist)}
    return {"style_loss_adain": float(a.mean()), "style_loss_carried": float(c.mean()),
            "style_loss_ratio": float(c.mean() / a.mean()), "style_ratio_by_distance": by}


def propagated_reference(args, encoder, style_stats, name, adain, adain_rows, adain_loss, photo, points, poses,
                         H, W, focal, ks):
    """Per-frame AdaIN propagated along the path as --target_propagation makes the training targets
    (pipeline/target_propagation.propagate, with this run's --propagation_thresh and
    --propagation_edge_thresh): from the central frame out, each pixel whose point a frame made
    before sees takes that frame's colour, the rest keep their own.  Consistent wherever some
    frame sees the point, with no read through an occluder: the reference that the carried one,
    from one frame, is not.  adain_rows: per-frame AdaIN's consistency rows by warp (method_rows),
    adain_loss: its mean style loss.  Returns and prints the propagated frames' style loss and
    consistency against per-frame AdaIN's."""
    from evaluation.report import method_rows
    from evaluation.style_strength import measure
    from evaluation.tables import consistency_ratio
    from pipeline.target_propagation import propagate
    method = "AdaIN propagated in 3D"
    frames, taken = propagate(adain, points, np.asarray(poses), focal, args.propagation_thresh,
                              edge_thresh=args.propagation_edge_thresh, interp=args.propagation_interp,
                              resample=args.propagation_resample)
    loss = float(measure(encoder, frames, None, photo, style_stats=style_stats)["style_loss"].mean())
    res = {"taken": float(taken.mean()), "style_loss": loss, "style_loss_ratio": loss / adain_loss}
    rows = method_rows(name, method, frames, points, poses, H, W, focal, ks)
    for warp in ("forward", "backward"):
        res[f"ratio_{warp}"] = {k: consistency_ratio(adain_rows[warp] + rows[warp], name, k, method) for k in ks}
    print(f"{name}: {method} ({res['taken']:.0%} of the pixels taken from frames made before): style loss "
          f"{res['style_loss']:.4g} ({res['style_loss_ratio']:.2f}x per-frame AdaIN's); consistency / per-frame "
          + "; ".join(f"{w} " + ", ".join(f"k={k} {v:.2f}" for k, v in res[f"ratio_{w}"].items())
                      for w in ("forward", "backward")))
    return res


def saved_path(path, step, poses, H, W):
    """(photo, points) kept by an earlier run with this NeRF step, path and size, else (None, None)."""
    from core.npz_cache import read_arrays
    T = len(poses)
    shapes = {"photo": (T, H, W, 3), "points": (T, H, W, 3), "poses": np.shape(poses), "step": ()}
    got = read_arrays(path, shapes, "kept photoreal path", print) if path else None
    if got is None:
        return None, None
    if int(got["step"]) != step or not np.allclose(got["poses"], poses):
        print(f"{path} holds another NeRF step or path: rendering the path again")
        return None, None
    print(f"photoreal path read from {path}")
    return got["photo"], got["points"]


def main(argv=None):
    from core.config import build_parser, check_args
    ap = build_parser()
    ap.add_argument("--floor_out", default=None, help="also write the figures as JSON here")
    ap.add_argument("--carry_occlusion_tol", type=float, default=float("inf"),
                    help="carry only points the middle frame sees within this relative depth (default: all)")
    ap.add_argument("--path_npz", default=None, help="keep the photoreal path here and reuse it when there")
    args = ap.parse_args(argv)
    if args.path_npz and not args.path_npz.endswith(".npz"):
        raise SystemExit(f"error: --path_npz {args.path_npz}: expected a file name ending in .npz")
    check_args(args)
    runtime.setup()
    from core.npz_cache import write_arrays
    from dataset.rays import scaled_hwf
    from evaluation.report import adain_networks, adain_path, method_rows, render_path
    from evaluation.style_strength import path_sharpness, tap_statistics
    from evaluation.tables import ADAIN, CARRIED, consistency_ratio
    from pipeline import stages
    from pipeline.experiment import experiment_dir
    from pipeline.nerf_stage import load_trained_nerf, valid_poses
    from pipeline.style_selection import load_style_images, select_styles
    from render.options import RenderOptions
    stages.apply_compute_options(args)
    scene = stages.load_scene(args)
    expdir = experiment_dir(args, create=False)
    system, step, _ = load_trained_nerf(args, expdir)
    ks = (args.eval_k_short, args.eval_k_long)
    H, W, focal = scaled_hwf(scene.hwf, args.eval_factor)
    poses = valid_poses(args, scene)[:args.eval_frames or None]
    photo, points = saved_path(args.path_npz, step, poses, H, W)
    if photo is None:
        photo, points = render_path(args, system.fields(), RenderOptions.from_args(args, scene, "eval"), poses,
                                    H, W, focal, "photoreal path")
        if args.path_npz:
            write_arrays(args.path_npz, {"photo": photo, "points": points, "poses": np.asarray(poses),
                                         "step": np.asarray(step)})
    encoder, decoder, tuned = adain_networks(args, expdir)
    decoder = decoder if tuned is None else tuned  # the decoder the stylized targets came from
    out = {"nerf_step": step, "frames": len(poses), "size": [W, H], "ks": list(ks), "styles": {}}
    for warp, r in method_rows("(photoreal NeRF)", "NeRF render", photo, points, poses, H, W, focal, ks).items():
        out[f"photoreal_{warp}"] = r[0]
        print(f"photoreal NeRF, {warp} warp: " + ", ".join(f"k={k} {r[0][f'k{k}_mean']:.4f}" for k in ks))
    for name, path in zip(*select_styles(args)):
        style_img = load_style_images([path], args.style_size)[0]
        adain, carried, coverage = adain_path(encoder, decoder, photo, points, poses, H, W, focal, style_img,
                                              occlusion_tol=args.carry_occlusion_tol)
        res = {"coverage": float(coverage.mean()), "sharpness_adain": path_sharpness(adain, photo),
               "sharpness_carried": path_sharpness(carried, photo)}
        style_stats = tap_statistics(encoder, style_img)
        res.update(style_by_distance(encoder, style_stats, adain, carried, photo))
        print(f"{name}: style loss per-frame AdaIN {res['style_loss_adain']:.4g}, carried "
              f"{res['style_loss_carried']:.4g} ({res['style_loss_ratio']:.2f}x); carried / per-frame by frames "
              "from the middle one: " + ", ".join(f"{d}: {v:.2f}x" for d, v in res["style_ratio_by_distance"].items()))
        # each method's rows for every warp at once (method_rows measures all of WARPS)
        by_method = [method_rows(name, m, f, points, poses, H, W, focal, ks) for m, f in ((ADAIN, adain),
                                                                                           (CARRIED, carried))]
        for warp in ("forward", "backward"):
            table = by_method[0][warp] + by_method[1][warp]
            res[warp] = {r["method"]: r for r in table}
            res[warp]["carried_ratio"] = {k: consistency_ratio(table, name, k, CARRIED) for k in ks}
            print(f"{name}, {warp} warp: " + " | ".join(
                f"{r['method']}: " + ", ".join(f"k={k} {r[f'k{k}_mean']:.4f}" for k in ks) for r in table)
                + " | carried / per-frame: " + ", ".join(
                f"k={k} {v:.2f}" for k, v in res[warp]["carried_ratio"].items()))
        print(f"{name}: {res['coverage']:.0%} of the pixels carried; sharpness (photo = 1) per-frame AdaIN "
              f"{res['sharpness_adain']:.2f}, carried {res['sharpness_carried']:.2f}")
        res["propagated"] = propagated_reference(args, encoder, style_stats, name, adain, by_method[0],
                                                 res["style_loss_adain"], photo, points, poses, H, W, focal, ks)
        out["styles"][name] = res
    if args.floor_out:
        with open(args.floor_out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
