"""The style stage's sample cache (--style_samples K): each target pixel's K heaviest samples.

The style stage's density is frozen, so every target pixel's compositing weights are fixed
(render/cached_samples.py).  This renders them once per geometry view at the targets' size
(target_hwf) with the eval options (no jitter), keeps the K samples of each ray that carry the
most weight, and stores their depths, both levels' weights and each depth's jitter range as float16
`<expdir>/style_samples/view_<v>.npz` [h,w,K] each, keyed by the geometry cache, the size and
the sampling options (core/cache_key.py).  A killed build resumes at the first view it had
not written.  Memory: 8 K bytes a pixel (fern.txt's 20 views at 1008x756, K 16: 2 GB).
"""
import json
import os

import numpy as np
from tqdm import tqdm

from core.cache_key import file_stamp, refresh
from core.npz_cache import read_arrays, write_arrays
from dataset.rays import pixel_rays
from pipeline.experiment import remove_partial_files
from pipeline.targets import target_hwf
from render.cached_samples import kept_weight, top_samples
from render.renderer import shared_weights


NAMES = ("depth", "w_coarse", "w_fine", "spread")


def surface(args):
    """A one-sample cache at each ray's expected depth (--style_point surface) instead of its heaviest."""
    return args.style_samples == 1 and args.style_point == "surface"


def cache_key(args, expdir, opts):
    return {"geometry": file_stamp(os.path.join(expdir, "geometry", "meta.json")),
            "target_factor": args.target_factor, "k": args.style_samples,
            **({"surface": True} if surface(args) else {}),
            **({"surface_jitter": args.surface_jitter} if args.surface_jitter > 0 else {}),  # surface only (config)
            "n_samples": opts.n_samples,
            "n_fine": opts.n_fine, "lindisp": opts.lindisp, "ndc": not args.no_ndc,
            "near": float(np.mean(opts.near)), "far": float(np.mean(opts.far)), "arrays": list(NAMES),
            "opacity": "kept"}  # since every level keeps its opacity (caches before: black rays at small K)


class SampleCache:
    """depth, w_coarse, w_fine, spread: float16 [V,h,w,K] arrays (render.cached_samples.top_samples);
    lookup gathers pixels' rows."""

    def __init__(self, depth, w_coarse, w_fine, spread):
        self.depth, self.w_coarse, self.w_fine, self.spread = depth, w_coarse, w_fine, spread

    def lookup(self, v, r, c):
        """Integer view, row, col [B] -> (depth, w_coarse, w_fine, spread) float32 [B,K]."""
        return tuple(getattr(self, n)[v, r, c].astype(np.float32) for n in NAMES)


def _read_view(path, shape, log):
    got = read_arrays(path, {n: shape for n in NAMES}, "style sample cache", log)
    return None if got is None else tuple(got[n] for n in NAMES)


def coverage_ks(k, n_all):
    """The sample counts whose share of the weight the cache reports: its own K and 2K (at most
    the samples a ray has)."""
    return sorted({k, min(2 * k, n_all)})


def _render_view(args, geo, v, fields, opts, ks):
    """The K heaviest samples of every pixel of view v at the targets' size: NAMES' float16 [h,w,K],
    and its coverage: {"ks": ks, "kept": fine weight those hold, "total": all fine weight}, or None
    for no ks (one point a ray at its expected depth: no share of the weight to tell, and ranking
    every ray's samples to tell it took most of the view's time)."""
    h, w, focal = target_hwf(args, geo)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    c2ws = np.broadcast_to(geo.c2ws[v], (len(rows),) + geo.c2ws[v].shape)
    out = [np.empty((h * w, args.style_samples), np.float16) for _ in NAMES]
    kept, total = np.zeros(len(ks)), 0.0
    for start in range(0, h * w, args.chunk):
        end = min(start + args.chunk, h * w)
        ro, rd = pixel_rays(h, w, focal, c2ws[start:end], rows[start:end], cols[start:end], ndc=not args.no_ndc)
        z, w_c, w_f = shared_weights(*fields, ro, rd, opts)
        if ks:
            kept += kept_weight(w_c, w_f, ks)
            total += float(w_f.sum(dtype=np.float64))
        for dst, src in zip(out, top_samples(z, w_c, w_f, args.style_samples, surface(args), args.surface_jitter)):
            dst[start:end] = src
    coverage = {"ks": ks, "kept": kept.tolist(), "total": total} if ks else None
    return tuple(a.reshape(h, w, -1) for a in out), coverage


def _read_coverage(path, ks):
    try:
        with open(path) as f:
            got = json.load(f)
        return got if got.get("ks") == ks and len(got.get("kept", ())) == len(ks) else None
    except (OSError, ValueError, AttributeError):  # a cache built before coverage was kept, or cut short
        return None


def coverage_line(k, coverages, min_share=0.9):
    """One line on the share of the exact render's fine weight the cache holds (at K and 2K),
    from every view's coverage, with what to do when it is under min_share; None when a view's
    coverage is unknown."""
    if not coverages or any(c is None for c in coverages):
        return None
    ks = coverages[0]["ks"]
    total = sum(c["total"] for c in coverages)
    shares = [sum(c["kept"][i] for c in coverages) / max(total, 1e-12) for i in range(len(ks))]
    line = f"style sample cache: the {k} heaviest samples hold {shares[0]:.0%} of the rays' fine weight" + "".join(
        f" ({kk}: {sh:.0%})" for kk, sh in zip(ks[1:], shares[1:]))
    if shares[0] < min_share:
        line += (f"; the default render takes the other {1 - shares[0]:.0%} of each stylized colour from samples "
                 f"the style stage never trains, which dims the style: a larger --style_samples, or render "
                 f"with --style_render_samples {k}")
    return line


def load_or_build(args, geo, fields, opts, expdir, log=print):
    """The SampleCache of this geometry at the targets' size, rendering the views it lacks.
    fields: (coarse, fine) with `.density` (the frozen NeRF's); opts: the "eval" RenderOptions;
    the rays are the style stage's (dataset.rays.pixel_rays)."""
    k, n_all = args.style_samples, opts.n_samples + opts.n_fine
    if opts.n_fine < 1 or k > n_all:
        raise ValueError(f"--style_samples {k}: must be at most the samples a ray has (--N_samples "
                         f"{opts.n_samples} + --N_samples_fine {opts.n_fine}), and needs --N_samples_fine > 0")
    folder = os.path.join(expdir, "style_samples")
    os.makedirs(folder, exist_ok=True)
    remove_partial_files(folder)  # partial writes of a killed run

    def clear():  # samples of another geometry, size or K
        for f in os.listdir(folder):
            if f.startswith("view_"):
                os.remove(os.path.join(folder, f))
    refresh(os.path.join(folder, "meta.json"), cache_key(args, expdir, opts), clear, "style sample cache", log)
    h, w, _ = target_hwf(args, geo)
    arrays = [np.empty((geo.n_views, h, w, k), np.float16) for _ in NAMES]
    ks = [] if surface(args) else coverage_ks(k, n_all)  # surface: no coverage (coverage_line)
    todo, coverages = [], []
    for v in range(geo.n_views):
        got = _read_view(os.path.join(folder, f"view_{v:03d}.npz"), (h, w, k), log)
        if got is None:
            todo.append(v)
        else:
            for dst, src in zip(arrays, got):
                dst[v] = src
        coverages.append(None if got is None or not ks else
                         _read_coverage(os.path.join(folder, f"view_{v:03d}.json"), ks))
    if todo:
        what = "the point at its expected depth" if surface(args) else f"the {k} heaviest samples"
        log(f"style sample cache: {what} of every pixel, {len(todo)} of {geo.n_views} views at {w}x{h} into {folder}")
    for v in tqdm(todo, desc="style samples", dynamic_ncols=True, disable=not todo):
        got, coverages[v] = _render_view(args, geo, v, fields, opts, ks)
        write_arrays(os.path.join(folder, f"view_{v:03d}.npz"), dict(zip(NAMES, got)))
        if coverages[v] is not None:
            with open(os.path.join(folder, f"view_{v:03d}.json"), "w") as f:  # small: a cut write reads as unknown
                json.dump(coverages[v], f)
        for dst, src in zip(arrays, got):
            dst[v] = src
    if not surface(args):
        line = coverage_line(k, coverages)
    elif args.style_render_samples != 1:  # one point a ray: no share of the weight to tell, but where it renders
        line = (f"style sample cache: one point a ray, at its expected depth; the stylized renders colour other "
                f"points (--style_render_samples {args.style_render_samples}), where the style stage never trains: "
                f"render with --style_render_samples 1 to colour the surface it learns")
    else:
        line = None
    if line:
        log(line)
    return SampleCache(*arrays)
