"""How much of the stylized NeRF's style-loss gap to per-frame AdaIN is global colour: an oracle.

    python bench/diag/diag_colour_gap.py --eval_dir <expdir>/eval [--styledir style] [--style_size 512]

evaluate.py's picture strips hold the middle path frame of each style: photoreal | stylized NeRF |
per-frame AdaIN | style image (8-bit PNG).  For each style this measures the style loss
(evaluation/style_strength.py, against the style image at --style_size) of the NeRF's frame, of
AdaIN's, and of the NeRF's frame after a global colour transfer *to AdaIN's own frame*: its RGB
means and stds matched channel by channel, or its RGB mean and covariance matched (a linear
colour transfer).  No post-process of the renders can know AdaIN's frame, so these are upper
bounds of what a global colour correction could close; what they leave is texture.  One frame a
style: a quick reading, not evaluate.py's mean over the path.
"""
import argparse
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402


def per_channel(x, ref):
    """x with ref's per-channel RGB mean and std."""
    import numpy as np
    out = (x - x.mean((0, 1))) / (x.std((0, 1)) + 1e-6) * ref.std((0, 1)) + ref.mean((0, 1))
    return np.clip(out, 0, 1)


def covariance(x, ref):
    """x with ref's RGB mean and covariance (whitening, then ref's colouring; symmetric roots)."""
    import numpy as np

    def root(c, power):
        e, v = np.linalg.eigh(c)
        return v @ np.diag(np.maximum(e, 1e-9) ** power) @ v.T
    xf, rf = x.reshape(-1, 3), ref.reshape(-1, 3)
    a = root(np.cov(rf.T), 0.5) @ root(np.cov(xf.T), -0.5)
    return np.clip((xf - xf.mean(0)) @ a.T + rf.mean(0), 0, 1).reshape(x.shape)


def strip_panels(path, width):
    """photoreal, stylized NeRF, per-frame AdaIN frames [H,width,3] in [0,1] of one strip."""
    import cv2
    import numpy as np
    from evaluation.figures import GAP
    strip = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    return [strip[:, i * (width + GAP): i * (width + GAP) + width] for i in range(3)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval_dir", required=True, help="an evaluate.py output folder (report.md, strip_*.png)")
    ap.add_argument("--styledir", default="style")
    ap.add_argument("--style_size", type=int, default=512)
    ap.add_argument("--vgg", default="pretrained/vgg_normalised_conv3_1.pth")
    a = ap.parse_args(argv)
    runtime.setup()
    from evaluation.style_strength import style_loss
    from models.vgg import VGGEncoder
    from pipeline.style_selection import load_style_images
    report = open(os.path.join(a.eval_dir, "report.md")).read()
    size = re.search(r"path frames at (\d+)x(\d+)", report)
    if size is None:
        raise SystemExit(f"error: {a.eval_dir}/report.md names no path frame size ('path frames at WxH')")
    width = int(size.group(1))
    encoder = VGGEncoder.from_pth(a.vgg, quiet=True)
    styles = {os.path.splitext(f)[0]: f for f in os.listdir(a.styledir)}
    print(f"{a.eval_dir}: the middle path frame ({width} px wide), style loss and its ratio to per-frame AdaIN's")
    print("| style | stylized NeRF | per-frame AdaIN | NeRF, RGB means and stds of AdaIN's frame | NeRF, RGB mean and covariance of AdaIN's frame |")
    print("|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(a.eval_dir, "strip_*.png"))):
        stem = os.path.basename(path)[len("strip_"):-len(".png")]
        if stem not in styles:
            print(f"{stem}: no such style image in {a.styledir}; skipped")
            continue
        style = load_style_images([os.path.join(a.styledir, styles[stem])], a.style_size)[0]
        _, nerf, adain = strip_panels(path, width)
        frames = [nerf, adain, per_channel(nerf, adain), covariance(nerf, adain)]
        loss = [float(style_loss(encoder, f[None], style)[0]) for f in frames]
        print(f"| {stem} | " + " | ".join(f"{v:.3f} ({v / loss[1]:.2f}x)" for v in loss) + " |", flush=True)


if __name__ == "__main__":
    main()
