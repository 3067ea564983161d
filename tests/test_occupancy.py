"""render/occupancy.py: the grid of an analytic density, its threshold and dilation, the box
around a scene's rays, the cache next to the checkpoint."""
import dataclasses
import math

import jittor as jt
import numpy as np
import pytest
from scipy import ndimage

from render.occupancy import (GridSettings, build_grid, cache_path, dilate, grid_key, load_grid, load_or_build,
                              scene_box, sigma_threshold)

LO, HI = np.full(3, -1.0, np.float32), np.full(3, 1.0, np.float32)


def sphere(radius=0.5, inside=50.0):
    """Raw density: `inside` within the sphere, -1 (empty after the ReLU) outside."""
    def density(pts):
        r = (pts ** 2).sum(-1).sqrt()
        return jt.ternary(r < radius, jt.full(r.shape, inside), jt.full(r.shape, -1.0))
    return density


def cell_corner_radii(n):
    """Nearest and farthest distance from the origin of each cell of an n^3 grid over [-1,1]^3."""
    edges = np.linspace(-1, 1, n + 1)
    lo, hi = edges[:-1], edges[1:]
    near = np.where(lo > 0, lo, np.where(hi < 0, -hi, 0.0))
    far = np.maximum(np.abs(lo), np.abs(hi))
    g = np.meshgrid(near, near, near, indexing="ij"), np.meshgrid(far, far, far, indexing="ij")
    return np.sqrt(sum(a ** 2 for a in g[0])), np.sqrt(sum(a ** 2 for a in g[1]))


def test_sphere_cells_inside_occupied_far_cells_empty():
    n = 16
    grid = build_grid([sphere()], LO, HI, 64, GridSettings(resolution=n, samples_per_cell=3, dilate=0))
    near, far = cell_corner_radii(n)
    occ = grid.occupied
    assert occ.shape == (n, n, n) and occ.dtype == bool
    assert occ[far < 0.5].all()        # wholly inside: every probe sees the density
    assert not occ[near >= 0.5].any()  # wholly outside: no probe can
    # cells the surface cuts: most are caught by their 3 probes, and the NumPy lookup agrees
    cut = (near < 0.5) & (far >= 0.5)
    assert 0.3 < occ[cut].mean() < 1.0
    pts = np.random.default_rng(0).uniform(-1.2, 1.2, (500, 3))
    looked = grid.lookup(pts)
    assert looked[np.abs(pts).max(-1) > 1.0].all()  # outside the box: occupied
    assert looked[np.linalg.norm(pts, axis=-1) < 0.5 - 2 * math.sqrt(3) / n].all()


def test_a_cell_is_empty_only_where_every_network_is():
    """The grid of two densities (a NeRF's coarse and fine MLPs) is the union of their grids."""
    def shifted(pts):
        return sphere(radius=0.3)(pts - jt.array(np.array([0.5, 0.0, 0.0], np.float32)))
    settings = GridSettings(resolution=10, samples_per_cell=2)
    both = build_grid([sphere(), shifted], LO, HI, 64, settings).occupied
    one, other = (build_grid([fn], LO, HI, 64, settings).occupied for fn in (sphere(), shifted))
    np.testing.assert_array_equal(both, one | other)
    assert (one & ~other).any() and (other & ~one).any()
    with pytest.raises(ValueError, match="no density"):
        build_grid([], LO, HI, 64, settings)


def test_dilation_keeps_thin_structure():
    """A shell a quarter of a cell thick, missed by half the probes (4 a cell, the default), is
    kept whole once dilated."""
    def shell(pts):
        r = (pts ** 2).sum(-1).sqrt()
        return jt.ternary((r - 0.6).abs() < 0.02, jt.full(r.shape, 100.0), jt.full(r.shape, -1.0))
    n = 12
    thin = build_grid([shell], LO, HI, 64, GridSettings(resolution=n, samples_per_cell=4, dilate=0))
    kept = build_grid([shell], LO, HI, 64, GridSettings(resolution=n, samples_per_cell=4, dilate=1))
    np.testing.assert_array_equal(kept.occupied,
                                  ndimage.binary_dilation(thin.occupied, np.ones((3, 3, 3), bool)))
    near, far = cell_corner_radii(n)
    on_shell = (near < 0.6) & (far > 0.6)
    assert thin.occupied[on_shell].mean() < 0.6  # the probes miss much of it...
    assert kept.occupied[on_shell].all()         # ...the dilated grid none
    rng = np.random.default_rng(1)
    occ = rng.random((7, 8, 9)) < 0.05
    for cells in (1, 2):
        np.testing.assert_array_equal(dilate(occ, cells), ndimage.binary_dilation(
            occ, np.ones((3, 3, 3), bool), iterations=cells))


def test_threshold_is_the_opacity_bound():
    """sigma_threshold: over the largest step (diagonal / (n - 1)) it gives opacity alpha;
    a constant density just below it leaves the grid empty, just above fills it."""
    thr = sigma_threshold(1e-4, LO, HI, 64)
    step = 2 * math.sqrt(3) / 63
    assert 1 - math.exp(-thr * step) == pytest.approx(1e-4, rel=1e-9)
    for scale, full in ((0.99, False), (1.01, True)):
        def const(pts, s=scale):
            return jt.full(tuple(pts.shape[:-1]), thr * s)
        grid = build_grid([const], LO, HI, 64, GridSettings(resolution=4, samples_per_cell=1))
        assert grid.occupied.all() == full and grid.occupied.any() == full
    with pytest.raises(ValueError, match="alpha"):
        build_grid([const], LO, HI, 64, GridSettings(alpha=0.0))
    with pytest.raises(ValueError, match="box"):
        build_grid([const], HI, LO, 64)


def test_scene_box_holds_every_ray_segment():
    from dataset.rays import image_rays
    from tests.synthetic_scene import pose
    poses = np.stack([pose(0.2 * k, -0.1 * k, 1.0 + 0.1 * k, yaw_deg=10 * k) for k in range(-2, 3)])[:, :3]
    hwf = (20, 30, 25.0)
    for ndc, near, far in ((True, 0.0, 1.0), (False, 0.5, 5.0)):
        lo, hi = scene_box(hwf, poses, near, far, ndc=ndc)
        for c2w in poses:
            ro, rd, _ = image_rays(20, 30, 25.0, c2w, ndc=ndc)
            for t in (near, 0.5 * (near + far), far):
                p = ro + t * rd
                assert (p >= lo).all() and (p <= hi).all(), (ndc, t)
        # tight: the box is the rays' own extent plus its 2% margin
        rays = [image_rays(20, 30, 25.0, c, ndc=ndc)[:2] for c in poses]
        ends = np.concatenate([o + t * d for o, d in rays for t in (near, far)])
        assert np.all(hi - ends.max(0) < 0.03 * (hi - lo)) and np.all(ends.min(0) - lo < 0.03 * (hi - lo))


def test_cache_reused_and_rebuilt(tmp_path):
    calls = []

    def counted(pts):
        calls.append(int(np.prod(pts.shape[:-1])))
        return sphere()(pts)

    settings = GridSettings(resolution=8, samples_per_cell=2)
    logs = []
    a = load_or_build(str(tmp_path), 500, [counted], LO, HI, 64, settings, log=logs.append)
    assert sum(calls) == 8 ** 3 * 2 and len(logs) == 1 and "occupancy_000500.npz" in logs[0]
    b = load_or_build(str(tmp_path), 500, [counted], LO, HI, 64, settings, log=logs.append)
    assert sum(calls) == 8 ** 3 * 2 and len(logs) == 1  # read back, nothing evaluated
    np.testing.assert_array_equal(a.occupied, b.occupied)
    np.testing.assert_array_equal(b.lo, LO)
    # another setting, sample count, box or step: built again
    for step, kw, n_samples, hi in ((500, {"samples_per_cell": 3}, 64, HI), (500, {}, 32, HI),
                                    (500, {}, 64, HI * 2), (600, {}, 64, HI)):
        before = len(calls)
        load_or_build(str(tmp_path), step, [counted], LO, hi, n_samples,
                      dataclasses.replace(settings, **kw), log=logs.append)
        assert len(calls) > before, (step, kw, n_samples)
    assert load_grid(cache_path(str(tmp_path), 600)).key == grid_key(600, LO, HI, 64, settings)
    # a damaged file is rebuilt, not an error
    open(cache_path(str(tmp_path), 500), "wb").write(b"not a grid")
    assert load_grid(cache_path(str(tmp_path), 500)) is None
    before = len(calls)
    c = load_or_build(str(tmp_path), 500, [counted], LO, HI, 64, settings, log=logs.append)
    assert len(calls) > before and c.occupied.sum() == a.occupied.sum()
