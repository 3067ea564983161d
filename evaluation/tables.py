"""The evaluation report's tables: markdown (report.md) and CSV files.

Tables come in as lists of row dicts:
- photoreal: {"view", "psnr", "ssim"} per held-out view;
- consistency: {"style", "method", "k<k>_mean", "k<k>_std"} per (style, method), the photoreal
  NeRF's row with style "(photoreal NeRF)", and per style optionally CARRIED's (per-frame AdaIN
  carried in 3D from one frame: flicker-free, consistency.carried_sequence); one table per warp
  (the forward splat's, and optionally the backward bilinear read's, evaluation/consistency.py);
- strength: {"style", "method", "style_loss", "content_distance", "sharpness"} per (style,
  method), methods PHOTO, NERF and ADAIN (and ADAIN_3D where stage 3 fine-tuned the decoder):
  means over the path frames (sharpness: the ratio of the path's mean high-frequency energies,
  style_strength.path_sharpness), and optionally "taps": {tap: (means term, stds term, std
  level)}, the style loss split by encoder tap and the frames' feature stds over the style
  image's (style_strength.std_level).
"""
import csv
import os

import numpy as np

PHOTO, NERF, ADAIN = "photoreal NeRF", "stylized NeRF", "per-frame AdaIN"
CARRIED = "AdaIN carried in 3D"
# per-frame AdaIN with the decoder that stage 3 fine-tuned for consistency (the targets' decoder),
# beside ADAIN's 2D decoder, the reference of every ratio (evaluation/report.py, adain_networks)
ADAIN_3D = "per-frame AdaIN, decoder fine-tuned in 3D"
STRENGTH_FIELDS = ["style", "method", "style_loss", "style_gain", "content_distance", "sharpness"]


def _find(table, style, method):
    return next((r for r in table if r["style"] == style and r["method"] == method), None)


def consistency_ratio(table, style, k, method=NERF, reference=ADAIN):
    """`method`'s error (the stylized NeRF's) / `reference`'s error (per-frame AdaIN's) of `style`
    at offset k (None without both rows)."""
    a, b = _find(table, style, method), _find(table, style, reference)
    if a is None or b is None:
        return None
    return a[f"k{k}_mean"] / max(b[f"k{k}_mean"], 1e-12)


def consistency_ratios(table, ks):
    """One line per style: stylized NeRF error / per-frame AdaIN error at each k, and the same
    ratio of what lies above the photoreal NeRF's error (when that row is in the table)."""
    floor = next((r for r in table if r["style"] == "(photoreal NeRF)"), None)
    lines = []
    for s in sorted({r["style"] for r in table if r["method"] == NERF}):
        a, b = _find(table, s, NERF), _find(table, s, ADAIN)
        if b is None:
            continue
        parts = []
        for k in ks:
            key = f"k{k}_mean"
            text = f"{consistency_ratio(table, s, k):.2f}"
            if floor is not None and b[key] > floor[key]:
                text += f" (above the floor: {max(a[key] - floor[key], 0.0) / (b[key] - floor[key]):.2f})"
            parts.append(f"{text} at k={k}")
        lines.append(f"- {s}: stylized NeRF / per-frame AdaIN = " + ", ".join(parts))
        if _find(table, s, ADAIN_3D) is not None:
            lines.append(f"- {s}: stylized NeRF / {ADAIN_3D} = " + ", ".join(
                f"{consistency_ratio(table, s, k, reference=ADAIN_3D):.2f} at k={k}" for k in ks))
        if _find(table, s, CARRIED) is not None:
            lines.append(f"- {s}: {CARRIED} / per-frame AdaIN = " + ", ".join(
                f"{consistency_ratio(table, s, k, CARRIED):.2f} at k={k}" for k in ks)
                + " (a flicker-free stylization with AdaIN's texture: about the lowest ratio such a one reaches)")
    return lines


def with_style_gain(strength):
    """Rows with "style_gain" = 1 - style loss / the same style's photoreal NeRF style loss
    (nan without that row): 0 = no closer to the style than the photo, 1 = the style's statistics."""
    out = []
    for r in strength:
        photo = _find(strength, r["style"], PHOTO)
        gain = float("nan") if photo is None else 1.0 - r["style_loss"] / max(photo["style_loss"], 1e-12)
        out.append(dict(r, style_gain=gain))
    return out


def summary_rows(strength, table, ks, table_backward=None):
    """Per style: style gain, content distance and sharpness of the stylized NeRF and of per-frame
    AdaIN, and the consistency ratios (stylized NeRF / AdaIN) at each k (with table_backward,
    also those of the backward warp, consistency_ratio_k<k>_backward)."""
    strength = with_style_gain(strength)
    rows = []
    for s in sorted({r["style"] for r in strength if r["method"] == NERF}):
        a, b = _find(strength, s, NERF), _find(strength, s, ADAIN)
        if b is None:
            continue
        row = {"style": os.path.splitext(s)[0], "style_loss_ratio": a["style_loss"] / max(b["style_loss"], 1e-12)}
        tuned = _find(strength, s, ADAIN_3D)
        if tuned is not None:  # the same against the 3D-fine-tuned decoder's AdaIN
            row["style_loss_ratio_3d"] = a["style_loss"] / max(tuned["style_loss"], 1e-12)
        for key in ("style_gain", "content_distance", "sharpness"):
            row[f"{key}_nerf"], row[f"{key}_adain"] = a[key], b[key]
        for suffix, t in (("", table), ("_backward", table_backward)):
            if t is None:
                continue
            for k in ks:
                ratio = consistency_ratio(t, s, k)
                row[f"consistency_ratio_k{k}{suffix}"] = float("nan") if ratio is None else ratio
            for k in ks if any(r["method"] == CARRIED for r in t) else ():
                ratio = consistency_ratio(t, s, k, CARRIED)
                row[f"carried_ratio_k{k}{suffix}"] = float("nan") if ratio is None else ratio
        rows.append(row)
    return rows


def summary_markdown(rows, ks):
    """The per-style summary as a markdown table (pairs: stylized NeRF / per-frame AdaIN)."""
    keys = [(f"consistency_ratio_k{k}", f"consistency ratio k={k}") for k in ks]
    if rows and f"consistency_ratio_k{ks[0]}_backward" in rows[0]:
        keys += [(f"consistency_ratio_k{k}_backward", f"k={k}, backward warp") for k in ks]
    if rows and f"carried_ratio_k{ks[-1]}" in rows[0]:
        keys += [(f"carried_ratio_k{ks[-1]}", f"k={ks[-1]}, AdaIN carried in 3D")]
    if rows and "style_loss_ratio_3d" in rows[0]:
        keys = [("style_loss_ratio_3d", "style loss ratio to the 3D-tuned decoder's AdaIN")] + keys
    lines = ["| style | style loss ratio | style gain | content distance | sharpness | "
             + " | ".join(title for _, title in keys) + " |", "|---" * (5 + len(keys)) + "|"]
    for r in rows:
        lines.append(f"| {r['style']} | {r['style_loss_ratio']:.2f}x | "
                     f"{r['style_gain_nerf']:.2f} / {r['style_gain_adain']:.2f} | "
                     f"{r['content_distance_nerf']:.3g} / {r['content_distance_adain']:.3g} | "
                     f"{r['sharpness_nerf']:.2f} / {r['sharpness_adain']:.2f} | "
                     + " | ".join(f"{r[key]:.2f}" for key, _ in keys) + " |")
    return lines


def write_csv(path, fields, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def photoreal_lines(photo):
    lines = ["## Photoreal (held-out views)", "", "| view | PSNR | SSIM |", "|---|---|---|"]
    lines += [f"| {r['view']} | {r['psnr']:.2f} | {r['ssim']:.4f} |" for r in photo]
    if photo:
        lines.append(f"| mean | {np.mean([r['psnr'] for r in photo]):.2f} | "
                     f"{np.mean([r['ssim'] for r in photo]):.4f} |")
    return lines


def consistency_lines(table, ks, n_frames, size, warp="forward splat"):
    lines = [f"## Consistency, {warp} ({n_frames} path frames at {size[1]}x{size[0]}; masked RMSE in "
             f"[0,1] units after warping frame t onto t+k; lower is more consistent)", "",
             "| style | method | " + " | ".join(f"k={k} mean ± std" for k in ks) + " |",
             "|---|---|" + "---|" * len(ks)]
    for r in table:
        lines.append(f"| {r['style']} | {r['method']} | "
                     + " | ".join(f"{r[f'k{k}_mean']:.4f} ± {r[f'k{k}_std']:.4f}" for k in ks) + " |")
    ratio_lines = consistency_ratios(table, ks)
    if ratio_lines:
        lines += ["", "Ratios (below 1: the stylized NeRF is more consistent; 'above the floor': both errors "
                  "less the photoreal NeRF's, the error that warping itself leaves):", ""] + ratio_lines
    return lines


def strength_lines(strength, strips, n_frames, size, style_size):
    lines = [f"## Style strength ({n_frames} path frames at {size[1]}x{size[0]}; style images at "
             f"{style_size} px on the short side)", "",
             "Style loss: AdaIN's training objective against the style image (sum over the VGG taps of "
             "MSE of channel means + MSE of channel stds; lower = closer to the style). Style gain: "
             "1 - style loss / the photoreal frames' style loss. Content distance: MSE of the deepest "
             "VGG features to the photoreal frame. Sharpness: mean squared Laplacian of the luminance "
             "over the photoreal frame's, as a ratio of the path's means (1 = as much fine detail, below "
             "1 blurrier). The other figures are means over the path frames. AdaIN carried in 3D (where "
             "the evaluation has it): per-frame AdaIN's middle frame carried into every frame by the "
             "geometry, flicker-free; a pessimistic reference for style, since pixels whose point the "
             "middle frame does not see read whatever it shows there (docs/STYLE_STRENGTH.md).", "",
             "| style | method | style loss | style gain | content distance | sharpness |",
             "|---|---|---|---|---|---|"]
    for r in with_style_gain(strength):
        lines.append(f"| {r['style']} | {r['method']} | {r['style_loss']:.4g} | {r['style_gain']:.3f} | "
                     f"{r['content_distance']:.4g} | {r['sharpness']:.3f} |")
    for style, name in (strips or {}).items():
        lines += ["", f"### {style}", "", "photoreal NeRF | stylized NeRF | per-frame AdaIN | style image "
                  "(the middle path frame):", "", f"![{style}]({name})"]
    return lines


TAP_FIELDS = ["style", "method", "tap", "means_term", "stds_term", "std_level"]


def tap_rows(strength):
    """One row per (style, method, tap) of the strength rows that carry "taps"."""
    return [dict(style=r["style"], method=r["method"], tap=tap, **dict(zip(TAP_FIELDS[3:], values)))
            for r in strength for tap, values in r.get("taps", {}).items()]


def tap_lines(strength):
    """Markdown: where each method's style loss lies, per style and tap (means + stds terms), and
    the stylized NeRF's terms over per-frame AdaIN's: the taps where the 3D field falls short."""
    rows = tap_rows(strength)
    if not rows:
        return []
    lines = ["## Style loss by encoder tap", "",
             "The style loss is the sum over the encoder's taps of the MSE of the channel means and of "
             "the channel stds. The stds of the shallow taps carry fine texture; blur lowers them first. "
             "Each cell: means term / stds term (std level: the frames' channel stds summed, over the "
             "style image's; below 1 less texture than the painting at that scale).",
             "", "| style | tap | photoreal NeRF | stylized NeRF | per-frame AdaIN | "
             "stylized NeRF / per-frame AdaIN (sum of terms) |", "|---|---|---|---|---|---|"]
    for style in dict.fromkeys(r["style"] for r in rows):
        for tap in dict.fromkeys(r["tap"] for r in rows if r["style"] == style):
            got = {r["method"]: r for r in rows if r["style"] == style and r["tap"] == tap}
            cells = [f"{got[m]['means_term']:.4g} / {got[m]['stds_term']:.4g} ({got[m]['std_level']:.2f})"
                     if m in got else "-" for m in (PHOTO, NERF, ADAIN)]
            total = {m: r["means_term"] + r["stds_term"] for m, r in got.items()}
            ratio = f"{total[NERF] / max(total[ADAIN], 1e-12):.2f}x" if NERF in got and ADAIN in got else "-"
            lines.append(f"| {style} | {tap} | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def write_report(out_dir, nerf_step, photo, table, ks, n_frames, size, strength=(), strips=None,
                 style_size=None, table_backward=None):
    """report.md and photoreal.csv, consistency.csv, style_strength.csv, summary.csv in out_dir
    (and consistency_backward.csv with table_backward, the backward warp's rows)."""
    write_csv(os.path.join(out_dir, "photoreal.csv"), ["view", "psnr", "ssim"], photo)
    fields = ["style", "method"] + [f"k{k}_{s}" for k in ks for s in ("mean", "std")]
    write_csv(os.path.join(out_dir, "consistency.csv"), fields, table)
    lines = [f"# Evaluation (NeRF step {nerf_step})", ""] + photoreal_lines(photo)
    lines += [""] + consistency_lines(table, ks, n_frames, size)
    if table_backward is not None:
        write_csv(os.path.join(out_dir, "consistency_backward.csv"), fields, table_backward)
        lines += ["", "The forward splat moves each colour to the nearest pixel centre, up to half a pixel off, "
                  "so fine detail alone raises its error. The backward warp reads the source bilinearly "
                  "where each destination pixel's own surface point lies, which leaves a far smaller error "
                  "on detail that is consistent:", ""]
        lines += consistency_lines(table_backward, ks, n_frames, size, "backward bilinear warp")
    if strength:
        write_csv(os.path.join(out_dir, "style_strength.csv"), STRENGTH_FIELDS, with_style_gain(strength))
        lines += [""] + strength_lines(strength, strips, n_frames, size, style_size)
        taps = tap_rows(strength)
        if taps:
            write_csv(os.path.join(out_dir, "style_loss_by_tap.csv"), TAP_FIELDS, taps)
            lines += [""] + tap_lines(strength)
        summary = summary_rows(strength, table, ks, table_backward)
        if summary:
            write_csv(os.path.join(out_dir, "summary.csv"), list(summary[0]), summary)
            lines += ["", "## Summary per style (stylized NeRF / per-frame AdaIN with the 2D decoder; style "
                      "loss ratio: the stylized NeRF's style loss over per-frame AdaIN's; consistency ratio: "
                      "stylized NeRF error / per-frame AdaIN error; AdaIN carried in 3D: the same ratio of "
                      "per-frame AdaIN's middle frame carried into every frame by the geometry)", ""] \
                + summary_markdown(summary, ks)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
