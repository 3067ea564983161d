"""dataset/rays.py: pinhole rays, NDC against the projective map it stands for, PixelRays batches."""
import tracemalloc

import numpy as np
import pytest

from dataset.rays import PixelRays, get_rays_np, image_rays, ndc_rays, ndc_rays_np, pixel_rays, scaled_hwf


def _rotation(axis, angle):
    """Rodrigues' formula (independent of the code under test)."""
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _pose(axis=(0.3, 1.0, 0.2), angle=0.2, centre=(0.1, -0.2, 0.3)):
    return np.concatenate([_rotation(axis, angle), np.asarray(centre)[:, None]], 1).astype(np.float32)


def test_rays_per_pixel_match_pinhole_model():
    H, W, f = 6, 8, 7.0
    c2w = _pose()
    rays_o, rays_d = get_rays_np(H, W, f, c2w)
    assert rays_o.shape == rays_d.shape == (H, W, 3) and rays_d.dtype == np.float32
    for (y, x) in [(0, 0), (5, 7), (2, 6)]:
        cam = np.array([(x - W / 2) / f, -(y - H / 2) / f, -1.0])
        np.testing.assert_allclose(rays_d[y, x], c2w[:, :3].astype(np.float64) @ cam, atol=1e-6)
        np.testing.assert_allclose(rays_o[y, x], c2w[:, 3], atol=1e-7)


def test_principal_point_ray_looks_down_minus_z():
    H, W, f = 6, 8, 7.0
    c2w = _pose()
    _, rays_d = get_rays_np(H, W, f, c2w)
    np.testing.assert_allclose(rays_d[H // 2, W // 2], -c2w[:, 2], atol=1e-6)
    # the identity camera looks exactly along -z
    _, d0 = get_rays_np(H, W, f, np.eye(3, 4, dtype=np.float32))
    np.testing.assert_allclose(d0[H // 2, W // 2], [0, 0, -1], atol=0)


def _project_ndc(p, H, W, f, near):
    """NDC of 3D points p [...,3] (the perspective map NeRF's NDC rays stand for), float64."""
    return np.stack([-2 * f / W * p[..., 0] / p[..., 2], -2 * f / H * p[..., 1] / p[..., 2],
                     1 + 2 * near / p[..., 2]], -1)


def test_ndc_rays_pass_through_projected_points():
    H, W, f, near = 30, 40, 35.0, 1.0
    rays_o, rays_d = get_rays_np(H, W, f, _pose(centre=(0.1, -0.2, 0.3)))
    o = rays_o.reshape(-1, 3).astype(np.float64)
    d = rays_d.reshape(-1, 3).astype(np.float64)
    o_ndc, d_ndc = ndc_rays_np(H, W, f, near, rays_o.reshape(-1, 3), rays_d.reshape(-1, 3))
    assert o_ndc.dtype == np.float32 and d_ndc.shape == (H * W, 3)
    # origins lie on the NDC plane z = -1 (the near plane z = -near)
    np.testing.assert_allclose(o_ndc[:, 2], -1.0, atol=1e-5)
    # the shifted origin o + t0 d (on z = -near) projects onto o'
    t0 = (-near - o[:, 2]) / d[:, 2]
    np.testing.assert_allclose(o_ndc, _project_ndc(o + t0[:, None] * d, H, W, f, near), atol=1e-4)
    # points further along the ray project onto o' + t' d' with t' = 1 - z0 / z  in [0, 1)
    for s in (0.5, 3.0, 40.0):
        p = o + (t0 + s)[:, None] * d
        t_ndc = 1.0 - (-near) / p[:, 2]
        on_ray = o_ndc + t_ndc[:, None] * d_ndc
        np.testing.assert_allclose(on_ray, _project_ndc(p, H, W, f, near), atol=2e-4)
        assert np.all((t_ndc > 0) & (t_ndc < 1))
    # t' = 1 is infinitely far: o' + d' is the vanishing point of the direction
    vanish = np.stack([-2 * f / W * d[:, 0] / d[:, 2], -2 * f / H * d[:, 1] / d[:, 2], np.ones(len(d))], -1)
    np.testing.assert_allclose(o_ndc + d_ndc, vanish, atol=1e-4)


def test_ndc_jittor_matches_numpy():
    import jittor as jt
    H, W, f = 6, 8, 7.0
    rays_o, rays_d = get_rays_np(H, W, f, _pose())
    o_np, d_np = ndc_rays_np(H, W, f, 1.0, rays_o, rays_d)
    o_jt, d_jt = ndc_rays(H, W, f, 1.0, jt.array(rays_o), jt.array(rays_d))
    np.testing.assert_allclose(o_jt.numpy(), o_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_jt.numpy(), d_np, rtol=1e-5, atol=1e-6)


def test_scaled_hwf_rounds_the_size_down_and_scales_the_focal_length():
    assert scaled_hwf((378, 504, 407.5), 2) == (189, 252, 203.75)
    assert scaled_hwf((47, 63, 52.5), 4) == (11, 15, 13.125)
    assert scaled_hwf((47.0, 63.0, 52.5), 1) == (47, 63, 52.5)
    # the rays of the scaled camera look where the full-size camera's do, at the same image points
    H, W, f = scaled_hwf((40, 60, 50.0), 2)
    _, small = get_rays_np(H, W, f, np.eye(4)[:3])
    _, full = get_rays_np(40, 60, 50.0, np.eye(4)[:3])
    np.testing.assert_allclose(small, full[::2, ::2], atol=1e-6)


def test_image_rays_flatten_and_viewdirs_from_original_rays():
    H, W, f = 6, 8, 7.0
    c2w = _pose()
    rays_o, rays_d, viewdirs = image_rays(H, W, f, c2w, ndc=True)
    _, d = get_rays_np(H, W, f, c2w)
    d = d.reshape(-1, 3)
    np.testing.assert_allclose(viewdirs, d / np.linalg.norm(d, axis=1, keepdims=True), atol=1e-6)
    o_ndc, d_ndc = ndc_rays_np(H, W, f, 1.0, *[a.reshape(-1, 3) for a in get_rays_np(H, W, f, c2w)])
    np.testing.assert_array_equal(rays_o, o_ndc)
    np.testing.assert_array_equal(rays_d, d_ndc)
    o_raw, d_raw, _ = image_rays(H, W, f, c2w, ndc=False)
    np.testing.assert_array_equal(d_raw, d)
    assert o_raw.shape == (H * W, 3) and np.allclose(o_raw, c2w[:, 3])


@pytest.fixture
def small_views():
    rng = np.random.default_rng(1)
    images = rng.random((3, 5, 7, 3), dtype=np.float32)
    poses = np.stack([_pose(angle=a, centre=(a, 0, 0)) for a in (0.0, 0.1, 0.2)])
    return images, poses, 6.0


def test_pixel_rays_batch_matches_images_and_rays(small_views):
    images, poses, f = small_views
    pr = PixelRays.from_views(images, poses, f, view_ids=[2, 0], ndc=True)
    assert len(pr) == 2 * 5 * 7
    assert all(a.dtype == np.float32 and a.shape == (70, 3) for a in (pr.rays_o, pr.rays_d, pr.viewdirs, pr.rgb))
    batch = pr.sample(64, np.random.default_rng(0))
    assert set(batch) == {"rays_o", "rays_d", "viewdirs", "rgb", "index"}
    views, ys, xs = pr.locate(batch["index"])
    assert set(views.tolist()) <= {0, 2}
    np.testing.assert_array_equal(batch["rgb"], images[views, ys, xs])
    for k in range(len(views)):
        o, d, vd = image_rays(5, 7, f, poses[views[k]], ndc=True)
        pix = ys[k] * 7 + xs[k]
        np.testing.assert_array_equal(batch["rays_o"][k], o[pix])
        np.testing.assert_array_equal(batch["rays_d"][k], d[pix])
        np.testing.assert_array_equal(batch["viewdirs"][k], vd[pix])
    # the flat layout: view-major, then rows, then columns
    np.testing.assert_array_equal(pr.rgb[35 + 2 * 7 + 3], images[0, 2, 3])


def test_pixel_rays_sampling_uniform_and_in_range(small_views):
    images, poses, f = small_views
    pr = PixelRays.from_views(images, poses, f, view_ids=[0, 1, 2], ndc=False)
    n = len(pr)
    counts = np.zeros(n)
    rng = np.random.default_rng(123)
    for _ in range(100):
        idx = pr.sample(1000, rng)["index"]
        assert idx.min() >= 0 and idx.max() < n
        counts += np.bincount(idx, minlength=n)
    expected = counts.sum() / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = n - 1
    assert chi2 < dof + 6 * np.sqrt(2 * dof), chi2  # loose: a biased sampler gives thousands
    assert counts.min() > 0
    # legacy RandomState works too
    legacy = pr.sample(10, np.random.RandomState(0))["index"]
    assert legacy.dtype == np.int64 and legacy.max() < n


def test_pixel_rays_fern_memory(fern_dir):
    from dataset.llff import load_llff
    scene = load_llff(fern_dir, factor=4)
    tracemalloc.start()
    try:
        pr = PixelRays.from_scene(scene, scene.i_train, ndc=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n = 17 * 756 * 1008
    assert len(pr) == n
    assert peak < 4 * n * 3 * 4 * 1.15  # the four float32 arrays plus a little per-view scratch
    batch = pr.sample(256, np.random.default_rng(0))
    views, ys, xs = pr.locate(batch["index"])
    np.testing.assert_array_equal(batch["rgb"], scene.images[views, ys, xs])
    assert not set(views.tolist()) & {0, 8, 16}
    np.testing.assert_allclose(pr.rays_o[:, 2], -1.0, atol=1e-4)  # NDC origins on the near plane


@pytest.mark.parametrize("ndc", [True, False])
def test_pixel_rays_match_image_rays(ndc):
    from tests.test_style_stage import FOCAL, H, W, random_poses
    rng = np.random.default_rng(3)
    poses = random_poses(4)  # tests/test_style_stage.py's
    v = rng.integers(4, size=50)
    r, c = rng.integers(H, size=50), rng.integers(W, size=50)
    o, d = pixel_rays(H, W, FOCAL, poses[v], r.astype(np.float64), c.astype(np.float64), ndc=ndc)
    assert o.shape == (50, 3) and d.shape == (50, 3) and o.dtype == np.float32 and d.dtype == np.float32
    for k in range(50):
        ro, rd, _ = image_rays(H, W, FOCAL, poses[v[k]], ndc=ndc)
        np.testing.assert_allclose(o[k], ro[r[k] * W + c[k]], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(d[k], rd[r[k] * W + c[k]], rtol=1e-5, atol=1e-6)
