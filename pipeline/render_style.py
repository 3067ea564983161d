"""Stylized rendering: --render_train_style and --render_valid_style.

Training views use each view's own latent code; novel views use the style's
VAE mean mu_s as the latent (a well-defined code for any camera, unlike the
original, which indexed per-frame codes past the training frames).

Output, per style, in `<expdir>/render_{train,valid}_style_<step>/<style>/`:
`<i>_fine.png`, `<i>_coarse.png`, `<i>_depth.png` (and `<i>_target.png`, the
2D stylized target, for training views); for novel views also `fine_rgb.mp4`
(fine frames), `coarse_rgb.mp4` and `depth.mp4`.
"""
import os

import jittor as jt
import numpy as np
from tqdm import tqdm

from core.media import depth_to_image, write_png, write_video
from dataset.rays import image_rays
from pipeline import geometry
from pipeline.nerf_stage import load_trained_nerf, render_kwargs, valid_poses
from pipeline.style_stage import load_style_model, style_fields
from pipeline.stylize import style_indices
from render.renderer import render_image


def render_with_latent(system, model, latent, args, scene_kw, H, W, focal, c2w):
    coarse_field, fine_field = style_fields(system, model.mlp, latent)
    ro, rd, _ = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
    return render_image(ro, rd, None, H, W, args.chunk, coarse_field=coarse_field, fine_field=fine_field,
                        share_color=True, **scene_kw)


def render(args, scene, expdir, log=print):
    system, _, _ = load_trained_nerf(args, expdir)
    model, step = load_style_model(args, system, expdir)
    styles = style_indices(args.style, model.style_names, "the trained style model")
    kw = render_kwargs(args, scene, train=False)
    H, W, focal = scene.hwf
    H, W, focal = int(H) // args.render_factor, int(W) // args.render_factor, focal / args.render_factor
    if args.render_train_style:  # the style-training views: the geometry stage's poses
        poses, mode = geometry.geometry_poses(args, scene), "train"
        if len(poses) != model.n_views:
            raise ValueError(f"--gen_factor {args.gen_factor} gives {len(poses)} views, but the style model "
                             f"was trained on {model.n_views}: use the training run's --gen_factor")
    else:
        poses, mode = valid_poses(args, scene), "valid"
    root = os.path.join(expdir, f"render_{mode}_style_{step:06d}")
    for k in styles:
        name = os.path.splitext(model.style_names[k])[0]
        outdir = os.path.join(root, name)
        os.makedirs(outdir, exist_ok=True)
        target = None
        if mode == "train":
            tpath = os.path.join(expdir, "targets", f"{k:03d}_{name}.npy")
            target = np.load(tpath, mmap_mode="r") if os.path.exists(tpath) else None
        fines, coarses, depths = [], [], []
        for i, c2w in enumerate(tqdm(poses, desc=f"{mode} {name}", dynamic_ncols=True)):
            with jt.no_grad():
                if mode == "train":
                    latent = model.latents.lookup(jt.array([k]).int32(), jt.array([i]).int32())[0]
                else:
                    latent = jt.array(model.mu[k])
            out = render_with_latent(system, model, latent, args, kw, H, W, focal, c2w)
            fine = out["fine" if "fine" in out else "coarse"]
            write_png(os.path.join(outdir, f"{i:03d}_fine.png"), fine["rgb"])
            write_png(os.path.join(outdir, f"{i:03d}_coarse.png"), out["coarse"]["rgb"])
            write_png(os.path.join(outdir, f"{i:03d}_depth.png"), depth_to_image(fine["depth"]))
            if target is not None and target.shape[1:3] == (H, W):
                write_png(os.path.join(outdir, f"{i:03d}_target.png"), np.asarray(target[i]))
            fines.append(fine["rgb"])
            coarses.append(out["coarse"]["rgb"])
            depths.append(fine["depth"])
        if mode == "valid":
            write_video(os.path.join(outdir, "fine_rgb.mp4"), fines, fps=args.fps)
            write_video(os.path.join(outdir, "coarse_rgb.mp4"), coarses, fps=args.fps)
            lo, hi = np.percentile(np.stack(depths), 1), np.percentile(np.stack(depths), 99)
            write_video(os.path.join(outdir, "depth.mp4"), [depth_to_image(d, lo, hi) for d in depths],
                        fps=args.fps)
        log(f"{mode} style {name}: {len(poses)} frames in {outdir}")
    return root
