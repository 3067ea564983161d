"""Style strength of rendered frames: how much of the style they carry, how far they moved
from the photoreal frame, and how sharp they stayed.

- style loss (per frame): AdaIN's training objective (models.adain.style_loss) against the style
  image: the sum over the encoder's taps of MSE(channel means) + MSE(channel stds), statistics as
  models.adain.channel_stats (std = sqrt(unbiased variance + eps)).  Lower = closer to the style.
- content distance (per frame): MSE of the deepest features (encoder.encode) between the frame
  and its photoreal frame, AdaIN's content loss with the photo's features as the target.
- sharpness (per frame): high-frequency energy of the frame over that of its photoreal frame,
  the energy being the mean squared 4-neighbour Laplacian of the luminance (Rec. 601) over the
  interior pixels (no border rule to choose).  The Laplacian weighs the highest frequencies most,
  which is where blur acts first.  1 = as much fine detail as the photo, < 1 blurrier; a
  stylization that adds brush texture can exceed 1, so compare methods on the same frames.
  For a whole path, path_sharpness takes the ratio of the mean energies.

The style image is encoded at the resolution it is handed in; evaluate.py hands it in at
--style_size on its short side, as the stylized targets and the per-frame AdaIN baseline use it.
Its tap statistics are computed once per call; frames go through the encoder a few at a time.
Images are NumPy float arrays [N,H,W,3] (one frame [H,W,3] also accepted) in [0,1].
"""
import jittor as jt
import numpy as np

from models.adain import channel_stats

BATCH = 4  # frames per encoder pass: bounds the memory of the shallow taps at full frame size
LUMA = np.array([0.299, 0.587, 0.114])


class StyleStrengthInputError(ValueError):
    """Images of the wrong shape, or frames and references that do not pair up."""


def _frames(x, name):
    x = np.asarray(x, np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] == 0:
        raise StyleStrengthInputError(f"{name} must be images [N,H,W,3] (or one [H,W,3]), got {x.shape}")
    return x


def _pair(frames, reference, what):
    frames, reference = _frames(frames, "frames"), _frames(reference, f"{what} frames")
    if frames.shape != reference.shape:
        raise StyleStrengthInputError(f"frames {frames.shape} and {what} frames {reference.shape} must match")
    return frames, reference


def _batches(frames, batch):
    for i in range(0, len(frames), batch):
        yield jt.array(np.ascontiguousarray(frames[i:i + batch].transpose(0, 3, 1, 2)))


def _stats(taps):
    return [tuple(s.numpy().astype(np.float64) for s in channel_stats(f)) for f in taps]


def _concat(per_batch):
    """[batch][tap](means, stds) -> [tap](means [N,C], stds [N,C])."""
    return [(np.concatenate([b[t][0] for b in per_batch]), np.concatenate([b[t][1] for b in per_batch]))
            for t in range(len(per_batch[0]))]


def tap_statistics(encoder, images, batch=BATCH):
    """Per tap: (means [N,C], stds [N,C]) as float64 NumPy, channel_stats of encoder(images)."""
    images = _frames(images, "images")
    with jt.no_grad():
        return _concat([_stats(encoder(x)) for x in _batches(images, batch)])


def loss_terms(frame_stats, style_stats):
    """The style loss's terms per frame [N, taps, 2]: MSE of the channel means (0) and of the
    channel stds (1) at each tap, from tap_statistics of N frames and of one style image.  Which
    terms a method misses says what it lacks (the stds of the shallow taps are fine texture)."""
    if len(frame_stats) != len(style_stats):
        raise StyleStrengthInputError(f"style loss: {len(frame_stats)} frame taps vs {len(style_stats)} style taps")
    return np.stack([np.stack([((fm - sm[:1]) ** 2).mean(axis=1), ((fs - ss[:1]) ** 2).mean(axis=1)], axis=1)
                     for (fm, fs), (sm, ss) in zip(frame_stats, style_stats)], axis=1).astype(np.float64)


def std_level(frame_stats, style_stats):
    """Per frame and tap [N, taps]: the frame's channel stds summed over the style image's.
    Below 1 the frame's features vary less than the painting's (too little texture at that
    scale), above 1 more; the stds term of loss_terms cannot tell which."""
    return np.stack([fs.sum(axis=1) / max(ss[0].sum(), 1e-12) for (_, fs), (_, ss) in zip(frame_stats, style_stats)],
                    axis=1).astype(np.float64)


def loss_from_stats(frame_stats, style_stats):
    """Per-frame style loss [N] from tap_statistics of N frames and of one style image."""
    return loss_terms(frame_stats, style_stats).sum(axis=(1, 2))


def _style_stats(encoder, style_image, style_stats):
    if style_stats is not None:
        return style_stats
    if style_image is None:
        raise StyleStrengthInputError("the style loss needs a style image or its tap statistics")
    return tap_statistics(encoder, _frames(style_image, "style image")[:1])


def style_loss(encoder, frames, style_image=None, style_stats=None, batch=BATCH):
    """Per-frame AdaIN style loss [N] against style_image [h,w,3] (or its tap_statistics)."""
    style_stats = _style_stats(encoder, style_image, style_stats)
    return loss_from_stats(tap_statistics(encoder, frames, batch), style_stats)


def _deep_mse(a, b):
    a, b = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    return ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)


def content_distance(encoder, frames, reference_frames, batch=BATCH):
    """Per-frame MSE [N] of the deepest features of frames and of their reference frames."""
    frames, reference = _pair(frames, reference_frames, "reference")
    with jt.no_grad():
        return np.concatenate([_deep_mse(encoder.encode(a), encoder.encode(b))
                               for a, b in zip(_batches(frames, batch), _batches(reference, batch))])


def highpass_energy(frames):
    """Per-frame mean squared Laplacian [N] of the luminance, over the interior pixels."""
    frames = _frames(frames, "frames")
    if min(frames.shape[1:3]) < 3:
        raise StyleStrengthInputError(f"highpass_energy needs frames of at least 3x3 pixels, got {frames.shape}")
    y = frames.astype(np.float64) @ LUMA
    lap = (y[:, :-2, 1:-1] + y[:, 2:, 1:-1] + y[:, 1:-1, :-2] + y[:, 1:-1, 2:] - 4 * y[:, 1:-1, 1:-1])
    return (lap ** 2).mean(axis=(1, 2))


def sharpness(frames, reference, eps=1e-12):
    """Per-frame high-frequency energy [N] of frames over that of reference (the photoreal frames)."""
    frames, reference = _pair(frames, reference, "reference")
    return highpass_energy(frames) / np.maximum(highpass_energy(reference), eps)


def path_sharpness(frames, reference, eps=1e-12):
    """One figure for a frame sequence: its mean high-frequency energy over the reference's.
    A ratio of means, so that frames whose reference is nearly flat cannot dominate (as they
    would a mean of per-frame ratios)."""
    frames, reference = _pair(frames, reference, "reference")
    return float(highpass_energy(frames).mean() / max(highpass_energy(reference).mean(), eps))


def measure(encoder, frames, style_image, content_frames, style_stats=None, batch=BATCH):
    """All three measures of frames [N,H,W,3] against one style image [h,w,3] (or its
    tap_statistics, style_stats) and the frames they stylize, content_frames [N,H,W,3] (all in [0,1]).
    One encoder pass over each: the deepest tap of the style-loss pass is the content feature.

    Returns {"style_loss", "content_distance", "sharpness"}: float64 arrays [N], and
    "style_loss_terms" [N, taps, 2] (loss_terms) and "std_level" [N, taps] (std_level)."""
    return measure_many(encoder, {None: frames}, style_image, content_frames, style_stats, batch)[None]


def measure_many(encoder, frame_sets, style_image, content_frames, style_stats=None, batch=BATCH):
    """measure of each frame set in frame_sets ({key: frames [N,H,W,3]}, the same content_frames
    for all): {key: measure's dict}.  Each batch of content frames goes through the encoder once
    for all the sets (evaluate.py measures three or four methods against the same photoreal path)."""
    frame_sets = {key: _pair(frames, content_frames, "content")[0] for key, frames in frame_sets.items()}
    content_frames = _frames(content_frames, "content frames")
    style_stats = _style_stats(encoder, style_image, style_stats)
    stats, dist = {key: [] for key in frame_sets}, {key: [] for key in frame_sets}
    batches = {key: _batches(frames, batch) for key, frames in frame_sets.items()}
    with jt.no_grad():
        for b in _batches(content_frames, batch):
            content = encoder.encode(b)
            for key in frame_sets:
                taps = encoder(next(batches[key]))
                stats[key].append(_stats(taps))
                dist[key].append(_deep_mse(taps[-1], content))
    out = {}
    for key, frames in frame_sets.items():
        per_frame = _concat(stats[key])
        terms = loss_terms(per_frame, style_stats)
        out[key] = {"style_loss": terms.sum(axis=(1, 2)), "style_loss_terms": terms,
                    "std_level": std_level(per_frame, style_stats), "content_distance": np.concatenate(dist[key]),
                    "sharpness": sharpness(frames, content_frames)}
    return out
