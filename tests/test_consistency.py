"""evaluation/consistency.py on exact synthetic scenes (textured planes, known cameras)."""
import numpy as np
import pytest

from evaluation.consistency import (ConsistencyInputError, backward_warp, carried_sequence, consistency_error,
                                    warp_frame)
from tests.synthetic_scene import Plane, pose, render, render_sequence

H, W, F = 24, 32, 24.0
# far plane z = -4, near plane z = -2: a sideways step of 1/6 moves them by 1 and 2 pixels
FAR = Plane(z=-4.0, phase=0.5, freq=0.4)
NEAR = Plane(z=-2.0, x_range=(-0.4, 0.3), y_range=(-0.5, 0.2), freq=0.4)


def visible_in(planes, src_c2w, dst_points, dst_hit):
    """Analytic expectation: dst pixels whose own surface point is what the source camera sees
    at the pixel it projects to (inside the source image)."""
    src_rgb, src_pts, _ = render(planes, src_c2w, H, W, F)
    c2w = np.asarray(src_c2w, np.float64)
    cam = (dst_points.reshape(-1, 3) - c2w[:, 3]) @ c2w[:, :3]  # rotations here are orthonormal
    u = np.round(W / 2 + F * cam[:, 0] / -cam[:, 2]).astype(int)
    v = np.round(H / 2 - F * cam[:, 1] / -cam[:, 2]).astype(int)
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H)
    same = np.zeros(H * W, bool)
    seen = src_pts[np.clip(v, 0, H - 1), np.clip(u, 0, W - 1)]
    same[inside] = np.linalg.norm(seen[inside] - dst_points.reshape(-1, 3)[inside], axis=-1) < 1e-4
    return (same & dst_hit.ravel()).reshape(H, W)


def test_warp_mask_is_exactly_the_jointly_visible_part():
    planes = [FAR, NEAR]
    src, dst = pose(), pose(tx=3 / 6, ty=-1 / 6)  # whole-pixel motion on both planes
    src_rgb, src_pts, _ = render(planes, src, H, W, F)
    dst_rgb, dst_pts, dst_hit = render(planes, dst, H, W, F)
    warped, mask = warp_frame(src_rgb, src_pts, dst, H, W, F, dst_points=dst_pts)
    expected = visible_in(planes, src, dst_pts, dst_hit)
    assert 0.5 * H * W < expected.sum() < H * W - 60  # out-of-view strips and disocclusions exist
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_allclose(warped[mask], dst_rgb[mask], atol=1e-5)
    assert not mask[:, W - 3:].any()  # the strip the source never saw


def test_destination_points_exclude_surfaces_the_source_cannot_see():
    # the near plane lies left of the source's view and enters the destination's view: the
    # source's far-plane points land there and win the z-buffer; only dst_points can reject them
    near_hidden = Plane(z=-2.0, x_range=(-1.9, -1.4), y_range=(-0.5, 0.5), phase=2.0, freq=0.4)
    planes = [FAR, near_hidden]
    src, dst = pose(), pose(tx=-1.0)  # far plane: 6 pixels, near plane: 12 pixels
    src_rgb, src_pts, _ = render(planes, src, H, W, F)
    dst_rgb, dst_pts, _ = render(planes, dst, H, W, F)
    on_near = np.abs(dst_pts[..., 2] + 2.0) < 1e-6
    assert on_near.sum() > 30 and np.all(np.abs(src_pts[..., 2] + 4.0) < 1e-6)
    warped, received = warp_frame(src_rgb, src_pts, dst, H, W, F)
    assert received[on_near].all()  # without the test the far plane's colours would count there
    _, mask = warp_frame(src_rgb, src_pts, dst, H, W, F, dst_points=dst_pts)
    assert not mask[on_near].any()
    np.testing.assert_array_equal(mask, received & ~on_near)
    np.testing.assert_allclose(warped[mask], dst_rgb[mask], atol=1e-5)


def general_sequence(T=6):
    """Sub-pixel motion with some rotation: warps land off pixel centres."""
    c2ws = [pose(tx=0.07 * t, ty=-0.03 * t, tz=0.02 * t, yaw_deg=1.5 * t) for t in range(T)]
    return render_sequence([FAR, NEAR], c2ws, H, W, F)


def test_consistent_sequence_has_near_zero_error():
    frames, points, c2ws = general_sequence()
    short = consistency_error(frames, points, c2ws, H, W, F, k=1)
    long = consistency_error(frames, points, c2ws, H, W, F, k=3)
    assert len(short["per_pair"]) == 5 and len(long["per_pair"]) == 3
    assert [(p["src"], p["dst"]) for p in long["per_pair"]] == [(0, 3), (1, 4), (2, 5)]
    for result in (short, long):
        assert result["mean"] < 1e-2  # nearest-pixel rounding of a smooth texture only
        assert all(p["coverage"] > 0.5 for p in result["per_pair"])
    exact = render_sequence([FAR, NEAR], [pose(tx=t / 6) for t in range(4)], H, W, F)
    assert consistency_error(*exact, H, W, F)["mean"] < 1e-5  # whole-pixel motion: exact


def test_independent_noise_gives_noise_std_times_sqrt2():
    frames, points, c2ws = general_sequence()
    sigma = 0.05
    noisy = frames + np.random.default_rng(0).normal(0, sigma, frames.shape).astype(np.float32)
    result = consistency_error(noisy, points, c2ws, H, W, F, k=1)
    clean = consistency_error(frames, points, c2ws, H, W, F, k=1)["mean"]
    expected = np.sqrt(2 * sigma ** 2 + clean ** 2)
    assert result["mean"] == pytest.approx(expected, rel=0.1)
    assert result["std"] < 0.2 * result["mean"]


def test_backward_warp_reads_the_source_where_the_destination_sees_the_same_surface():
    planes = [FAR, NEAR]
    src, dst = pose(), pose(tx=3 / 6, ty=-1 / 6)  # whole-pixel motion on both planes
    src_rgb, src_pts, _ = render(planes, src, H, W, F)
    dst_rgb, dst_pts, dst_hit = render(planes, dst, H, W, F)
    warped, mask = backward_warp(src_rgb, src_pts, src, dst_pts, dst, H, W, F)
    expected = visible_in(planes, src, dst_pts, dst_hit)
    # whole-pixel motion reads exactly one source pixel: the same pixels as the forward warp
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_allclose(warped[mask], dst_rgb[mask], atol=1e-5)
    assert (warped[~mask] == 0).all()


def test_backward_warp_rejects_surfaces_the_source_cannot_see():
    near_hidden = Plane(z=-2.0, x_range=(-1.9, -1.4), y_range=(-0.5, 0.5), phase=2.0, freq=0.4)
    src, dst = pose(), pose(tx=-1.0)
    src_rgb, src_pts, _ = render([FAR, near_hidden], src, H, W, F)
    dst_rgb, dst_pts, _ = render([FAR, near_hidden], dst, H, W, F)
    on_near = np.abs(dst_pts[..., 2] + 2.0) < 1e-6
    warped, mask = backward_warp(src_rgb, src_pts, src, dst_pts, dst, H, W, F)
    assert on_near.sum() > 30 and not mask[on_near].any() and mask.sum() > 0.5 * H * W
    np.testing.assert_allclose(warped[mask], dst_rgb[mask], atol=1e-5)


def test_backward_warp_leaves_a_far_smaller_floor_on_consistent_fine_detail():
    # a texture with a period of about 5 pixels under sub-pixel motion: every frame is exact, so
    # any error is the warp's own resampling; the forward splat's half-pixel rounding shows it
    fine = [Plane(z=-4.0, phase=0.5, freq=5.0)]
    c2ws = [pose(tx=0.043 * t, ty=-0.029 * t, yaw_deg=0.7 * t) for t in range(6)]
    frames, points, c2ws = render_sequence(fine, c2ws, H, W, F)
    fwd = consistency_error(frames, points, c2ws, H, W, F, k=1, warp="forward")["mean"]
    bwd = consistency_error(frames, points, c2ws, H, W, F, k=1, warp="backward")["mean"]
    assert fwd > 0.03
    assert bwd < 0.45 * fwd
    # a texture linear in the world position is read exactly by bilinear interpolation
    flat = np.clip(0.5 + 0.05 * points[..., :1] + 0.03 * points[..., 1:2], 0, 1).repeat(3, -1)
    assert consistency_error(flat, points, c2ws, H, W, F, k=2, warp="backward")["mean"] < 1e-4


def test_backward_warp_still_sees_flicker():
    frames, points, c2ws = general_sequence()
    sigma = 0.05
    noisy = frames + np.random.default_rng(0).normal(0, sigma, frames.shape).astype(np.float32)
    # the bilinear read averages the source's noise down by at most 4x in variance: the error
    # stays between sigma * sqrt(1.25) and sigma * sqrt(2)
    result = consistency_error(noisy, points, c2ws, H, W, F, k=1, warp="backward")["mean"]
    assert sigma * np.sqrt(1.25) * 0.95 < result < sigma * np.sqrt(2) * 1.05


def test_bad_inputs_raise():
    frames, points, c2ws = general_sequence(T=3)
    with pytest.raises(ConsistencyInputError, match="frame gap"):
        consistency_error(frames, points, c2ws, H, W, F, k=3)
    with pytest.raises(ConsistencyInputError, match="same T"):
        consistency_error(frames, points[:2], c2ws, H, W, F)
    with pytest.raises(ConsistencyInputError, match="dst_points"):
        warp_frame(frames[0], points[0], c2ws[1], H, W, F, dst_points=points[1, :5])
    with pytest.raises(ConsistencyInputError, match="warp must be one of forward, backward"):
        consistency_error(frames, points, c2ws, H, W, F, warp="nearest")
    with pytest.raises(ConsistencyInputError, match="dst_points"):
        backward_warp(frames[0], points[0], c2ws[0], points[1, :5], c2ws[1], H, W, F)
    with pytest.raises(ConsistencyInputError, match="ref must be in 0..2"):
        carried_sequence(frames, points, c2ws, H, W, F, ref=3)
    with pytest.raises(ConsistencyInputError, match="same T"):
        carried_sequence(frames, points[:2], c2ws, H, W, F)


def test_carried_sequence_is_the_reference_frame_projected_onto_every_camera():
    planes = [FAR, NEAR]
    c2ws = [pose(tx=t / 6, ty=-t / 6) for t in range(5)]  # whole-pixel motion: exact reads
    frames, points, c2ws = render_sequence(planes, c2ws, H, W, F)
    marked = frames.copy()
    marked[:, :, :, 2] = np.arange(5)[:, None, None] / 10  # each frame's own blue: where it comes from
    carried, coverage = carried_sequence(marked, points, c2ws, H, W, F)
    np.testing.assert_array_equal(carried[2], marked[2])  # the middle frame is the reference
    hidden = []
    assert coverage[2] == 1.0
    for t in (0, 1, 3, 4):
        _, seen = backward_warp(marked[2], points[2], c2ws[2], points[t], c2ws[t], H, W, F)  # same surface
        from_ref = np.isclose(carried[t][..., 2], 0.2)
        assert coverage[t] == pytest.approx(from_ref.mean()) and 0.5 < coverage[t] < 1.0
        # where the reference sees the surface, the surface's own colour (and the reference's blue)
        np.testing.assert_allclose(carried[t][seen][:, :2], frames[t][seen][:, :2], atol=1e-5)
        assert from_ref[seen].all()
        # where it does not (the far plane behind the near one, seen from the reference) the
        # occluder's colour, the same from every frame: a colour of the 3D point alone
        hidden.append((from_ref & ~seen).sum())
        np.testing.assert_array_equal(carried[t][~from_ref], marked[t][~from_ref])  # outside the reference
    assert coverage[0] < coverage[1]  # farther from the reference, less of it in view
    assert max(hidden) > 5  # surfaces the reference does not see are read too
    exact = consistency_error(carried, points, c2ws, H, W, F, k=2, warp="backward")
    assert exact["mean"] < 1e-5  # flicker-free: whole-pixel reads of one image


def test_carried_sequence_with_an_occlusion_test_carries_only_what_the_reference_sees():
    planes = [FAR, NEAR]
    c2ws = [pose(tx=t / 6, ty=-t / 6) for t in range(5)]
    frames, points, c2ws = render_sequence(planes, c2ws, H, W, F)
    marked = frames.copy()
    marked[:, :, :, 2] = np.arange(5)[:, None, None] / 10
    carried, coverage = carried_sequence(marked, points, c2ws, H, W, F, occlusion_tol=0.03)
    for t in (0, 1, 3, 4):
        _, seen = backward_warp(marked[2], points[2], c2ws[2], points[t], c2ws[t], H, W, F)  # tol 0.03
        from_ref = np.isclose(carried[t][..., 2], 0.2)
        np.testing.assert_array_equal(from_ref, seen)  # exactly the points the reference sees
        assert coverage[t] == pytest.approx(seen.mean())
        np.testing.assert_array_equal(carried[t][~seen], marked[t][~seen])  # the rest: their own colour
    # without the test the surfaces the reference does not see are carried too: more coverage
    assert (coverage[[0, 1, 3, 4]] < carried_sequence(marked, points, c2ws, H, W, F)[1][[0, 1, 3, 4]]).all()


def test_carried_noise_is_consistent_where_per_frame_noise_flickers():
    # per-frame noise (a per-frame stylization's flicker) is charged as flicker; the same noise
    # carried from one frame keeps its texture and leaves about the warp's own floor
    frames, points, c2ws = general_sequence()
    noisy = frames + np.random.default_rng(1).normal(0, 0.05, frames.shape).astype(np.float32)
    carried, coverage = carried_sequence(noisy, points, c2ws, H, W, F, ref=0)
    flicker = consistency_error(noisy, points, c2ws, H, W, F, k=1, warp="backward")["mean"]
    kept = consistency_error(carried, points, c2ws, H, W, F, k=1, warp="backward")["mean"]
    assert coverage.min() > 0.5 and flicker > 0.05
    assert kept < 0.5 * flicker
    assert np.std(carried[3] - frames[3]) > 0.02  # the texture is still there (bilinear reads smooth it)
