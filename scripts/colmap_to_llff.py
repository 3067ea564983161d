"""Make an LLFF scene folder from your own photos' COLMAP model: writes <scene>/poses_bounds.npy.

    # 1. COLMAP (e.g. `colmap automatic_reconstructor --workspace_path <scene> --image_path
    #    <scene>/images --single_camera 1`, then `colmap image_undistorter` for distorted lenses)
    # 2. python scripts/colmap_to_llff.py <scene>
    # 3. python run_stylenerf.py --config configs/fern.txt --datadir <scene> --expname <name>

The model is read from <scene>, <scene>/sparse/0 or <scene>/sparse (or --model), binary or text.
Every image in <scene>/images must be registered (one pose per image), as LLFF's loader expects.
Same result as LLFF's imgs2poses.py (dataset/colmap.py says how), without its dependencies.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset.colmap import ColmapError, colmap_to_poses_bounds  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scene", help="scene folder (with images/ and the COLMAP model)")
    ap.add_argument("--model", default=None, help="COLMAP model folder (default: found under the scene)")
    ap.add_argument("--force", action="store_true", help="replace an existing poses_bounds.npy")
    a = ap.parse_args(argv)
    out = os.path.join(a.scene, "poses_bounds.npy")
    try:
        if not os.path.isdir(a.scene):
            raise ColmapError(f"scene folder {a.scene} not found")
        if os.path.exists(out) and not a.force:
            raise ColmapError(f"{out} exists already; --force replaces it")
        arr, names = colmap_to_poses_bounds(a.scene, a.model, warn=lambda m: print(f"warning: {m}"))
    except (ColmapError, OSError) as e:
        print(f"colmap_to_llff: {e}", file=sys.stderr)
        return 2
    tmp = out + ".tmp.npy"
    np.save(tmp, arr)
    os.replace(tmp, out)  # atomic: no half-written file for the loader to choke on
    h, w, f = arr[0, 4], arr[0, 9], arr[0, 14]
    print(f"wrote {out}: {len(arr)} views ({names[0]} .. {names[-1]}), {w:.0f}x{h:.0f}, focal {f:.1f}, "
          f"depth bounds {arr[:, 15].min():.3g} .. {arr[:, 16].max():.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
