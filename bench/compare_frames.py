"""PSNR between stylized novel-view frames of two versions of the code: a reference kept in
git and a new render of the same experiment, frame by frame.

    python bench/compare_frames.py --ref bench/checkpoints/fern_quick_nerf120k_1427bdb_frames.tgz \
        --new logs/fern_quick_nerf120k/render_valid_123001 [--min_db 40]

The reference holds `<run>/<style>/<iii>_fine.png` (the layout of the renders before they took
the original's file names); the new folder holds `style_<k>_fine_<iii>.png` with `styles.txt`
naming style k (pipeline/render_files.py).  Every reference frame is compared with its new
frame; the script prints each PSNR and exits 1 when one is below --min_db (or is missing).
"""
import argparse
import os
import sys
import tarfile
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def psnr(a, b):
    """PSNR in dB of two 8-bit images (evaluation.metrics.psnr on [0, 1])."""
    from evaluation.metrics import psnr as psnr01
    return psnr01(a.astype(np.float64) / 255.0, b.astype(np.float64) / 255.0)


def reference_frames(root):
    """{(style name without extension, frame index): path} of a <run>/<style>/<iii>_fine.png tree."""
    out = {}
    for folder, _, files in os.walk(root):
        for f in files:
            if f.endswith("_fine.png") and f[:-9].isdigit():
                out[(os.path.basename(folder), int(f[:-9]))] = os.path.join(folder, f)
    return out


def new_style_index(new_dir):
    """{style name without extension: k} from the render folder's styles.txt."""
    with open(os.path.join(new_dir, "styles.txt")) as f:
        pairs = [line.split(None, 1) for line in f if line.strip()]
    return {os.path.splitext(name.strip())[0]: int(k) for k, name in pairs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="a .tgz or folder of reference frames")
    ap.add_argument("--new", required=True, help="the new render folder (render_valid_<step>)")
    ap.add_argument("--min_db", type=float, default=40.0)
    a = ap.parse_args(argv)
    import imageio.v2 as imageio
    with tempfile.TemporaryDirectory() as tmp:
        root = a.ref
        if os.path.isfile(a.ref):
            with tarfile.open(a.ref) as t:
                t.extractall(tmp, filter="data")
            root = tmp
        ref = reference_frames(root)
        if not ref:
            raise SystemExit(f"error: no <style>/<iii>_fine.png frames in {a.ref}")
        index = new_style_index(a.new)
        worst, bad = float("inf"), 0
        for (style, i), path in sorted(ref.items()):
            new = os.path.join(a.new, f"style_{index.get(style, -1):05d}_fine_{i:05d}.png")
            if style not in index or not os.path.exists(new):
                print(f"{style} frame {i}: missing ({new})")
                bad += 1
                continue
            r, n = imageio.imread(path)[..., :3], imageio.imread(new)[..., :3]
            if r.shape != n.shape:
                print(f"{style} frame {i}: sizes differ, {r.shape} against {n.shape}")
                bad += 1
                continue
            db = psnr(r, n)
            worst = min(worst, db)
            bad += db < a.min_db
            print(f"{style} frame {i}: {db:.2f} dB")
    print(f"{len(ref)} frames, worst {worst:.2f} dB (target >= {a.min_db:g} dB): {'met' if not bad else 'NOT met'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
