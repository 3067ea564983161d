"""Evaluation of an experiment: photoreal fidelity and multi-view consistency.

1. Photoreal: PSNR and SSIM of the NeRF's fine renders on the held-out views.
2. Consistency along the novel-view path: frame t is warped onto frame t+k with
   the NeRF's 3D points and the known cameras (depth-tested splatting), and the
   RMSE over pixels visible in both is averaged over t.  k = --eval_k_short
   (short range) and --eval_k_long (long range).  Methods compared on the same
   frames: the stylized NeRF (latent = style mean) and per-frame 2D AdaIN of the
   photoreal renders with the same decoder and style image (the paper's
   image-stylization baseline).  The photoreal renders themselves are measured
   too: their error is the floor the warp itself leaves (resampling, NeRF
   view-dependence).
Writes `<expdir>/eval/report.md`, `consistency.csv`, `photoreal.csv` and
`consistency.png`.
"""
import csv
import os

import cv2
import jittor as jt
import numpy as np
from tqdm import tqdm

from dataset.rays import image_rays, scaled_hwf
from evaluation.consistency import consistency_error
from evaluation.metrics import psnr, ssim
from pipeline.geometry import surface_points
from pipeline.nerf_stage import load_trained_nerf, valid_poses
from render.options import RenderOptions
from render.renderer import render_image


def render_path(args, fields, opts, poses, H, W, focal, desc, viewdirs=True, share_color=False):
    """Fine RGB [T,H,W,3] and world points [T,H,W,3] along poses, rendered as opts says.

    viewdirs: feed view directions (the photoreal NeRF with --use_viewdir; the style field has none).
    share_color: one colour pass for both levels (the style field, render_rays)."""
    coarse_field, fine_field = fields
    rgbs, pts = [], []
    for c2w in tqdm(poses, desc=desc, dynamic_ncols=True):
        ro, rd, vd = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
        out = render_image(ro, rd, vd if (args.use_viewdir and viewdirs) else None, H, W, args.chunk, opts=opts,
                           coarse_field=coarse_field, fine_field=fine_field, coarse_rgb=False,
                           share_color=share_color)
        res = out["fine" if "fine" in out else "coarse"]
        pts.append(surface_points(ro, rd, res["depth"], H, W, focal, ndc=not args.no_ndc))
        rgbs.append(res["rgb"])
    return np.stack(rgbs).astype(np.float32), np.stack(pts).astype(np.float32)


def photoreal_metrics(args, scene, system, log):
    H, W, focal = scene.hwf
    opts = RenderOptions.from_args(args, scene, "eval")
    rows = []
    for i in scene.i_test:
        rgb, _ = render_path(args, system.fields(), opts, scene.poses[i:i + 1], int(H), int(W), focal,
                             f"held-out view {i}")
        rows.append({"view": int(i), "psnr": psnr(rgb[0], scene.images[i]), "ssim": ssim(rgb[0], scene.images[i])})
        log(f"held-out view {i}: PSNR {rows[-1]['psnr']:.2f}  SSIM {rows[-1]['ssim']:.4f}")
    return rows


def consistency_rows(frames, points, poses, H, W, focal, ks):
    return {k: consistency_error(frames, points, poses, H, W, focal, k=k) for k in ks}


def bar_chart(path, table, ks):
    """A small grouped bar chart (OpenCV; no plotting dependency)."""
    methods = sorted({r["method"] for r in table})
    styles = sorted({r["style"] for r in table})
    colours = [(200, 120, 40), (60, 60, 220), (60, 170, 60), (150, 150, 150)]
    groups = [(s, k) for s in styles for k in ks]
    gw, bw, h, top = 24 + 22 * len(methods), 20, 360, 40
    img = np.full((h + 150, max(600, 60 + gw * len(groups)), 3), 255, np.uint8)
    vmax = max([r[f"k{k}_mean"] for r in table for k in ks] + [1e-6])
    for g, (s, k) in enumerate(groups):
        x0 = 60 + g * gw
        for m, method in enumerate(methods):
            r = [r for r in table if r["style"] == s and r["method"] == method]
            if not r:
                continue
            v = r[0][f"k{k}_mean"]
            y = int(top + h - v / vmax * h)
            cv2.rectangle(img, (x0 + m * 22, y), (x0 + m * 22 + bw, top + h), colours[m % 4], -1)
        cv2.putText(img, f"{os.path.splitext(s)[0][:10]} k={k}", (x0, top + h + 15 + 12 * (g % 2)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1)
    for m, method in enumerate(methods):
        cv2.rectangle(img, (60, top + h + 50 + 18 * m), (75, top + h + 62 + 18 * m), colours[m % 4], -1)
        cv2.putText(img, method, (82, top + h + 61 + 18 * m), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.putText(img, f"masked RMSE after warping frame t onto t+k (max {vmax:.4f}); lower = more consistent",
                (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.imwrite(path, img[..., ::-1])


def evaluate(args, scene, expdir, log=print):
    out_dir = os.path.join(expdir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    system, nerf_step, _ = load_trained_nerf(args, expdir)
    photo = photoreal_metrics(args, scene, system, log)
    with open(os.path.join(out_dir, "photoreal.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["view", "psnr", "ssim"])
        w.writeheader()
        w.writerows(photo)
    ks = (args.eval_k_short, args.eval_k_long)
    H, W, focal = scaled_hwf(scene.hwf, args.eval_factor)
    poses = valid_poses(args, scene)
    if args.eval_frames and len(poses) > args.eval_frames:
        poses = poses[:args.eval_frames]
    opts = RenderOptions.from_args(args, scene, "eval")
    photo_frames, points = render_path(args, system.fields(), opts, poses, H, W, focal, "photoreal path")
    table = [_row("(photoreal NeRF)", "NeRF render", photo_frames, points, poses, H, W, focal, ks)]
    table += stylized_rows(args, expdir, system, poses, photo_frames, points, H, W, focal, ks, opts, log)
    write_report(out_dir, nerf_step, photo, table, ks, len(poses), (H, W))
    log(f"wrote {os.path.join(out_dir, 'report.md')}")
    return photo, table


def _row(style, method, frames, points, poses, H, W, focal, ks):
    row = {"style": style, "method": method}
    for k, res in consistency_rows(frames, points, poses, H, W, focal, ks).items():
        row[f"k{k}_mean"], row[f"k{k}_std"] = float(res["mean"]), float(res["std"])
    return row


def stylized_rows(args, expdir, system, poses, photo_frames, points, H, W, focal, ks, opts, log):
    from pipeline.style_stage import load_style_model, style_fields
    from pipeline.stylize import load_style_images, load_style_networks, style_indices
    from pipeline.targets import stylize_view
    from core.checkpoint import load, load_module_state
    try:
        model, step = load_style_model(args, system, expdir)
    except FileNotFoundError as e:
        log(f"no stylized NeRF to evaluate ({e})")
        return []
    encoder, decoder = load_style_networks(args, log)
    ft = os.path.join(expdir, "decoder.pkl")
    if os.path.exists(ft):
        load_module_state(decoder, load(ft, required_keys=("decoder",))["decoder"], ft)
    rows = []
    for k in style_indices(args.style, model.style_names, "the trained style model"):
        name = model.style_names[k]
        style_img = load_style_images([os.path.join(args.styledir, name)], args.style_size)[0]
        with jt.no_grad():
            s_feat = encoder.encode(jt.array(style_img.transpose(2, 0, 1)[None]))
        nerf_frames, _ = render_path(args, style_fields(system, model.mlp, jt.array(model.mu[k])), opts, poses,
                                     H, W, focal, f"stylized NeRF {name}", viewdirs=False, share_color=True)
        adain_frames = np.stack([stylize_view(encoder, decoder, f, s_feat) for f in photo_frames])
        rows.append(_row(name, "stylized NeRF", nerf_frames, points, poses, H, W, focal, ks))
        rows.append(_row(name, "per-frame AdaIN", adain_frames, points, poses, H, W, focal, ks))
        log(" | ".join(f"{r['method']}: k={ks[0]} {r[f'k{ks[0]}_mean']:.4f}, k={ks[1]} {r[f'k{ks[1]}_mean']:.4f}"
                       for r in rows[-2:]))
    return rows


def consistency_ratios(table, ks):
    """One line per style: stylized NeRF error / per-frame AdaIN error at each k, and the same
    ratio of what lies above the photoreal NeRF's error (when that row is in the table)."""
    def row(style, method):
        found = [r for r in table if r["style"] == style and r["method"] == method]
        return found[0] if found else None

    floor = next((r for r in table if r["style"] == "(photoreal NeRF)"), None)
    lines = []
    for s in sorted({r["style"] for r in table if r["method"] == "stylized NeRF"}):
        a, b = row(s, "stylized NeRF"), row(s, "per-frame AdaIN")
        if b is None:
            continue
        parts = []
        for k in ks:
            key = f"k{k}_mean"
            text = f"{a[key] / max(b[key], 1e-12):.2f}"
            if floor is not None and b[key] > floor[key]:
                text += f" (above the floor: {max(a[key] - floor[key], 0.0) / (b[key] - floor[key]):.2f})"
            parts.append(f"{text} at k={k}")
        lines.append(f"- {s}: stylized NeRF / per-frame AdaIN = " + ", ".join(parts))
    return lines


def write_report(out_dir, nerf_step, photo, table, ks, n_frames, size):
    fields = ["style", "method"] + [f"k{k}_{s}" for k in ks for s in ("mean", "std")]
    with open(os.path.join(out_dir, "consistency.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(table)
    lines = [f"# Evaluation (NeRF step {nerf_step})", "",
             "## Photoreal (held-out views)", "", "| view | PSNR | SSIM |", "|---|---|---|"]
    lines += [f"| {r['view']} | {r['psnr']:.2f} | {r['ssim']:.4f} |" for r in photo]
    if photo:
        lines.append(f"| mean | {np.mean([r['psnr'] for r in photo]):.2f} | "
                     f"{np.mean([r['ssim'] for r in photo]):.4f} |")
    lines += ["", f"## Consistency ({n_frames} path frames at {size[1]}x{size[0]}; masked RMSE in [0,1] "
              f"units after warping frame t onto t+k; lower is more consistent)", "",
              "| style | method | " + " | ".join(f"k={k} mean ± std" for k in ks) + " |",
              "|---|---|" + "---|" * len(ks)]
    for r in table:
        lines.append(f"| {r['style']} | {r['method']} | "
                     + " | ".join(f"{r[f'k{k}_mean']:.4f} ± {r[f'k{k}_std']:.4f}" for k in ks) + " |")
    ratio_lines = consistency_ratios(table, ks)
    if ratio_lines:
        lines += ["", "Ratios (below 1: the stylized NeRF is more consistent; 'above the floor': both errors "
                  "less the photoreal NeRF's, the error that warping itself leaves):", ""] + ratio_lines
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if table:
        bar_chart(os.path.join(out_dir, "consistency.png"), table, ks)
