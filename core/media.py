"""Image and video files: PNG in/out, depth colouring, mp4 writing."""
import os

import numpy as np

from core.oserrors import remove_quietly, writing


def to8b(x):
    """float image in [0,1] -> uint8."""
    return (255 * np.clip(np.asarray(x, np.float32), 0, 1) + 0.5).astype(np.uint8)


def write_png(path, img):
    import imageio.v2 as imageio
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


class VideoWriter:
    """An mp4 written one frame at a time (imageio-ffmpeg, else OpenCV), so that long videos
    need not be held in memory, and put under its name only when whole (see __init__).
    Frames: uint8 or float [H,W,3]; odd sizes are padded by one edge row/column (H.264's
    yuv420p needs even sizes).  Use as a context manager."""

    def __init__(self, path, fps=30):
        self.path, self.fps, self.n = path, fps, 0
        # frames go to a partial file, renamed to path only once the video is whole: a render cut
        # short (Ctrl-C, a kill, a full disk) never leaves a shorter video under the final name,
        # and an earlier complete video there stays until the new one replaces it
        stem, ext = os.path.splitext(path)
        self.partial = f"{stem}.tmp{ext}"
        self._writer = self._cv2 = None
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def _open(self, h, w):
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401  (the mp4 backend)
            # macro_block_size=1 keeps the exact (even) size
            self._writer = imageio.get_writer(self.partial, fps=self.fps, quality=8, macro_block_size=1)
            return
        except ImportError:
            pass
        import cv2
        self._cv2 = cv2.VideoWriter(self.partial, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not self._cv2.isOpened():
            raise RuntimeError(f"cannot write video {self.path}: neither imageio-ffmpeg nor OpenCV's mp4 writer works")

    def append(self, frame):
        f = np.asarray(frame)
        f = f if f.dtype == np.uint8 else to8b(f)
        h, w = f.shape[:2]
        if h % 2 or w % 2:
            f = np.pad(f, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (f.ndim - 2), mode="edge")
        if self._writer is None and self._cv2 is None:
            self._open(*f.shape[:2])
        if self._writer is not None:
            self._writer.append_data(f)
        else:
            import cv2
            self._cv2.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        self.n += 1

    def close(self):
        if self._writer is not None:
            self._writer.close()
        if self._cv2 is not None:
            self._cv2.release()
        self._writer = self._cv2 = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.close()
        except BaseException:
            remove_quietly(self.partial)
            raise
        if exc[0] is not None or self.n == 0:
            remove_quietly(self.partial)
            if exc[0] is None:
                raise ValueError(f"video {self.path}: no frames")
            return
        os.replace(self.partial, self.path)


def write_video(path, frames, fps=30):
    """Write uint8/float frames [N,H,W,3] to mp4 (VideoWriter). Returns the path."""
    with writing(path), VideoWriter(path, fps) as writer:
        for f in frames:
            writer.append(f)
    return path
