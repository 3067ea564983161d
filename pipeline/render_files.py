"""Files of rendered views, named as the original release names them.

In `<expdir>/render_train_<step>/` and `render_valid_<step>/` (the step unpadded, as there):
- photoreal views: `fine_%05d.png`, `coarse_%05d.png`, `fine_depth_%05d.png`,
  `coarse_depth_%05d.png` (+ `gt_%05d.png`, the photo, for training views);
- stylized views: the same names behind `style_%05d_` (the style's index in the trained
  style model) (+ `style_%05d_2d_%05d.png`, the 2D stylized target, for training views);
- videos: `fine_rgb.mp4`, `coarse_rgb.mp4`, `fine_depth.mp4`, `coarse_depth.mp4` (the fine
  video holds the fine frames; the original's held the coarse ones).
docs/ORIGINAL_COMPAT.md lists them beside the original's.
"""
import os

import imageio.v2 as imageio
import numpy as np

from core.media import VideoWriter, depth_to_image, depth_video_frames, write_png

LEVELS = ("fine", "coarse")


def render_dir(expdir, mode, step):
    """`<expdir>/render_<mode>_<step>` (mode "train" or "valid")."""
    return os.path.join(expdir, f"render_{mode}_{int(step)}")


def png_name(kind, i, style=None):
    """kind: fine, coarse, fine_depth, coarse_depth, gt or 2d; style: an index or None (photoreal)."""
    prefix = "" if style is None else f"style_{int(style):05d}_"
    return f"{prefix}{kind}_{int(i):05d}.png"


def write_views(outdir, i, out, style=None):
    """The fine and coarse colour and depth PNGs of frame i from a render_image result (a render
    without fine samples stands in for both levels). Returns {level: depth [H,W]}."""
    depths = {}
    for level in LEVELS:
        res = out[level if level in out else "coarse"]
        write_png(os.path.join(outdir, png_name(level, i, style)), res["rgb"])
        write_png(os.path.join(outdir, png_name(f"{level}_depth", i, style)), depth_to_image(res["depth"]))
        depths[level] = res["depth"].astype(np.float16)  # for the depth videos; 8-bit frames in the end
    return depths


class DepthFrames:
    """The depth maps of a path, per level, for depth videos in one range (no flicker)."""

    def __init__(self):
        self.frames = {level: [] for level in LEVELS}

    def add(self, depths):
        for level in LEVELS:
            self.frames[level].append(depths[level])

    def write(self, outdir, fps, repeat=1):
        """`fine_depth.mp4` and `coarse_depth.mp4`; the path `repeat` times (once per style)."""
        for level in LEVELS:
            images = depth_video_frames([d.astype(np.float32) for d in self.frames[level]])
            with VideoWriter(os.path.join(outdir, f"{level}_depth.mp4"), fps) as video:
                for _ in range(repeat):
                    for img in images:
                        video.append(np.repeat(img[..., None], 3, axis=2))


def write_rgb_videos(srcdir, outdir, frames, fps):
    """`fine_rgb.mp4` and `coarse_rgb.mp4` in outdir from the PNGs in srcdir, read back one at a
    time (lossless: the PNGs hold the 8-bit frames); frames: (style or None, i) in video order."""
    for level in LEVELS:
        with VideoWriter(os.path.join(outdir, f"{level}_rgb.mp4"), fps) as video:
            for style, i in frames:
                video.append(imageio.imread(os.path.join(srcdir, png_name(level, i, style))))


def valid_videos(root, style_names):
    """The mp4 paths --render_valid_style writes into root (render_dir(expdir, "valid", step)) for
    these styles (file names or bare names): the four videos running through every style, and
    each style's folder with its two colour videos."""
    files = [f"{level}_{kind}.mp4" for level in LEVELS for kind in ("rgb", "depth")]
    files += [os.path.join(os.path.splitext(n)[0], f"{level}_rgb.mp4") for n in style_names for level in LEVELS]
    return [os.path.join(root, f) for f in files]


def write_style_list(outdir, names):
    """`styles.txt`: which style each `style_%05d_` index is (index, then file name)."""
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "styles.txt"), "w") as f:
        f.writelines(f"{k:05d} {name}\n" for k, name in enumerate(names))
