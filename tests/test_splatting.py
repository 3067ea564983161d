"""render/splatting.py against a loop-based NumPy splatter and exact synthetic planes."""
import jittor as jt
import numpy as np
import pytest

from render.splatting import consistency_loss, project_points, splat, warp_view
from tests.synthetic_scene import Plane, camera_dirs, pose, render, render_sequence


def reference_splat(points, c2w, H, W, focal, radius, near=1e-4):
    """Plain loops, float64: each point covers the pixel centres within `radius` of its
    projection (None: the nearest centre only); per pixel the smallest (depth, index) wins."""
    c2w = np.asarray(c2w, np.float64)
    best = np.full((H, W), np.inf)
    index = np.full((H, W), -1)
    for n, p in enumerate(np.asarray(points, np.float64)):
        x, y, z = np.linalg.solve(c2w[:, :3], p - c2w[:, 3])
        depth = -z
        if depth <= near:
            continue
        u, v = W / 2 + focal * x / depth, H / 2 - focal * y / depth
        for j in range(H):
            for i in range(W):
                if radius is None:
                    covered = (i == np.floor(u + 0.5)) and (j == np.floor(v + 0.5))
                else:
                    covered = (i - u) ** 2 + (j - v) ** 2 <= radius ** 2
                if covered and depth < best[j, i]:
                    best[j, i], index[j, i] = depth, n
    return index, best


def random_cloud(rng, n, c2w):
    """Points spread around the view of `c2w`, some behind it and some outside the image."""
    cam = np.stack([rng.uniform(-1.6, 1.6, n), rng.uniform(-1.2, 1.2, n), -rng.uniform(1.0, 4.0, n)], -1)
    cam[:8, 2] *= -1.0  # behind the camera
    c2w = np.asarray(c2w, np.float64)
    return (cam @ c2w[:, :3].T + c2w[:, 3]).astype(np.float32)


def test_project_points_round_trip_numpy_and_jittor():
    H, W, f = 12, 16, 9.0
    c2w = pose(0.3, -0.2, 0.5, yaw_deg=20.0)
    depth = np.linspace(0.5, 3.0, H * W).reshape(H, W)
    world = (camera_dirs(H, W, f) * depth[..., None]) @ c2w[:, :3].T + c2w[:, 3]
    world = world.reshape(-1, 3)
    j, i = np.mgrid[0:H, 0:W]
    u, v, z = project_points(world, c2w, H, W, f)
    np.testing.assert_allclose(u, i.ravel(), atol=1e-4)
    np.testing.assert_allclose(v, j.ravel(), atol=1e-4)
    np.testing.assert_allclose(z, depth.ravel(), rtol=1e-5)
    uj, vj, zj = project_points(jt.array(world.astype(np.float32)), jt.array(c2w.astype(np.float32)), H, W, f)
    np.testing.assert_allclose(uj.numpy(), u, atol=2e-4)
    np.testing.assert_allclose(vj.numpy(), v, atol=2e-4)
    np.testing.assert_allclose(zj.numpy(), z, rtol=1e-5)


@pytest.mark.parametrize("radius", [1.5, 0.7, None])
def test_splat_matches_loop_reference(radius):
    rng = np.random.default_rng(1)
    H, W, f = 14, 18, 10.0
    c2w = pose(0.1, 0.2, -0.3, yaw_deg=-15.0)
    pts = random_cloud(rng, 150, c2w)
    colors = rng.uniform(0, 1, (150, 3)).astype(np.float32)
    image, mask, depth, index = splat(pts, jt.array(colors), c2w, H, W, f, radius_px=radius)
    ref_index, ref_depth = reference_splat(pts, c2w, H, W, f, radius)
    assert (ref_index >= 0).sum() > 40 and (ref_index < 0).sum() > 10  # a non-trivial case
    np.testing.assert_array_equal(index.numpy(), ref_index)
    np.testing.assert_array_equal(mask.numpy(), ref_index >= 0)
    np.testing.assert_allclose(depth.numpy(), ref_depth.astype(np.float32), rtol=1e-5)
    expected = np.where((ref_index >= 0)[..., None], colors[np.maximum(ref_index, 0)], 0.0)
    np.testing.assert_array_equal(image.numpy(), expected)
    assert set(np.unique(index.numpy())) - {-1} <= set(range(8, 150))  # points behind: never


def test_nearer_point_wins_on_the_same_ray_and_ties_go_to_lower_index():
    H, W, f = 8, 8, 8.0
    ray = np.array([1.0 / f, -2.0 / f, -1.0])  # pixel (5, 6) of the identity camera
    for near_first in (True, False):
        pts = np.stack([2.0 * ray, 3.0 * ray] if near_first else [3.0 * ray, 2.0 * ray]).astype(np.float32)
        _, _, depth, index = splat(pts, np.eye(2, 3, dtype=np.float32), np.eye(3, 4), H, W, f, radius_px=0.5)
        assert index.numpy()[6, 5] == (0 if near_first else 1)
        assert abs(depth.numpy()[6, 5] - 2.0) < 1e-6
        assert (index.numpy() >= 0).sum() == 1
    pts = np.stack([2.0 * ray, 2.0 * ray]).astype(np.float32)
    _, _, _, index = splat(pts, np.eye(2, 3, dtype=np.float32), np.eye(3, 4), H, W, f, radius_px=0.5)
    assert index.numpy()[6, 5] == 0


def test_plane_seen_from_a_translated_camera_is_reproduced():
    # plane z = -2, focal 20: a sideways shift of 0.2 moves the image by exactly 2 pixels
    H, W, f = 20, 24, 20.0
    planes = [Plane(z=-2.0)]
    cam_a, cam_b = pose(), pose(tx=0.2)
    rgb_a, pts_a, _ = render(planes, cam_a, H, W, f)
    rgb_b, pts_b, _ = render(planes, cam_b, H, W, f)
    warped, mask, warped_pts = warp_view(rgb_a.astype(np.float32), pts_a.astype(np.float32), cam_b, H, W, f,
                                         radius_px=0.5)
    mask = mask.numpy()
    expected_mask = np.ones((H, W), bool)
    expected_mask[:, W - 2:] = False  # the strip camera A never saw
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_allclose(warped.numpy()[mask], rgb_b[mask], atol=1e-5)
    np.testing.assert_allclose(warped_pts.numpy()[mask], pts_b[mask], atol=1e-5)
    np.testing.assert_allclose(warped_pts.numpy()[:, :W - 2], pts_a[:, 2:], atol=1e-5)
    assert np.all(warped.numpy()[~mask] == 0)
    # the original's radius 1.5 also covers the pixel one step further into the strip
    _, mask15, _ = warp_view(rgb_a.astype(np.float32), pts_a.astype(np.float32), cam_b, H, W, f)
    expected_mask[:, W - 2] = True
    np.testing.assert_array_equal(mask15.numpy(), expected_mask)


def test_gradient_to_colors_counts_won_pixels():
    rng = np.random.default_rng(2)
    H, W, f = 10, 12, 8.0
    pts = random_cloud(rng, 60, np.eye(3, 4))
    colors = jt.array(rng.uniform(0, 1, (60, 3)).astype(np.float32))
    image, _, _, index = splat(pts, colors, np.eye(3, 4), H, W, f)
    grad = jt.grad(image.sum(), colors).numpy()
    idx = index.numpy().ravel()
    counts = np.bincount(idx[idx >= 0], minlength=60).astype(np.float32)
    assert counts.max() > 1
    np.testing.assert_array_equal(grad, np.repeat(counts[:, None], 3, 1))


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match="camera pose"):
        splat(np.zeros((3, 3), np.float32), np.zeros((3, 3), np.float32), np.eye(3), 4, 4, 4.0)
    with pytest.raises(ValueError, match="colors"):
        splat(np.zeros((3, 3), np.float32), np.zeros((2, 3), np.float32), np.eye(3, 4), 4, 4, 4.0)


def consistency_scene():
    # a pixel spans 0.025 / 0.0125 world units on the far / near plane: below geo_thresh 0.05,
    # so the radius-1.5 footprint's neighbours still pass the geometry test
    H, W, f = 16, 20, 16.0
    planes = [Plane(z=-0.4, phase=1.0, freq=10.0),
              Plane(z=-0.2, x_range=(-0.03, 0.04), y_range=(-0.04, 0.03), freq=10.0)]
    c2ws = [pose(), pose(tx=0.025), pose(tx=-0.05, ty=0.025)]  # whole-pixel shifts on both planes
    rgb, pts, c2ws = render_sequence(planes, c2ws, H, W, f)
    return rgb, pts, c2ws, (H, W, f)


def test_consistency_loss_is_zero_for_consistent_views():
    rgb, pts, c2ws, (H, W, f) = consistency_scene()
    loss = consistency_loss(jt.array(rgb), pts, c2ws, H, W, f, radius_px=0.5)
    assert loss.item() < 1e-10
    noisy = rgb + np.random.default_rng(3).normal(0, 0.1, rgb.shape).astype(np.float32)
    assert consistency_loss(jt.array(noisy), pts, c2ws, H, W, f, radius_px=0.5).item() > 5e-3


def test_consistency_loss_value_mask_and_gradient():
    rgb, pts, c2ws, (H, W, f) = consistency_scene()
    pts[2, :5] += np.float32(0.1)  # view 2's own surface disagrees there: geometry mask off
    stylized_np = np.random.default_rng(4).uniform(0, 1, rgb.shape).astype(np.float32)
    stylized = jt.array(stylized_np)
    loss = consistency_loss(stylized, pts, c2ws, H, W, f)
    grad = jt.grad(loss, stylized).numpy()

    terms, weights, warps = [], [], []
    for k in (1, 2):
        _, _, _, index = splat(pts[0].reshape(-1, 3), np.zeros((H * W, 1), np.float32), c2ws[k], H, W, f)
        idx = index.numpy()
        vis = idx >= 0
        warped = np.where(vis[..., None], stylized_np[0].reshape(-1, 3)[np.maximum(idx, 0)], 0)
        warped_pts = pts[0].reshape(-1, 3)[np.maximum(idx, 0)]
        geo = np.linalg.norm(warped_pts - pts[k], axis=-1) < 0.05
        weight = (vis & geo)[..., None].astype(np.float32)
        terms.append(weight * (stylized_np[k] - warped) ** 2)
        weights.append(weight)
        warps.append(warped)
    assert weights[1][:5].sum() == 0 and weights[1].sum() > 100 and weights[0].sum() > 100
    expected = np.mean(np.stack(terms))
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    numel = 2 * H * W * 3
    np.testing.assert_allclose(grad[2], 2 * weights[1] * (stylized_np[2] - warps[1]) / numel, atol=1e-9)
    assert np.abs(grad[0]).sum() > 0  # gradients reach the splatted view too
