"""How closely a trained stylized NeRF fits its own targets on the training views, and what
novel views lose by using the style's mean latent code instead of the view's own.

    python bench/diag/diag_style_fit.py --config configs/fern_cpu.txt --expname lev_base_f2_s8j_eq \
        [--fit_views 0,5,10,15] [--strip out.png]

For each style and view: the stylized NeRF rendered at the targets' size (the renderer, the
exact path) with (a) the (style, view) latent code it was trained with, and (b) the style's
mean code mu_s (what novel views use), against the view's target: PSNR, style loss (against the
style image; AdaIN's objective) and sharpness (Laplacian energy over the target's). If (a)
already loses the strokes, the field or its training is the limit; if only (b) does, the
per-view codes hold what the views disagree on.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402


def main(argv=None):
    from core.config import build_parser, check_args
    ap = build_parser()
    ap.add_argument("--fit_views", default="0,5,10,15", help="training views to render")
    ap.add_argument("--codes", default="own,mean", help="which latent codes to render with: own, mean or both")
    ap.add_argument("--strip", default=None, help="write a PNG: target | each code's render, one row a view")
    args = ap.parse_args(argv)
    check_args(args)
    if not set(c.strip() for c in args.codes.split(",")) <= {"own", "mean"}:
        raise SystemExit(f"error: --codes takes own, mean or own,mean; got {args.codes!r}")
    runtime.setup()
    import cv2
    import jittor as jt
    import numpy as np
    from evaluation.metrics import psnr
    from evaluation.style_strength import highpass_energy, style_loss, tap_statistics
    from pipeline import stages, targets
    from pipeline.nerf_stage import load_trained_nerf
    from pipeline.style_stage import load_style_model
    from pipeline.stylized_render import render_with_latent
    from render.options import RenderOptions

    run = stages.Run(args, stages.load_scene(args), os.path.join(args.basedir, args.expname))
    geo = run.get("geo")
    h, w, focal = targets.target_hwf(args, geo)
    system, _, _ = load_trained_nerf(args, run.expdir)
    model, step = load_style_model(args, system, run.expdir)
    opts = RenderOptions.from_args(args, run.scene, "eval").for_style(args)
    names, _paths, images = run.styles()
    encoder = run.get("encoder")
    views = [int(v) for v in args.fit_views.split(",")]
    print(f"style checkpoint step {step}; views {views} at {w}x{h}", flush=True)
    rows = []
    for k, name in enumerate(names):
        tgt = np.load(targets.target_path(os.path.join(run.expdir, "targets"), k, name)).astype(np.float32) / 255
        stats = tap_statistics(encoder, images[k])
        codes = [c.strip() for c in args.codes.split(",")]
        renders = {f"{c} code": [] for c in codes}
        for v in views:
            for c in codes:
                label, lat = f"{c} code", (model.latents.codes[k, v] if c == "own" else jt.array(model.mu[k]))
                with jt.no_grad():
                    out = render_with_latent(system, model, lat, args, opts, h, w, focal, geo.c2ws[v], style=k)
                renders[label].append(np.clip(out["fine" if "fine" in out else "coarse"]["rgb"], 0, 1))
        t = tgt[views]
        print(f"{name}: target style loss {style_loss(encoder, t, style_stats=stats).mean():.3f}", flush=True)
        for label, r in renders.items():
            r = np.stack(r)
            print(f"  {label:9s} PSNR to target {np.mean([psnr(a, b) for a, b in zip(r, t)]):.2f} dB, "
                  f"style loss {style_loss(encoder, r, style_stats=stats).mean():.3f}, sharpness (target = 1) "
                  f"{highpass_energy(r).mean() / highpass_energy(t).mean():.3f}", flush=True)
        rows += [np.concatenate([t[i]] + [r[i] for r in renders.values()], 1) for i in range(len(views))]
    if args.strip:
        cv2.imwrite(args.strip, cv2.cvtColor((np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))
        print(f"wrote {args.strip}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
