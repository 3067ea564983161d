"""Stage 4: stylized targets - every geometry view stylized with every style.

The fine-tuned decoder stylizes the NeRF render of each view (AdaIN with the
style image resized so its short side is --style_size), at the view's size divided by
--target_factor (target_hwf: the decoder's strokes have a size in pixels, so the targets are
made at the size the stylized NeRF is rendered at).  Targets are cached as
uint8 `<expdir>/targets/<k>_<style name>.npy` [V,h,w,3], keyed by the decoder
file, the geometry cache, the size and the propagation (core/cache_key.py) so they are rebuilt
when one changes. With --target_propagation each style's targets are then made consistent
between views (pipeline/target_propagation.py).
"""
import os

import cv2
import jittor as jt
import numpy as np
from tqdm import tqdm

from core.cache_key import file_stamp, matches, refresh
from core.config import VIEW_REFS
from core.media import to8b
from core.oserrors import remove_quietly, writing
from dataset.rays import scaled_hwf
from models.adain import adain
from pipeline.target_propagation import points_at, propagate


def target_hwf(args, geo):
    """(h, w, focal) of the targets and of the style stage's rays: the geometry views' camera
    --target_factor times smaller."""
    return scaled_hwf(geo.hwf, args.target_factor)


def target_content(args, geo, v):
    """What the targets of view v stylize: its NeRF render [h,w,3] at target_hwf (area-averaged)."""
    h, w, _ = target_hwf(args, geo)
    rgb = geo.rgb[v]
    if rgb.shape[:2] == (h, w):
        return rgb
    return cv2.resize(np.ascontiguousarray(rgb, np.float32), (w, h), interpolation=cv2.INTER_AREA)


def stylize_view(encoder, decoder, rgb, style_feat):
    """One view [H,W,3] -> stylized [H,W,3] float32 (no grad)."""
    H, W = rgb.shape[:2]
    with jt.no_grad():
        c = encoder.encode(jt.array(rgb.transpose(2, 0, 1)[None]))
        out = decoder(adain(c, style_feat))[0, :, :H, :W]
        return np.clip(out.numpy().transpose(1, 2, 0), 0, 1)


def _load(path, shape=None):
    """A saved target array, memory-mapped: uint8 of `shape`, or of any [views, H, W, 3] when
    shape is None.  Raises OSError, ValueError or EOFError for a damaged file."""
    arr = np.load(path, mmap_mode="r")
    fits = arr.shape == tuple(shape) if shape is not None else (arr.ndim == 4 and arr.shape[-1] == 3)
    if not fits or arr.dtype != np.uint8:
        raise ValueError(f"{arr.dtype} {arr.shape}, expected uint8 "
                         f"{tuple(shape) if shape is not None else '[views, H, W, 3]'}")
    return arr


def _read_cached(path, shape, log):
    """A cached target array, or None if missing or damaged (cut short: made again)."""
    if not os.path.exists(path):
        return None
    try:
        return _load(path, shape)
    except (OSError, ValueError, EOFError) as e:
        log(f"warning: damaged stylized targets {path} ({e}); making them again")
        remove_quietly(path)
        return None


def saved_targets(path, log):
    """A style's saved targets [V,H,W,3] (memory-mapped) for the 2D-target PNGs of a render, or
    None where the file is missing or damaged: a render goes on without those PNGs, with a
    warning naming the file (it leaves the file alone: a training run beside it owns it)."""
    if not os.path.exists(path):
        return None
    try:
        return _load(path)
    except (OSError, ValueError, EOFError) as e:
        log(f"warning: damaged stylized targets {path} ({e}); the render goes on without their 2D PNGs")
        return None


def target_key(args, expdir):
    key = {"decoder": file_stamp(os.path.join(expdir, "decoder.pkl")),
           "geometry": file_stamp(os.path.join(expdir, "geometry", "meta.json")),
           "style_size": args.style_size, "target_factor": args.target_factor}
    if args.target_propagation:  # only then: the caches of runs without it stay valid
        key["propagation"] = args.propagation_thresh
        if args.propagation_colour_thresh > 0:
            key["propagation_colour"] = args.propagation_colour_thresh
        if args.propagation_edge_thresh > 0:
            key["propagation_edge"] = args.propagation_edge_thresh
        if args.propagation_resample != "chained":
            key["propagation_resample"] = args.propagation_resample
        if args.propagation_interp != "cubic":
            key["propagation_interp"] = args.propagation_interp
    return key


def target_path(folder, k, name):
    return os.path.join(folder, f"{k:03d}_{os.path.splitext(name)[0]}.npy")


def view_target_path(folder, k, name):
    """Each view's own stylization, kept beside the propagated targets for --style_patch_ref view."""
    return os.path.join(folder, f"{k:03d}_{os.path.splitext(name)[0]}.view.npy")


def keeps_view_targets(args):
    """Whether the targets stage also keeps the views' own stylizations (the texture term reads them)."""
    return args.target_propagation and args.style_patch_weight > 0 and args.style_patch_ref in VIEW_REFS


def _paths(args, folder, k, name):
    """The files the targets stage writes for style k."""
    own = [view_target_path(folder, k, name)] if keeps_view_targets(args) else []
    return [target_path(folder, k, name)] + own


def is_current(args, expdir, names):
    """True when every style's targets exist for the current decoder and geometry."""
    folder = os.path.join(expdir, "targets")
    return (matches(os.path.join(folder, "meta.json"), target_key(args, expdir))
            and all(os.path.exists(f) for k, n in enumerate(names) for f in _paths(args, folder, k, n)))


def colour_test_renders(args, geo):
    """The views' photoreal renders at the targets' size, float32 [V,h,w,3], for the propagation's
    colour test (--propagation_colour_thresh); None when that test is off."""
    if args.propagation_colour_thresh <= 0:
        return None
    return np.stack([target_content(args, geo, v) for v in range(geo.n_views)]).astype(np.float32)


def propagate_targets(args, geo, own, renders):
    """--target_propagation with the options' tests: own [V,h,w,3] per-view targets ->
    (targets, taken [V]) (target_propagation.propagate); renders: colour_test_renders'."""
    h, w, focal = target_hwf(args, geo)
    return propagate(own, points_at(geo.points, args.target_factor, h, w), geo.c2ws, focal,
                     args.propagation_thresh, rgb=renders, colour_thresh=args.propagation_colour_thresh,
                     edge_thresh=args.propagation_edge_thresh, interp=args.propagation_interp,
                     resample=args.propagation_resample)


def _save(path, array):
    """np.save through a temporary file: a killed run leaves no partial file under the real name."""
    try:
        with writing(path):
            np.save(path + ".tmp.npy", array)
            os.replace(path + ".tmp.npy", path)
    except BaseException:
        remove_quietly(path + ".tmp.npy")
        raise


def load_or_make_targets(args, geo, encoder, decoder, styles, expdir, log=print):
    """styles: list of (name, image [h,w,3]); returns list of uint8 arrays [V,H,W,3], one per style.
    With keeps_view_targets(args) each view's own stylization is saved too (load_view_targets)."""
    folder = os.path.join(expdir, "targets")
    os.makedirs(folder, exist_ok=True)
    key = target_key(args, expdir)
    for f in os.listdir(folder):
        if f.endswith(".tmp.npy"):
            os.remove(os.path.join(folder, f))  # partial writes of a killed run

    def clear():  # targets of another decoder or geometry
        for f in os.listdir(folder):
            if f.endswith(".npy"):
                os.remove(os.path.join(folder, f))
    refresh(os.path.join(folder, "meta.json"), key, clear, "stylized targets", log)
    renders = None  # the views' photoreal renders for the propagation's colour test, made once
    keep_own = keeps_view_targets(args)
    targets = []
    for k, (name, img) in enumerate(styles):
        path, own_path = target_path(folder, k, name), view_target_path(folder, k, name)
        h, w, _ = target_hwf(args, geo)
        shape = (geo.n_views, h, w, 3)
        cached = _read_cached(path, shape, log)
        own_cached = _read_cached(own_path, shape, log) if keep_own and cached is not None else None
        if cached is not None and (not keep_own or own_cached is not None):
            targets.append(cached)
            continue
        with jt.no_grad():
            s_feat = encoder.encode(jt.array(img.transpose(2, 0, 1)[None]))
        out = np.zeros(shape, np.uint8)
        for v in tqdm(range(geo.n_views), desc=f"targets {name}", dynamic_ncols=True):
            out[v] = to8b(stylize_view(encoder, decoder, target_content(args, geo, v), s_feat))
        if keep_own:
            _save(own_path, out)
        if args.target_propagation:
            if renders is None:
                renders = colour_test_renders(args, geo)
            out, taken = propagate_targets(args, geo, out, renders)
            log(f"targets {name}: {taken.mean():.0%} of the pixels taken from earlier views "
                f"(--target_propagation)")
        _save(path, out)
        targets.append(np.load(path, mmap_mode="r"))
    return targets


def load_view_targets(args, expdir, names):
    """The views' own stylizations saved beside the propagated targets (memory-mapped uint8
    [V,H,W,3], one per style), or None unless keeps_view_targets(args)."""
    if not keeps_view_targets(args):
        return None
    folder = os.path.join(expdir, "targets")
    return [np.load(view_target_path(folder, k, n), mmap_mode="r") for k, n in enumerate(names)]
