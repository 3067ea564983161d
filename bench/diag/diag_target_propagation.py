"""What propagating targets between views (pipeline/target_propagation.py) does to the targets
themselves, before any NeRF learns from them: their style loss and their consistency.

    python bench/diag/diag_target_propagation.py --config configs/fern_cpu.txt --expname lev_base \
        [--strip out.jpg] [--reads chained:cubic,once:cubic,once:lanczos]

Reads an experiment's geometry cache and its cached per-view targets (stages 2 and 4 done),
propagates them, and prints for both sets: the style loss against the style image (AdaIN's
objective, evaluation/style_strength), the consistency error of the targets between views k
apart (evaluation/consistency, masked RMSE) and the share of pixels taken from earlier views.
--reads propagates once per (--propagation_resample, --propagation_interp) pair listed (default:
the options' own pair), so the ways of reading the earlier views compare on the same targets.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402


def main(argv=None):
    from core.config import build_parser, check_args
    ap = build_parser()
    ap.add_argument("--strip", default=None, help="write a JPEG: per-view targets above, propagated below")
    ap.add_argument("--ks", default="1,7")
    ap.add_argument("--reads", default=None,
                    help="resample:interp pairs to compare, e.g. chained:cubic,once:lanczos (default: the options')")
    args = ap.parse_args(argv)
    check_args(args)
    pairs = [tuple(p.split(":")) for p in args.reads.split(",")] if args.reads else \
        [(args.propagation_resample, args.propagation_interp)]
    for p in pairs:
        if len(p) != 2 or p[0] not in ("chained", "once") or p[1] not in ("cubic", "lanczos"):
            raise SystemExit(f"error: --reads takes resample:interp pairs (chained|once : cubic|lanczos), got {p}")
    runtime.setup()
    import cv2
    import numpy as np
    from evaluation.consistency import consistency_error
    from evaluation.style_strength import path_sharpness, style_loss, tap_statistics
    from pipeline import stages, target_propagation, targets
    from pipeline.experiment import experiment_dir

    run = stages.Run(args, stages.load_scene(args), experiment_dir(args, create=False))
    geo = run.get("geo")
    h, w, focal = targets.target_hwf(args, geo)
    pts_t = target_propagation.points_at(geo.points, args.target_factor, h, w)
    poses = geo.c2ws
    names, _paths, images = run.styles()
    encoder = run.get("encoder")
    ks = [int(k) for k in args.ks.split(",")]
    renders = targets.colour_test_renders(args, geo)  # once for all styles
    rows = []
    for k, name in enumerate(names):
        own = np.load(targets.target_path(os.path.join(run.expdir, "targets"), k, name)).astype(np.float32) / 255
        stats = tap_statistics(encoder, images[k])
        sets = [("per-view", own)]
        for resample, interp in pairs:
            args.propagation_resample, args.propagation_interp = resample, interp
            prop, taken = targets.propagate_targets(args, geo, own, renders)
            sets.append((f"propagated {resample}:{interp}", prop))
        for label, t in sets:
            line = f"{name} {label:26s} style loss {style_loss(encoder, t, style_stats=stats).mean():.3f}"
            line += f" sharpness (per-view = 1) {path_sharpness(t, own):.3f}"
            for kk in ks:
                e = consistency_error(t, pts_t, poses, h, w, focal, k=kk)
                line += f" consistency k={kk} {e['mean']:.4f}"
            print(line, flush=True)
        print(f"{name}: taken from earlier views: mean {taken.mean():.3f}, per view in order "
              + " ".join(f"{taken[v]:.2f}" for v in target_propagation.view_order(poses)), flush=True)
        rows.append(np.concatenate([np.concatenate(list(own[::max(1, len(own) // 4)][:4]), 1),
                                    np.concatenate(list(prop[::max(1, len(own) // 4)][:4]), 1)], 0))
    if args.strip:
        cv2.imwrite(args.strip, cv2.cvtColor((np.concatenate(rows, 0) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"wrote {args.strip}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
