"""Camera paths for rendering: poses interpolated between given poses, spirals (forward-facing
scenes) and circles (spherified 360-degree scenes).

Poses are camera-to-world [3,4] (columns: right, up, back, centre; OpenGL convention,
the camera looks down -z), as `dataset.llff` returns them.  The small pose helpers
(`normalize`, `view_matrix`, `average_pose`) live here and are shared with the loader.
Pose maths is done in float64 (a few dozen 3x4 matrices) and returned as float32.
"""
import numpy as np


def normalize(v):
    """Unit vector along v [3]."""
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def view_matrix(z, up, pos):
    """Camera-to-world [3,4] whose back axis is z, whose up axis is close to `up`, centred at pos."""
    back = normalize(z)
    right = normalize(np.cross(up, back))
    up_exact = normalize(np.cross(back, right))
    return np.stack([right, up_exact, back, np.asarray(pos, np.float64)], 1)


def average_pose(poses):
    """nerf-pytorch's poses_avg: mean centre, summed back/up axes re-orthonormalised. [N,3,4] -> [3,4]."""
    poses = np.asarray(poses, np.float64)
    centre = poses[:, :3, 3].mean(0)
    back = normalize(poses[:, :3, 2].sum(0))
    up = poses[:, :3, 1].sum(0)
    return view_matrix(back, up, centre)


# ---------------------------------------------------------------- rotations / quaternions

def rotation_to_quaternion(R):
    """Rotation matrix [3,3] -> unit quaternion (w, x, y, z) [4] (Shepperd's method, stable)."""
    R = np.asarray(R, np.float64)
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    return q / np.linalg.norm(q)


def quaternion_to_rotation(q):
    """Unit quaternion (w, x, y, z) [4] -> rotation matrix [3,3]."""
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def slerp(q0, q1, t):
    """Spherical linear interpolation of unit quaternions along the shortest arc; t in [0,1]."""
    q0 = np.asarray(q0, np.float64)
    q1 = np.asarray(q1, np.float64)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # q and -q are the same rotation: take the shorter way round
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly equal: linear interpolation is exact enough and avoids 0/0
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(min(dot, 1.0))
    q = (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)
    return q / np.linalg.norm(q)


def frames_per_interval(factor):
    """Frames generated per pair of consecutive poses: round(1/factor) if factor < 1, else round(factor)."""
    factor = float(factor)
    if not np.isfinite(factor) or factor <= 0:
        raise ValueError(f"camera path factor must be a positive number, got {factor}")
    k = int(round(1.0 / factor)) if factor < 1 else int(round(factor))
    return max(k, 1)


def interpolate_poses(poses, factor, closed=True):
    """Poses between consecutive poses: slerp of rotations + linear interpolation of centres.

    poses: [N,3,4] camera-to-world.  factor: the original's gen_factor / valid_factor.
    Each interval (pose i -> pose i+1) gets k = round(1/factor) frames if factor < 1, else
    round(factor), at t = 0, 1/k, ..., (k-1)/k, so factor 1 reproduces the input poses exactly
    (the original's gen_factor=1) and fern's valid_factor=3 gives 3 frames per interval.
    closed=True adds the interval from the last pose back to the first: N*k frames (20 poses,
    factor 3 -> 60).  closed=False: (N-1)*k frames plus the last pose itself.
    Returns float32 [M,3,4].
    """
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (3, 4) or len(poses) == 0:
        raise ValueError(f"interpolate_poses expects poses of shape [N,3,4], got {poses.shape}")
    k = frames_per_interval(factor)
    n = len(poses)
    quats = [rotation_to_quaternion(p[:, :3]) for p in poses]
    pairs = [(i, (i + 1) % n) for i in range(n if closed else n - 1)]
    out = []
    for a, b in pairs:
        for step in range(k):
            t = step / k
            if step == 0:  # exact copy of the key pose (no round trip through quaternions)
                out.append(poses[a])
                continue
            R = quaternion_to_rotation(slerp(quats[a], quats[b], t))
            c = (1 - t) * poses[a, :, 3] + t * poses[b, :, 3]
            out.append(np.concatenate([R, c[:, None]], 1))
    if not closed:
        out.append(poses[-1])
    return np.stack(out).astype(np.float32)


def circle_path(poses, n_frames=120):
    """nerf-pytorch's path for spherified (360-degree) scenes: a horizontal circle at the
    cameras' mean height z, of radius sqrt(rms^2 - z^2) (rms: the cameras' RMS distance from
    the origin, 1 after --spherify), every frame looking at the origin with +z up.
    poses [N,3,4] in the scene frame. Returns float32 [n_frames,3,4]."""
    centres = np.asarray(poses, np.float64)[:, :3, 3]
    height = centres[:, 2].mean()
    radius_sq = np.mean(np.sum(centres ** 2, 1)) - height ** 2
    if radius_sq <= 1e-12:
        raise ValueError("the circle path needs cameras around the origin (a --spherify scene): "
                         "these sit on the z axis")
    radius = np.sqrt(radius_sq)
    frames = []
    for theta in np.linspace(0.0, 2.0 * np.pi, n_frames + 1)[:-1]:
        centre = np.array([radius * np.cos(theta), radius * np.sin(theta), height])
        frames.append(view_matrix(centre, [0.0, 0.0, 1.0], centre))
    return np.stack(frames).astype(np.float32)


def spiral_path(poses, bounds, n_frames=120, n_rots=2, zrate=0.5):
    """nerf-pytorch's render_path_spiral around the average pose of an LLFF scene.

    poses [N,3,4] and bounds [N,2] in the scene frame (as `load_llff` returns them).
    The focus depth is the harmonic-style mix of nerf-pytorch (close = 0.9 * min bound,
    far = 5 * max bound, dt = 0.75); the radii are the 90th percentile of |camera centres|
    per axis.  Every frame looks at the point `focus` in front of the average camera.
    Returns float32 [n_frames,3,4].
    """
    poses = np.asarray(poses, np.float64)
    bounds = np.asarray(bounds, np.float64)
    c2w = average_pose(poses)
    up = normalize(poses[:, :3, 1].sum(0))
    close_depth, inf_depth = bounds.min() * 0.9, bounds.max() * 5.0
    dt = 0.75
    focus = 1.0 / ((1.0 - dt) / close_depth + dt / inf_depth)
    rads = np.append(np.percentile(np.abs(poses[:, :3, 3]), 90, 0), 1.0)
    look_at = c2w @ np.array([0.0, 0.0, -focus, 1.0])
    frames = []
    for theta in np.linspace(0.0, 2.0 * np.pi * n_rots, n_frames + 1)[:-1]:
        centre = c2w @ (np.array([np.cos(theta), -np.sin(theta), -np.sin(theta * zrate), 1.0]) * rads)
        frames.append(view_matrix(centre - look_at, up, centre))
    return np.stack(frames).astype(np.float32)
