"""Stylized rendering: --render_train_style and --render_valid_style.

Training views use each view's own latent code; novel views use the style's
VAE mean mu_s as the latent (a well-defined code for any camera, unlike the
original, which indexed per-frame codes past the training frames).

Output in `<expdir>/render_{train,valid}_<step>/` (step: the style checkpoint's), named as
the original (pipeline/render_files.py): per style k and frame i
`style_<k>_{fine,coarse,fine_depth,coarse_depth}_<i>.png` (5 digits each; + `style_<k>_2d_<i>.png`,
the 2D stylized target, for training views); `styles.txt` says which style each k is.
Novel views also get `fine_rgb.mp4`, `coarse_rgb.mp4`, `fine_depth.mp4` and `coarse_depth.mp4`
running through the rendered styles in turn, and one folder per style with that style's
`fine_rgb.mp4` and `coarse_rgb.mp4`.

Up to STYLES_PER_PASS styles are rendered together: each frame's densities and fine depths
once, then the style MLP once per style (render_image_colors).  With --render_mode fast (the
default) the MLPs run only where the NeRF's occupancy grid holds density, in front of where
each ray turns opaque (render/fast.py).

--style_interp (novel views, two or more styles): one sequence in `<A>_to_<B>[_to_<C>...]/` whose
latent code moves linearly from style A's mean (first frame) to B's (last frame, or on through
the further styles at evenly spaced frames): the photoreal names (no style prefix) and the four videos.
"""
import os

import jittor as jt
import numpy as np
from tqdm import tqdm

from core.media import write_png
from dataset.rays import image_rays, scaled_hwf
from models.style_mlp import StyleMix
from pipeline import geometry, render_files
from pipeline.nerf_stage import load_trained_nerf, valid_poses
from pipeline.style_stage import StyleColors, StyleField, load_style_model, style_fields
from pipeline.style_selection import style_indices
from pipeline.targets import saved_targets, target_path
from render.fast import fast_options
from render.options import RenderOptions
from render.renderer import render_image, render_image_colors


# Styles rendered together: the densities and fine depths of a frame are computed once for
# them; more per pass is faster but holds more frames (uint8) for the videos.
STYLES_PER_PASS = 4


def render_with_latent(system, model, latent, args, opts, H, W, focal, c2w, style=None):
    """One frame for one latent code [L]; style: the code's style index (per-style hash grids)."""
    coarse_field, fine_field = style_fields(system, model.mlp, latent, style)
    ro, rd, _ = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
    return render_image(ro, rd, None, H, W, args.chunk, opts=opts, coarse_field=coarse_field,
                        fine_field=fine_field, share_color=True)


def render_with_latents(system, model, latents, args, opts, H, W, focal, c2w, keys=("rgb", "depth"),
                        styles=None):
    """One frame for several latent codes (a list of [L]) of `styles` (their style indices, for
    per-style hash grids): a list of render_image results, the geometry shared
    (render_image_colors); without fine samples one render per code."""
    styles = list(styles) if styles is not None else [None] * len(latents)
    if opts.n_fine < 1:
        return [render_with_latent(system, model, lat, args, opts, H, W, focal, c2w, k)
                for lat, k in zip(latents, styles)]
    ro, rd, _ = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
    coarse_field = StyleField(system.coarse, model.mlp, system.embed_xyz, None)
    fine_field = StyleColors(system.fine, model.mlp, system.embed_xyz, latents, styles)
    return render_image_colors(ro, rd, H, W, args.chunk, coarse_field, fine_field, len(latents), opts=opts,
                               keys=keys)


def interpolation_steps(n_keys, n_frames):
    """Per frame, the key it leaves and how far it is towards the next: k [n_frames] in
    0..n_keys-2 and a [n_frames] in [0, 1], the keys evenly spaced along the frames."""
    if n_keys < 2 or n_frames < 1:
        raise ValueError(f"an interpolation needs >= 2 codes and >= 1 frame, got {n_keys} and {n_frames}")
    t = np.linspace(0.0, n_keys - 1, n_frames)
    k = np.minimum(t.astype(int), n_keys - 2)
    return k, t - k


def interpolated_latents(mus, n_frames):
    """[n_frames, L]: piecewise-linear from mus[0] (frame 0) through each mus[k] to mus[-1]
    (the last frame), the styles' keys evenly spaced along the frames. mus [S>=2, L]."""
    mus = np.asarray(mus, np.float64)
    k, a = interpolation_steps(len(mus), n_frames)
    a = a[:, None]
    return ((1 - a) * mus[k] + a * mus[k + 1]).astype(np.float32)


def render_interpolation(args, system, model, styles, poses, root, opts, H, W, focal, log=print):
    """--style_interp: the novel-view path with the latent moving through the styles' means."""
    names = [os.path.splitext(model.style_names[k])[0] for k in styles]
    outdir = os.path.join(root, "_to_".join(names))
    os.makedirs(outdir, exist_ok=True)
    latents = interpolated_latents([model.mu[k] for k in styles], len(poses))
    # per-style grids: their features blended as the codes are
    keys, weights = interpolation_steps(len(styles), len(poses))
    mixes = [StyleMix(styles[k], styles[k + 1], w) for k, w in zip(keys, weights)]
    depths = render_files.DepthFrames()
    for i, c2w in enumerate(tqdm(poses, desc=" -> ".join(names), dynamic_ncols=True)):
        with jt.no_grad():
            out = render_with_latent(system, model, jt.array(latents[i]), args, opts, H, W, focal, c2w,
                                     style=mixes[i])
        depths.add(render_files.write_views(outdir, i, out))
    render_files.write_rgb_videos(outdir, outdir, [(None, i) for i in range(len(poses))], args.fps)
    depths.write(outdir, args.fps)
    log(f"style interpolation {' -> '.join(names)}: {len(poses)} frames in {outdir}")
    return outdir


def render(args, scene, expdir, log=print):
    system, nerf_step, _ = load_trained_nerf(args, expdir)
    model, step = load_style_model(args, system, expdir)
    styles = style_indices(args.style, model.style_names, "the trained style model")
    opts = fast_options(RenderOptions.from_args(args, scene, "eval").for_style(args), args, scene, system.fields(),
                        expdir, nerf_step, log)  # --render_mode
    H, W, focal = scaled_hwf(scene.hwf, args.render_factor)
    if args.render_train_style:  # the style-training views: the geometry stage's poses
        poses, mode = geometry.geometry_poses(args, scene), "train"
        if len(poses) != model.n_views:
            raise ValueError(f"--gen_factor {args.gen_factor} gives {len(poses)} views, but the style model "
                             f"was trained on {model.n_views}: use the training run's --gen_factor")
    else:
        poses, mode = valid_poses(args, scene), "valid"
    root = render_files.render_dir(expdir, mode, step)
    render_files.write_style_list(root, model.style_names)
    if args.style_interp:  # the config has checked the mode and the comma
        if len(styles) < 2:
            raise ValueError(f"--style_interp needs two or more distinct styles, got --style {args.style}")
        return render_interpolation(args, system, model, styles, poses, root, opts, H, W, focal, log)

    def latent_of(k, i):
        with jt.no_grad():
            if mode == "train":
                return model.latents.lookup(jt.array([k]).int32(), jt.array([i]).int32())[0]
            return jt.array(model.mu[k])

    depths = render_files.DepthFrames()  # the geometry is the same for every style: kept once
    for first in range(0, len(styles), STYLES_PER_PASS):
        group = styles[first:first + STYLES_PER_PASS]
        names = [os.path.splitext(model.style_names[k])[0] for k in group]
        targets = {}
        if mode == "train":
            for k in group:
                targets[k] = saved_targets(target_path(os.path.join(expdir, "targets"), k, model.style_names[k]), log)
        for i, c2w in enumerate(tqdm(poses, desc=f"{mode} {', '.join(names)}", dynamic_ncols=True)):
            images = render_with_latents(system, model, [latent_of(k, i) for k in group], args, opts, H, W, focal,
                                         c2w, styles=group)
            for k, out in zip(group, images):
                depth = render_files.write_views(root, i, out, style=k)
                target = targets.get(k)
                if target is not None and target.shape[1:3] == (H, W):
                    write_png(os.path.join(root, render_files.png_name("2d", i, k)), np.asarray(target[i]))
            if first == 0 and mode == "valid":
                depths.add(depth)
        for name in names:
            log(f"{mode} style {name}: {len(poses)} frames in {root}")
    if mode == "valid":
        n = len(poses)
        for k in styles:  # one folder per style with its own videos
            name = os.path.splitext(model.style_names[k])[0]
            render_files.write_rgb_videos(root, os.path.join(root, name), [(k, i) for i in range(n)], args.fps)
        render_files.write_rgb_videos(root, root, [(k, i) for k in styles for i in range(n)], args.fps)
        depths.write(root, args.fps, repeat=len(styles))
    return root
