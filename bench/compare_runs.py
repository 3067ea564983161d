"""Two experiment folders made by two versions of the code from the same inputs and options:
how far apart is each thing they wrote? Checkpoints (every array, max abs difference), the
geometry and target caches (.npz/.npy), and the stylized novel-view frames (PSNR, through
compare_frames.py, which reads the frame layout of the code before the tidy-up).

    python bench/compare_runs.py REF_EXPDIR NEW_EXPDIR [--min_psnr 40]

Prints one line per file kind and a verdict; exit 1 when a frame is under --min_psnr, a
checkpoint or cache differs by more than --atol, or nothing comparable was found. Used by
bench/tidycheck.sh (the code before the tidy-up against this tree).
"""
import argparse
import glob
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import compare_frames  # noqa: E402  (after the path)
from core import checkpoint  # noqa: E402


def arrays(obj, prefix=""):
    """{path: ndarray} of every numeric array in a nested dict/list (a checkpoint's contents)."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(arrays(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)) and obj and not isinstance(obj[0], (int, float)):
        for i, v in enumerate(obj):
            out.update(arrays(v, f"{prefix}/{i}"))
    else:
        arr = np.asarray(obj) if isinstance(obj, (np.ndarray, list, tuple, int, float)) else None
        if arr is not None and arr.dtype.kind in "fiu":
            out[prefix] = arr
    return out


def max_diff(a, b):
    """(largest |a-b| over the arrays both hold with one shape, names in one only or shaped apart)."""
    common = sorted(set(a) & set(b))
    apart = sorted(set(a) ^ set(b)) + [k for k in common if a[k].shape != b[k].shape]
    diffs = [float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max(initial=0.0))
             for k in common if a[k].shape == b[k].shape]
    return max(diffs, default=0.0), apart


def load_arrays(path):
    if path.endswith(".npz"):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    if path.endswith(".npy"):
        return {"": np.load(path)}
    return arrays(checkpoint.load(path))


def compare(ref, new, atol=0.0, min_psnr=40.0):
    """[(kind, relative path, figure, ok)] for every file both folders hold."""
    import imageio.v2 as imageio
    rows = []
    kinds = [("checkpoint", "*.pkl"), ("cache", "geometry/*.npz"), ("cache", "targets/*.npy"),
             ("cache", "*.npz")]
    for kind, pattern in kinds:
        for path in sorted(glob.glob(os.path.join(ref, pattern))):
            rel = os.path.relpath(path, ref)
            other = os.path.join(new, rel)
            if not os.path.exists(other):
                continue
            d, apart = max_diff(load_arrays(path), load_arrays(other))
            # a key only one version writes (a field added since, say) is listed, not failed
            rows.append((kind, rel + (f" (in one only or shaped apart: {', '.join(apart[:3])})" if apart else ""),
                         d, d <= atol))
    for ref_dir in sorted(glob.glob(os.path.join(ref, "render_valid_*"))):
        # the code before the tidy-up wrote render_valid_style_<000step>, this tree render_valid_<step>
        step = os.path.basename(ref_dir).rsplit("_", 1)[-1]
        if not step.isdigit():
            continue
        new_dir = os.path.join(new, f"render_valid_{int(step)}")
        if not os.path.isfile(os.path.join(new_dir, "styles.txt")):
            continue
        index = compare_frames.new_style_index(new_dir)
        for (style, i), path in sorted(compare_frames.reference_frames(ref_dir).items()):
            other = os.path.join(new_dir, f"style_{index.get(style, -1):05d}_fine_{i:05d}.png")
            if style in index and os.path.exists(other):
                p = compare_frames.psnr(imageio.imread(path)[..., :3], imageio.imread(other)[..., :3])
                rows.append(("frame", f"{os.path.relpath(path, ref)} / {os.path.basename(other)}", p,
                             p >= min_psnr))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref")
    ap.add_argument("new")
    ap.add_argument("--atol", type=float, default=0.0, help="largest difference of a checkpoint or cache array")
    ap.add_argument("--min_psnr", type=float, default=40.0, help="smallest PSNR of a frame (dB)")
    a = ap.parse_args(argv)
    for d in (a.ref, a.new):
        if not os.path.isdir(d):
            print(f"compare_runs: {d}: no such experiment folder", file=sys.stderr)
            return 2
    rows = compare(a.ref, a.new, a.atol, a.min_psnr)
    if not rows:
        print(f"compare_runs: nothing comparable in {a.ref} and {a.new}")
        return 1
    for kind, rel, fig, ok in rows:
        shown = f"{fig:.2f} dB" if kind == "frame" else f"max |diff| {fig:.3g}"
        print(f"{kind:10s} {rel}: {shown}{'' if ok else '  <- NOT within the limit'}")
    frames = [r for r in rows if r[0] == "frame"]
    bad = [r for r in rows if not r[3]]
    worst = min((r[2] for r in frames), default=None)
    print(f"{len(rows)} files compared ({len(frames)} frames"
          + (f", worst {worst:.2f} dB" if worst is not None else "") + f"): "
          + ("all within the limits" if not bad else f"{len(bad)} NOT within the limits"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
