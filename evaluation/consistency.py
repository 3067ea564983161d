"""Multi-view consistency: warp one rendered view onto another with known geometry, masked RMSE.

The literature's protocol (short range: adjacent frames, long range: frames k apart): warp frame
t onto frame t+k and measure the colour difference over the pixels both views see; lower is more
consistent. The original release never published its metric code; this is the RMSE variant.

Geometry comes as WORLD points per pixel ([T,H,W,3], the NeRF's expected-depth point map in
world coordinates, see pipeline/geometry.py) rather than depth, which avoids any ambiguity
between z-depth, ray distance and NDC depth.

Warping is a forward splat (render/splatting.py) of every source pixel, at its world point, into
the destination camera: each point lands on the destination pixel whose centre is nearest
(radius None), the nearest point wins where several land on one pixel. A destination pixel
counts when it received a source point AND (with the destination's own points) the received
point's camera depth agrees with the destination's own depth within `occlusion_tol` (relative):
this removes parts the destination sees but the source does not (occluded in the source,
outside its view, or disoccluded), which a z-buffer over the source points alone cannot know.
Pixels the splat leaves empty (holes where the destination is magnified) are not counted.
"""
import jittor as jt
import numpy as np

from evaluation.metrics import rmse
from render.splatting import project_points, warp_view


class ConsistencyInputError(ValueError):
    """Frames, point maps or cameras that do not fit together."""


def warp_frame(src_img, src_points, dst_c2w, H, W, focal, dst_points=None, occlusion_tol=0.03,
               radius_px=None):
    """Forward-warp a source frame into a destination camera.

    src_img [H,W,3] in [0,1], src_points [H,W,3] world, dst_c2w [3,4]; dst_points [H,W,3] world
    (the destination's own surface points) enables the occlusion test.
    Returns numpy (warped [H,W,3] float32, 0 where empty; mask [H,W] bool of valid pixels).
    """
    src_img = np.asarray(src_img, np.float32)
    src_points = np.asarray(src_points, np.float32)
    for name, a in (("src_img", src_img), ("src_points", src_points)):
        if a.ndim != 3 or a.shape[:2] != (H, W):
            raise ConsistencyInputError(f"warp_frame: {name} must be [H,W,C] = [{H},{W},C], got {a.shape}")
    warped, received, warped_points = warp_view(jt.array(src_img), jt.array(src_points), dst_c2w,
                                                H, W, focal, radius_px=radius_px)
    mask = received.numpy()
    if dst_points is not None:
        dst_points = np.asarray(dst_points, np.float32)
        if dst_points.shape != (H, W, 3):
            raise ConsistencyInputError(f"warp_frame: dst_points must be [{H},{W},3], got {dst_points.shape}")
        _, _, own_depth = project_points(dst_points.reshape(-1, 3), dst_c2w, H, W, focal)
        _, _, got_depth = project_points(warped_points.numpy().reshape(-1, 3), dst_c2w, H, W, focal)
        own_depth, got_depth = own_depth.reshape(H, W), got_depth.reshape(H, W)
        agree = (own_depth > 0) & (np.abs(got_depth - own_depth) <= occlusion_tol * own_depth)
        mask &= agree
    return warped.numpy(), mask


def consistency_error(frames, points, c2ws, H, W, focal, k=1, occlusion_tol=0.03, radius_px=None):
    """Masked RMSE between frame t+k and frame t warped onto it, for every t.

    frames [T,H,W,3] in [0,1], points [T,H,W,3] world, c2ws [T,3,4]; k = 1 for short range,
    larger (e.g. 7) for long range.
    Returns {"mean", "std"} over the pairs with any valid pixel (nan if none) and "per_pair":
    a list of {"src", "dst", "rmse", "coverage"} (coverage = fraction of valid destination pixels;
    rmse is nan where it is 0).
    """
    frames = np.asarray(frames, np.float32)
    points = np.asarray(points, np.float32)
    c2ws = np.asarray(c2ws, np.float32)
    T = frames.shape[0]
    if frames.shape != (T, H, W, 3) or points.shape != (T, H, W, 3) or c2ws.shape[0] != T:
        raise ConsistencyInputError(
            f"consistency_error: expected frames and points [T,{H},{W},3] and c2ws [T,3,4] with the "
            f"same T, got {frames.shape}, {points.shape}, {c2ws.shape}")
    if not 1 <= k < T:
        raise ConsistencyInputError(f"consistency_error: frame gap k must be in 1..{T - 1} for {T} frames, got {k}")
    per_pair = []
    for t in range(T - k):
        warped, mask = warp_frame(frames[t], points[t], c2ws[t + k], H, W, focal,
                                  dst_points=points[t + k], occlusion_tol=occlusion_tol, radius_px=radius_px)
        per_pair.append({"src": t, "dst": t + k, "rmse": rmse(frames[t + k], warped, mask),
                         "coverage": float(mask.mean())})
    errors = np.array([p["rmse"] for p in per_pair])
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "per_pair": per_pair}
    return {"mean": float(errors.mean()), "std": float(errors.std()), "per_pair": per_pair}
