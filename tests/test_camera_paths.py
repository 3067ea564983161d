"""dataset/camera_paths.py: slerp paths (against analytic cases and SciPy's Slerp) and the spiral."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from dataset.camera_paths import circle_path, frames_per_interval, interpolate_poses, spiral_path


def _rot_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _poses(rotations, centres):
    return np.stack([np.concatenate([R, np.asarray(c, float)[:, None]], 1)
                     for R, c in zip(rotations, centres)]).astype(np.float32)


@pytest.fixture(scope="module")
def fern8(fern_dir):
    from dataset.llff import load_llff
    return load_llff(fern_dir, factor=8)


def test_frames_per_interval_rule():
    assert [frames_per_interval(f) for f in (1, 3, 0.2, 0.05, 0.5, 2.4)] == [1, 3, 5, 20, 2, 2]
    with pytest.raises(ValueError, match="positive"):
        frames_per_interval(0)


def test_factor_one_returns_input_poses(fern8):
    np.testing.assert_array_equal(interpolate_poses(fern8.poses, 1, closed=True), fern8.poses)
    np.testing.assert_array_equal(interpolate_poses(fern8.poses, 1, closed=False), fern8.poses)


def test_frame_counts(fern8):
    assert interpolate_poses(fern8.poses, 3, closed=True).shape == (60, 3, 4)
    assert interpolate_poses(fern8.poses, 3, closed=False).shape == (19 * 3 + 1, 3, 4)
    assert interpolate_poses(fern8.poses, 0.2, closed=True).shape == (100, 3, 4)
    path = interpolate_poses(fern8.poses, 3)
    np.testing.assert_array_equal(path[::3], fern8.poses)  # key poses are kept exactly


def test_midpoint_is_half_angle_rotation_and_centre_midpoint():
    poses = _poses([np.eye(3), _rot_z(90)], [(0, 0, 0), (2, 4, -6)])
    path = interpolate_poses(poses, 2, closed=False)
    assert path.shape == (3, 3, 4)
    np.testing.assert_allclose(path[1, :, :3], _rot_z(45), atol=1e-6)
    np.testing.assert_allclose(path[1, :, 3], [1, 2, -3], atol=1e-6)
    np.testing.assert_allclose(path[2], poses[1], atol=0)


def test_shortest_arc():
    poses = _poses([_rot_z(170), _rot_z(-170)], [(0, 0, 0), (0, 0, 0)])
    mid = interpolate_poses(poses, 2, closed=False)[1, :, :3]
    np.testing.assert_allclose(mid, _rot_z(180), atol=1e-6)  # through 180, not through 0


def test_matches_scipy_slerp_and_rotations_stay_orthonormal():
    rots = Rotation.random(4, random_state=3)
    centres = np.random.default_rng(0).normal(size=(4, 3))
    poses = _poses(rots.as_matrix(), centres)
    k = 4
    path = interpolate_poses(poses, k, closed=True)
    assert path.shape == (16, 3, 4)
    R = path[:, :, :3].astype(np.float64)
    np.testing.assert_allclose(R.transpose(0, 2, 1) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    for a in range(4):
        b = (a + 1) % 4
        ref = Slerp([0, 1], Rotation.from_matrix(poses[[a, b], :, :3].astype(np.float64)))
        ts = np.arange(k) / k
        np.testing.assert_allclose(path[a * k:(a + 1) * k, :, :3], ref(ts).as_matrix(), atol=1e-5)
        lin = (1 - ts)[:, None] * poses[a, :, 3] + ts[:, None] * poses[b, :, 3]
        np.testing.assert_allclose(path[a * k:(a + 1) * k, :, 3], lin, atol=1e-5)


def test_bad_pose_shape():
    with pytest.raises(ValueError, match=r"\[N,3,4\]"):
        interpolate_poses(np.zeros((3, 4, 4)), 1)


def test_spiral_looks_at_the_scene(fern8):
    path = spiral_path(fern8.poses, fern8.bounds, n_frames=40, n_rots=2)
    assert path.shape == (40, 3, 4) and path.dtype == np.float32
    R = path[:, :, :3].astype(np.float64)
    np.testing.assert_allclose(R.transpose(0, 2, 1) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    # recentred scene: the average camera looks down -z; every spiral frame looks that way too
    mean_view = -fern8.poses[:, :, 2].mean(0)
    mean_view /= np.linalg.norm(mean_view)
    assert np.all(-R[:, :, 2] @ mean_view > 0.95)
    # and all frames aim at the same focus point (0, 0, -focus) of nerf-pytorch's formula
    close, far = fern8.bounds.min() * 0.9, fern8.bounds.max() * 5.0
    focus = 1.0 / (0.25 / close + 0.75 / far)
    to_focus = np.array([0, 0, -focus]) - path[:, :, 3]
    to_focus /= np.linalg.norm(to_focus, axis=1, keepdims=True)
    np.testing.assert_allclose(np.einsum("ij,ij->i", to_focus, -R[:, :, 2]), 1.0, atol=1e-5)
    # the radii: 90th percentile of |centres|; the first frame is at (rx, 0, 0) about the average pose
    rads = np.percentile(np.abs(fern8.poses[:, :, 3]), 90, 0)
    np.testing.assert_allclose(path[0, :, 3], [rads[0], 0, 0], atol=1e-5)


def test_circle_goes_round_a_spherified_capture_like_its_cameras(tmp_path):
    """On a spherified ring capture: frames at the cameras' mean height and RMS radius, looking
    at the origin, right-handed, and oriented like the training camera nearest to each."""
    from dataset.llff import load_llff
    from tests.synthetic_scene import write_ring_capture
    write_ring_capture(str(tmp_path), n=12)
    scene = load_llff(str(tmp_path), factor=1, llffhold=0, spherify=True)
    path = circle_path(scene.poses, 48).astype(np.float64)
    assert path.shape == (48, 3, 4)
    c = scene.poses[:, :, 3].astype(np.float64)
    np.testing.assert_allclose(path[:, 2, 3], c[:, 2].mean(), atol=1e-6)
    np.testing.assert_allclose(np.sum(path[:, :, 3] ** 2, 1), np.mean(np.sum(c ** 2, 1)), rtol=1e-5)
    R = path[:, :, :3]
    np.testing.assert_allclose(R.transpose(0, 2, 1) @ R, np.tile(np.eye(3), (48, 1, 1)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-6)
    back = R[:, :, 2]
    np.testing.assert_allclose(back, path[:, :, 3] / np.linalg.norm(path[:, :, 3], axis=1, keepdims=True), atol=1e-6)
    for frame in path:
        nearest = scene.poses[np.argmin(np.linalg.norm(c - frame[:, 3], axis=1))].astype(np.float64)
        cos = (np.trace(nearest[:, :3].T @ frame[:, :3]) - 1) / 2
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))) < 20  # ring cameras are 30 degrees apart


def test_circle_needs_cameras_around_the_origin():
    poses = np.tile(np.eye(4)[:3], (3, 1, 1))
    poses[:, 2, 3] = 2.0  # all at one point of the z axis: no circle around it
    with pytest.raises(ValueError, match="needs cameras around the origin"):
        circle_path(poses)
