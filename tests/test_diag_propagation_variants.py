"""bench/diag/diag_propagation_variants.py: the surface points rebuilt from an exported depth map
are the points of each pixel's ray at that depth (dataset/rays.py's convention), against
hand-made cameras over a plane."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "diag"))
from diag_propagation_variants import load_inputs  # noqa: E402


def test_points_rebuilt_from_depth_lie_on_the_plane_the_depth_came_from(tmp_path):
    h, w, f = 6, 8, 10.0
    c2ws = np.zeros((2, 3, 4))
    c2ws[0, :, :3] = np.eye(3)
    c2ws[1, :, :3] = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]  # turned 90 degrees about y: looks down -x
    c2ws[1, :, 3] = [1.0, 2.0, 3.0]
    # camera 0 over the plane z = -5 (depth 5 everywhere); camera 1 over x = 1 - 4 (depth 4)
    depth = np.stack([np.full((h, w), 5.0), np.full((h, w), 4.0)])
    np.savez_compressed(tmp_path / "depth.npz", depth=depth.astype(np.float16), c2ws=c2ws, focal=f, h=h, w=w)
    points, cams, focal, hh, ww = load_inputs(str(tmp_path))
    assert points.shape == (2, h, w, 3) and (hh, ww, focal) == (h, w, f)
    np.testing.assert_allclose(points[0][..., 2], -5.0, atol=1e-5)
    np.testing.assert_allclose(points[1][..., 0], 1.0 - 4.0, atol=1e-5)
    # pixel (row j, column i) of camera 0 at x = 5 (i - w/2)/f, y = -5 (j - h/2)/f
    np.testing.assert_allclose(points[0][1, 2, :2], [5 * (2 - w / 2) / f, -5 * (1 - h / 2) / f], atol=1e-5)
    # and camera 1's centre row and column sit on its axis: (1 - 4, 2, 3)
    np.testing.assert_allclose(points[1][h // 2, w // 2], [-3.0, 2.0, 3.0], atol=1e-5)
