"""The evaluation report's pictures: the consistency bar chart and one picture strip per style
(OpenCV and NumPy; no plotting dependency)."""
import os
import re

import cv2
import numpy as np

from core.media import write_png

GAP = 4  # white pixels between the strip's pictures


def bar_chart(path, table, ks):
    """A small grouped bar chart of the consistency table (masked RMSE per style, k and method)."""
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


def strip_name(style):
    """File name of a style's strip: strip_<style without extension, odd characters as _>.png."""
    return "strip_" + re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.splitext(style)[0]) + ".png"


def picture_strip(images, height):
    """Float images [h,w,3] in [0,1] side by side, each resized (aspect kept) to `height`,
    GAP white columns between them -> float32 [height, W, 3]."""
    parts = []
    for img in images:
        img = np.asarray(img, np.float32)
        w = max(1, int(round(img.shape[1] * height / img.shape[0])))
        if img.shape[:2] != (height, w):
            img = cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)
        if parts:
            parts.append(np.ones((height, GAP, 3), np.float32))
        parts.append(np.clip(img, 0, 1))
    return np.concatenate(parts, axis=1)


def write_strip(out_dir, style, photo, nerf, adain, style_image, taken=()):
    """photoreal | stylized NeRF | per-frame AdaIN | style image, at the frame height; returns the
    file name (numbered when another style's strip took it: a.jpg and a.png)."""
    name, n = strip_name(style), 2
    while name in set(taken):
        name, n = f"{strip_name(style)[:-4]}_{n}.png", n + 1
    write_png(os.path.join(out_dir, name), picture_strip([photo, nerf, adain, style_image], photo.shape[0]))
    return name
