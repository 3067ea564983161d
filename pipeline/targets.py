"""Stage 4: stylized targets - every geometry view stylized with every style.

The fine-tuned decoder stylizes the NeRF render of each view (AdaIN with the
style image resized so its short side is --style_size).  Targets are cached as
uint8 `<expdir>/targets/<k>_<style name>.npy` [V,H,W,3], keyed by the decoder
file and the geometry cache so they are rebuilt when either changes.
"""
import json
import os

import jittor as jt
import numpy as np
from tqdm import tqdm

from core.media import to8b
from models.adain import adain


def _stamp(path):
    # nanosecond mtime: a same-size file rewritten within the same second must still count as new
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def stylize_view(encoder, decoder, rgb, style_feat):
    """One view [H,W,3] -> stylized [H,W,3] float32 (no grad)."""
    H, W = rgb.shape[:2]
    with jt.no_grad():
        c = encoder.encode(jt.array(rgb.transpose(2, 0, 1)[None]))
        out = decoder(adain(c, style_feat))[0, :, :H, :W]
        return np.clip(out.numpy().transpose(1, 2, 0), 0, 1)


def load_or_make_targets(args, geo, encoder, decoder, styles, expdir, log=print):
    """styles: list of (name, image [h,w,3]); returns list of uint8 arrays [V,H,W,3], one per style."""
    folder = os.path.join(expdir, "targets")
    os.makedirs(folder, exist_ok=True)
    key = {"decoder": _stamp(os.path.join(expdir, "decoder.pkl")),
           "geometry": _stamp(os.path.join(expdir, "geometry", "meta.json")),
           "style_size": args.style_size}
    meta_path = os.path.join(folder, "meta.json")
    old = json.load(open(meta_path)) if os.path.exists(meta_path) else None
    if old != key:
        for f in os.listdir(folder):
            if f.endswith(".npy"):
                os.remove(os.path.join(folder, f))
        with open(meta_path, "w") as f:
            json.dump(key, f)
    targets = []
    for k, (name, img) in enumerate(styles):
        path = os.path.join(folder, f"{k:03d}_{os.path.splitext(name)[0]}.npy")
        if os.path.exists(path):
            targets.append(np.load(path, mmap_mode="r"))
            continue
        with jt.no_grad():
            s_feat = encoder.encode(jt.array(img.transpose(2, 0, 1)[None]))
        out = np.zeros(geo.rgb.shape, np.uint8)
        for v in tqdm(range(geo.n_views), desc=f"targets {name}", dynamic_ncols=True):
            out[v] = to8b(stylize_view(encoder, decoder, geo.rgb[v], s_feat))
        np.save(path + ".tmp.npy", out)
        os.replace(path + ".tmp.npy", path)
        targets.append(np.load(path, mmap_mode="r"))
    return targets
