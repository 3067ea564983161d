"""Evaluation of an experiment: photoreal fidelity, multi-view consistency, style strength.

1. Photoreal: PSNR and SSIM of the NeRF's fine renders on the held-out views.
2. Consistency along the novel-view path: frame t is warped onto frame t+k with
   the NeRF's 3D points and the known cameras (depth-tested splatting), and the
   RMSE over pixels visible in both is averaged over t.  k = --eval_k_short
   (short range) and --eval_k_long (long range).  Methods compared on the same
   frames: the stylized NeRF (latent = style mean) and per-frame 2D AdaIN of the
   photoreal renders with the same style image and the 2D decoder (the paper's
   image-stylization baseline; where stage 3 fine-tuned the decoder in 3D, per-frame
   AdaIN with that one too, a row beside it: adain_networks).  The photoreal
   renders themselves are measured too: their error is the floor the warp
   itself leaves (resampling, NeRF view-dependence).  So is per-frame AdaIN's middle frame carried into every
   frame by the geometry: flicker-free with AdaIN's texture, its error is about
   the lowest that a stylization with AdaIN's texture gets from the measure.
   Two warps, each with its own table: the forward splat (the project's
   measure since the first evaluation, the ratios the targets name) and the
   backward bilinear read of the flow-warping literature, whose resampling
   floor on fine detail is far lower (evaluation/consistency.py).
3. Style strength on the same path frames, per style and method (photoreal NeRF, stylized
   NeRF, per-frame AdaIN): AdaIN's style loss against the style image, the style gain over the
   photoreal frames, the content distance to the photoreal frame and the sharpness relative to
   it (evaluation/style_strength.py); one picture strip per style of the middle path frame.
Writes `<expdir>/eval/report.md`, `photoreal.csv`, `consistency.csv`, `style_strength.csv`,
`style_loss_by_tap.csv` (its style loss split by encoder tap), `consistency_backward.csv`,
`summary.csv` (the per-style table of stylized NeRF against per-frame AdaIN),
`consistency.png` and `strip_<style>.png` (evaluation/tables.py, evaluation/figures.py).
The rendered frames, and each style's finished measures, are kept in `<expdir>/eval/frames/` until
the report is written, so that a cut evaluation resumes where it stopped: at the first frame not
rendered and the first style not measured (evaluation/frame_cache.py).
"""
import os

import jittor as jt
import numpy as np
from tqdm import tqdm

from core.cache_key import array_digest
from dataset.rays import image_rays, scaled_hwf
from evaluation.consistency import WARPS, carried_sequence, consistency_error
from evaluation.figures import bar_chart, write_strip
from evaluation.frame_cache import FrameCache, frame_inputs
from evaluation.metrics import psnr, ssim
from evaluation.style_strength import loss_terms, measure_many, path_sharpness, std_level, tap_statistics
from evaluation.tables import ADAIN, ADAIN_3D, CARRIED, NERF, PHOTO, write_report
from pipeline.geometry import surface_points
from pipeline.nerf_stage import load_trained_nerf, valid_poses
from render.fast import fast_options
from render.options import RenderOptions
from render.renderer import render_image


def render_path(args, fields, opts, poses, H, W, focal, desc, viewdirs=True, share_color=False, cache=None,
                group=None, surfaces=None):
    """Fine RGB [T,H,W,3] and world points [T,H,W,3] along poses, rendered as opts says.

    viewdirs: feed view directions (the photoreal NeRF with --use_viewdir; the style field has none).
    share_color: one colour pass for both levels (the style field, render_rays).
    cache: a FrameCache; frame t is read from it as `group`'s, or rendered and put there.
    surfaces: a list that gets each frame's fine (depth, acc) [H,W] (colour_at_surface's input)."""
    coarse_field, fine_field = fields
    rgbs, pts = [], []
    for t, c2w in enumerate(tqdm(poses, desc=desc, dynamic_ncols=True)):
        ro, rd, vd = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
        got = cache.get(group, t, H, W) if cache else None
        if got is None:
            out = render_image(ro, rd, vd if (args.use_viewdir and viewdirs) else None, H, W, args.chunk,
                               opts=opts, coarse_field=coarse_field, fine_field=fine_field, coarse_rgb=False,
                               share_color=share_color)
            got = fine_arrays(out["fine" if "fine" in out else "coarse"], H, W)
            if cache:
                cache.put(group, t, *got)
        rgbs.append(got[0])
        pts.append(surface_points(ro, rd, got[1], H, W, focal, ndc=not args.no_ndc))
        if surfaces is not None:
            surfaces.append(got[1:])
    return np.stack(rgbs).astype(np.float32), np.stack(pts).astype(np.float32)


def fine_arrays(level, H, W):
    """(rgb [H,W,3], depth [H,W], acc [H,W]) float32 of a rendered level: what the frame cache keeps."""
    return (np.asarray(level["rgb"], np.float32).reshape(H, W, 3), np.asarray(level["depth"], np.float32).reshape(H, W),
            np.asarray(level["acc"], np.float32).reshape(H, W))


def colour_at_surface(args, system, model, styles, H, W, focal, c2w, depth, acc, white_bkgd=False):
    """[H,W,3] frames of a one-point stylized render (--style_render_samples 1 --style_point
    surface) of each style in styles, coloured at the photoreal render's own surface: the style
    MLP at o + (depth / acc) d, weighted by acc. A one-point render computes the same thing after
    a second density pass (top_samples: the expected depth under the fine weights, the one weight
    scaled to the fine opacity; where a ray has no opacity its colour has no weight either)."""
    from pipeline.style_stage import StyleColors
    from render.cached_samples import cached_points
    ro, rd, _ = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
    ro, rd, a = ro.reshape(-1, 3), rd.reshape(-1, 3), np.asarray(acc, np.float32).reshape(-1)
    z = np.where(a > 1e-6, np.asarray(depth, np.float64).reshape(-1) / np.maximum(a, 1e-30), 0.0).astype(np.float32)
    colours = StyleColors(system.fine, model.mlp, system.embed_xyz, [jt.array(model.mu[k]) for k in styles], styles)
    rgbs = [np.empty((len(a), 3), np.float32) for _ in styles]
    with jt.no_grad():
        for start in range(0, len(a), int(args.chunk)):
            end = min(start + int(args.chunk), len(a))
            pts = cached_points(ro[start:end], rd[start:end], z[start:end, None])
            for i in range(len(styles)):
                rgbs[i][start:end] = colours.color(pts, i).reshape((end - start, 3)).numpy()
    background = (1.0 - a[:, None]) if white_bkgd else 0.0
    return [(rgb * a[:, None] + background).reshape(H, W, 3).astype(np.float32) for rgb in rgbs]


def photoreal_metrics(args, scene, system, log, cache=None):
    H, W, focal = scene.hwf
    opts = RenderOptions.from_args(args, scene, "eval")
    rows = []
    for i in scene.i_test:
        rgb, _ = render_path(args, system.fields(), opts, scene.poses[i:i + 1], int(H), int(W), focal,
                             f"held-out view {i}", cache=cache, group=f"heldout_{i}")
        rows.append({"view": int(i), "psnr": psnr(rgb[0], scene.images[i]), "ssim": ssim(rgb[0], scene.images[i])})
        log(f"held-out view {i}: PSNR {rows[-1]['psnr']:.2f}  SSIM {rows[-1]['ssim']:.4f}")
    return rows


def consistency_rows(frames, points, poses, H, W, focal, ks, warp="forward"):
    return {k: consistency_error(frames, points, poses, H, W, focal, k=k, warp=warp) for k in ks}


def evaluate(args, scene, expdir, log=print):
    """Writes the report; returns (photoreal rows, consistency rows, style-strength rows)."""
    out_dir = os.path.join(expdir, args.eval_name)
    os.makedirs(out_dir, exist_ok=True)
    system, nerf_step, nerf_path = load_trained_nerf(args, expdir)
    ks = (args.eval_k_short, args.eval_k_long)
    H, W, focal = scaled_hwf(scene.hwf, args.eval_factor)
    poses = valid_poses(args, scene)
    if args.eval_frames and len(poses) > args.eval_frames:
        poses = poses[:args.eval_frames]
    if len(poses) <= max(ks):  # before any render: the path is too short for the frame gap
        raise ValueError(f"the novel-view path has {len(poses)} frames, too few for the consistency measure's "
                         f"frame gap k = {max(ks)} (--eval_k_short / --eval_k_long); expected a smaller "
                         f"--eval_k_long or a longer path (a smaller --valid_factor)")
    opts = RenderOptions.from_args(args, scene, "eval")
    from pipeline.style_stage import style_checkpoints
    # the stylized path renders as --render_mode and --style_render_samples say (the photoreal one exactly)
    style_opts = opts.for_style(args)
    style_path = style_checkpoints(expdir, args).latest()[1]
    cache = FrameCache(os.path.join(out_dir, "frames"), frame_inputs(
        nerf_path, style_path, poses, (H, W, focal), opts, style_opts, args, scene.i_test, scene.hwf), log)
    with cache.kept_on_interrupt():  # Ctrl-C: one line saying where the frames so far are
        photo = photoreal_metrics(args, scene, system, log, cache)
        surfaces = []  # the photoreal path's fine depth and opacity: one-point styles are coloured there
        photo_frames, points = render_path(args, system.fields(), opts, poses, H, W, focal, "photoreal path",
                                           cache=cache, group="photo", surfaces=surfaces)
        tables = method_rows("(photoreal NeRF)", "NeRF render", photo_frames, points, poses, H, W, focal, ks)
        if style_path is not None:
            style_opts = fast_options(style_opts, args, scene, system.fields(), expdir, nerf_step, log)
        rows, strength, strips = stylized_rows(args, expdir, system, poses, photo_frames, points, H, W, focal,
                                               ks, style_opts, out_dir, log, cache, surfaces)
    if cache.reused:
        log(f"{cache.reused} rendered frames came from an earlier evaluation that was cut short")
    for warp in WARPS:
        tables[warp] += rows[warp]
    table = tables["forward"]
    write_report(out_dir, nerf_step, photo, table, ks, len(poses), (H, W), strength, strips, args.style_size,
                 table_backward=tables["backward"])
    if table:
        bar_chart(os.path.join(out_dir, "consistency.png"), table, ks)
    cache.remove()
    log(f"wrote {os.path.join(out_dir, 'report.md')}")
    return photo, table, strength


def method_rows(style, method, frames, points, poses, H, W, focal, ks):
    """{warp: [the consistency row of these frames]} for each of WARPS."""
    out = {}
    for warp in WARPS:
        row = {"style": style, "method": method}
        for k, res in consistency_rows(frames, points, poses, H, W, focal, ks, warp).items():
            row[f"k{k}_mean"], row[f"k{k}_std"] = float(res["mean"]), float(res["std"])
        out[warp] = [row]
    return out


def tap_terms(encoder, terms, level):
    """{tap name: (means term, stds term, std level)}: the path's means of each style-loss term
    (loss_terms) and of the std level (std_level)."""
    return {tap: tuple(float(v) for v in t) + (float(l),)
            for tap, t, l in zip(encoder.taps, terms.mean(axis=0), level.mean(axis=0))}


def adain_networks(args, expdir, log=print):
    """The per-frame AdaIN baselines: (encoder, the 2D decoder as the user has it, the decoder
    stage 3 fine-tuned in 3D or None).  The first (--decoder_pth_path, else the shipped one) is
    what 2D AdaIN gives, the reference of every ratio: the consistency fine-tune trades style for
    agreement between views (docs/STYLE_STRENGTH.md), so a stylized NeRF judged only against it
    would hide that loss.  The second (<expdir>/decoder.pkl, as the stylized targets used) is
    None where stage 3 wrote none or left the weights as they were (--finetune_decoder_steps 0)."""
    from core.checkpoint import load, load_module_state
    from models.decoder import Decoder
    from pipeline.style_selection import load_style_networks
    encoder, decoder = load_style_networks(args, log)
    ft = os.path.join(expdir, "decoder.pkl")
    if not os.path.exists(ft):
        return encoder, decoder, None
    state = load(ft, required_keys=("decoder",))["decoder"]
    own = decoder.state_dict()
    if all(k in state and np.array_equal(_as_numpy(state[k]), _as_numpy(own[k])) for k in own):
        return encoder, decoder, None
    tuned = Decoder(decoder.deepest_channels)
    load_module_state(tuned, state, ft)
    return encoder, decoder, tuned


def stylize_frames(encoder, decoder, photo_frames, style_img):
    """Per-frame AdaIN [T,H,W,3] of the photoreal frames with style_img [h,w,3]."""
    from pipeline.targets import stylize_view
    with jt.no_grad():
        style_feat = encoder.encode(jt.array(style_img.transpose(2, 0, 1)[None]))
    return np.stack([stylize_view(encoder, decoder, f, style_feat) for f in photo_frames])


def adain_path(encoder, decoder, photo_frames, points, poses, H, W, focal, style_img, occlusion_tol=np.inf):
    """Per-frame AdaIN of the photoreal path with style_img [h,w,3] and the same carried in 3D from
    its middle frame (consistency.carried_sequence, with its occlusion_tol): (adain [T,H,W,3],
    carried [T,H,W,3], carried coverage [T])."""
    adain = stylize_frames(encoder, decoder, photo_frames, style_img)
    carried, coverage = carried_sequence(adain, points, poses, H, W, focal, occlusion_tol=occlusion_tol)
    return adain, carried, coverage


def style_group(name):
    """The frame cache's group of a style's stylized path frames."""
    return f"style_{name}"


def prerender_styles(args, system, model, styles, opts, poses, H, W, focal, cache, surfaces=None):
    """Every style's stylized path into the frame cache before the per-style measures read it.
    One point a ray at the expected depth (opts.top_k 1, surface) with the photoreal path's
    surfaces (its fine (depth, acc) per frame, rendered with the same samples): coloured there
    (colour_at_surface), no density pass at all. Otherwise up to STYLES_PER_PASS styles a frame
    over one geometry (render_with_latents, the videos' render, the same frames as one style at a
    time). Frames already cached are skipped; without a cache (or fine samples) nothing is done
    and each style renders alone."""
    from pipeline.stylized_render import STYLES_PER_PASS, render_with_latents
    at_surface = opts.top_k == 1 and opts.surface and surfaces is not None and len(surfaces) == len(poses)
    if cache is None or not cache.on or opts.n_fine < 1 or (len(styles) < 2 and not at_surface):
        return
    for first in range(0, len(styles), STYLES_PER_PASS):
        group = styles[first:first + STYLES_PER_PASS]
        names = [model.style_names[k] for k in group]
        for t, c2w in enumerate(tqdm(poses, desc=f"stylized NeRF {', '.join(names)}", dynamic_ncols=True)):
            todo = [(k, name) for k, name in zip(group, names) if not cache.has(style_group(name), t)]
            if not todo:
                continue
            if at_surface:
                depth, acc = surfaces[t]
                frames = colour_at_surface(args, system, model, [k for k, _ in todo], H, W, focal, c2w, depth, acc,
                                           opts.white_bkgd)
                got = [(rgb, depth, acc) for rgb in frames]
            else:
                images = render_with_latents(system, model, [jt.array(model.mu[k]) for k, _ in todo], args, opts,
                                             H, W, focal, c2w, keys=("rgb", "depth", "acc"),
                                             styles=[k for k, _ in todo])
                got = [fine_arrays(out["fine"], H, W) for out in images]
            for (_, name), arrays in zip(todo, got):
                cache.put(style_group(name), t, *arrays)


def stylized_rows(args, expdir, system, poses, photo_frames, points, H, W, focal, ks, opts, out_dir, log,
                  cache=None, surfaces=None):
    """Per style: consistency rows of the stylized NeRF and per-frame AdaIN, style-strength rows
    of those and of the photoreal frames, and the picture strip (cache: a FrameCache; surfaces:
    the photoreal path's, see prerender_styles).
    Returns ({warp: consistency rows}, strength rows, {style: strip file name})."""
    from pipeline.style_stage import load_style_model, style_fields
    from pipeline.style_selection import load_style_images, style_indices
    try:
        model, step = load_style_model(args, system, expdir)
    except FileNotFoundError as e:
        log(f"no stylized NeRF to evaluate ({e})")
        return {warp: [] for warp in WARPS}, [], {}
    encoder, decoder, tuned = adain_networks(args, expdir, log)
    photo_stats = tap_statistics(encoder, photo_frames)  # the same for every style
    rows, strength, strips = {warp: [] for warp in WARPS}, [], {}
    styles = style_indices(args.style, model.style_names, "the trained style model")
    networks = {"encoder": module_digest(encoder), "decoder": module_digest(decoder),
                "tuned": module_digest(tuned) if tuned is not None else None, "ks": list(ks)}
    # at --style_size, as the stylized targets and the AdaIN baseline see the style
    images = {k: load_style_images([os.path.join(args.styledir, model.style_names[k])], args.style_size)[0]
              for k in styles}
    inputs = {k: dict(networks, style=array_digest([images[k]])) for k in styles}
    kept = {k: kept_measures(cache, model.style_names[k], inputs[k], out_dir) for k in styles}
    prerender_styles(args, system, model, [k for k in styles if kept[k] is None], opts, poses, H, W, focal, cache,
                     surfaces)
    reused = []
    for k in styles:
        name = model.style_names[k]
        if kept[k] is not None and kept[k]["strip"] not in strips.values():
            for line in kept[k]["lines"]:
                log(line)
            measures = kept[k]
            reused.append(name)
        else:
            nerf_frames, _ = render_path(args, style_fields(system, model.mlp, jt.array(model.mu[k]), k), opts,
                                         poses, H, W, focal, f"stylized NeRF {name}", viewdirs=False,
                                         share_color=True, cache=cache, group=style_group(name))
            measures = measure_style(name, images[k], nerf_frames, photo_frames, photo_stats, points, poses,
                                     H, W, focal, ks, (encoder, decoder, tuned), out_dir, strips.values(), log)
            if cache is not None:
                cache.put_measures(name, inputs[k], measures)
        for warp in WARPS:
            rows[warp] += measures["rows"][warp]
        strength += [dict(r, taps={tap: tuple(v) for tap, v in r["taps"].items()}) for r in measures["strength"]]
        strips[name] = measures["strip"]
    if reused:
        log(f"the measures of {', '.join(reused)} came from an earlier evaluation that was cut short")
    return rows, strength, strips


def measure_style(name, style_img, nerf_frames, photo_frames, photo_stats, points, poses, H, W, focal, ks, networks,
                  out_dir, taken, log):
    """One style's measures, logged as they come: {"rows": {warp: consistency rows of the stylized
    NeRF, per-frame AdaIN, AdaIN carried in 3D (and per-frame AdaIN with the decoder fine-tuned in
    3D)}, "strength": the style-strength rows of the photoreal frames and of those, "strip": its
    picture strip's file name (written; taken: names other styles' strips took), "lines": what was
    logged}: JSON-able, so that a cut evaluation keeps it (FrameCache.put_measures)."""
    encoder, decoder, tuned = networks
    lines = []

    def say(line):
        lines.append(line)
        log(line)
    adain_frames, carried, coverage = adain_path(encoder, decoder, photo_frames, points, poses, H, W, focal, style_img)
    # the carried frames: AdaIN's texture fixed in 3D, the reference beside the stylized NeRF
    # for consistency, and a pessimistic one for style (reads through occluders included)
    methods = ((NERF, nerf_frames), (ADAIN, adain_frames), (CARRIED, carried))
    if tuned is not None:  # the decoder the targets came from, beside the 2D reference
        methods += ((ADAIN_3D, stylize_frames(encoder, tuned, photo_frames, style_img)),)
    rows = {warp: [] for warp in WARPS}
    for method, frames in methods:
        for warp, r in method_rows(name, method, frames, points, poses, H, W, focal, ks).items():
            rows[warp] += r
    for warp in WARPS:
        say(f"{warp} warp: " + " | ".join(
            f"{r['method']}: k={ks[0]} {r[f'k{ks[0]}_mean']:.4f}, k={ks[1]} {r[f'k{ks[1]}_mean']:.4f}"
            for r in rows[warp]))
    say(f"{CARRIED}: the middle frame covers {coverage.mean():.0%} of the path's pixels; sharpness "
        f"{path_sharpness(carried, photo_frames):.3f} (per-frame AdaIN {path_sharpness(adain_frames, photo_frames):.3f})")
    style_stats = tap_statistics(encoder, style_img)
    # the photoreal frames are their own reference: content distance 0 and sharpness 1 exactly
    terms = loss_terms(photo_stats, style_stats)
    strength = [{"style": name, "method": PHOTO, "content_distance": 0.0, "sharpness": 1.0,
                 "style_loss": float(terms.sum(axis=(1, 2)).mean()),
                 "taps": tap_terms(encoder, terms, std_level(photo_stats, style_stats))}]
    measured = measure_many(encoder, dict(methods), None, photo_frames, style_stats=style_stats)
    for method, frames in methods:
        m = measured[method]
        strength.append({"style": name, "method": method, "style_loss": float(m["style_loss"].mean()),
                         "content_distance": float(m["content_distance"].mean()),
                         "sharpness": path_sharpness(frames, photo_frames),
                         "taps": tap_terms(encoder, m["style_loss_terms"], m["std_level"])})
    say(" | ".join(f"{r['method']}: style loss {r['style_loss']:.4g}, content distance "
                   f"{r['content_distance']:.4g}, sharpness {r['sharpness']:.3f}" for r in strength))
    t = len(photo_frames) // 2
    strip = write_strip(out_dir, name, photo_frames[t], nerf_frames[t], adain_frames[t], style_img, taken=taken)
    return {"rows": rows, "strength": strength, "strip": strip, "lines": lines}


def module_digest(module):
    """A digest of a module's weights: the measures kept for a style depend on the 2D networks."""
    state = module.state_dict()
    return array_digest([_as_numpy(state[k]) for k in sorted(state)])


def _as_numpy(value):
    """A state-dict value (a Jittor Var or an array) as a NumPy array."""
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def kept_measures(cache, name, inputs, out_dir):
    """The measures an earlier, cut evaluation kept for this style with these inputs, if its strip
    is still written; else None."""
    kept = cache.get_measures(name, inputs) if cache is not None else None
    return kept if kept is not None and os.path.exists(os.path.join(out_dir, kept["strip"])) else None
