"""Image and video files: PNG in/out, depth colouring, mp4 writing."""
import os

import numpy as np


def to8b(x):
    """float image in [0,1] -> uint8."""
    return (255 * np.clip(np.asarray(x, np.float32), 0, 1) + 0.5).astype(np.uint8)


def write_png(path, img):
    import imageio.v2 as imageio
    from core.oserrors import writing
    img = np.asarray(img)
    with writing(path):  # a full disk fails inside imageio, without the file's name
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        imageio.imwrite(path, img if img.dtype == np.uint8 else to8b(img))


def depth_to_image(depth, near=None, far=None):
    """Depth map -> grey uint8 image (near bright), robust to outliers."""
    depth = np.asarray(depth, np.float32)
    lo = np.percentile(depth, 1) if near is None else near
    hi = np.percentile(depth, 99) if far is None else far
    d = (depth - lo) / max(hi - lo, 1e-8)
    return to8b(1.0 - np.clip(d, 0, 1))


def depth_video_frames(depths):
    """Depth maps [N,H,W] -> grey uint8 frames in one range for the whole video (its 1st-99th
    percentile), so that a frame's shade does not flicker with its own extremes."""
    lo, hi = np.percentile(np.stack(depths), [1, 99])
    return [depth_to_image(d, lo, hi) for d in depths]


def write_video(path, frames, fps=30):
    """Write uint8/float frames [N,H,W,3] to mp4 (imageio-ffmpeg, else OpenCV). Returns the path."""
    frames = [f if f.dtype == np.uint8 else to8b(f) for f in (np.asarray(x) for x in frames)]
    if not frames:
        raise ValueError(f"write_video({path}): no frames")
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:  # H.264/yuv420p needs even sizes: repeat the last row/column
        frames = [np.pad(f, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (f.ndim - 2), mode="edge") for f in frames]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the mp4 backend)
        # even sizes for yuv420p; macro_block_size=1 keeps the exact size when possible
        from core.oserrors import writing
        with writing(path):
            imageio.mimwrite(path, frames, fps=fps, quality=8, macro_block_size=1)
        return path
    except ImportError:
        pass
    import cv2
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video {path}: neither imageio-ffmpeg nor OpenCV's mp4 writer works")
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
