"""What-if variants of the target propagation (pipeline/target_propagation.py), judged on the
targets themselves: style loss (with its relu3_1 terms), sharpness and consistency.

    # on the machine that holds an experiment with per-view targets (--no-target_propagation):
    python bench/diag/diag_propagation_variants.py --config configs/fern_quick.txt \
        --expname levers_nerf120k_b4kpv --origin_step 120001 --export DIR
    # anywhere (a 2-core CPU will do), on what was exported:
    python bench/diag/diag_propagation_variants.py --inputs DIR [--styles la_muse] [--variants all]

--export writes DIR/depth.npz (each target pixel's depth along its camera's axis, float16, with
the cameras and focal length: the surface points are rebuilt from it exactly as the geometry
cache's rays give them) and DIR/<style>_<view>.png (the per-view targets), about 13 MB for two
styles at 504x378. The variants (fern_quick's thresholds, 0.2 and the edge test 0.2, unless
named): as is; the occlusion test in pixels of the source view instead of world units
(`px<N>`); depth edges dilated (`dilate<N>`, the bicubic read's footprint); the mask cleaning
with a larger square (`clean<N>`); the central view as the only source (`central`); seams
feathered (`feather`: own and taken blended by the taken mask blurred, sigma 2 px); and the
propagated targets decoded again by the shipped decoder at AdaIN weights 0, 0.3, 0.6 and 1
(`redecode`); and two controls: each per-view target moved by a smooth warp of the size of the
views' parallax (`smoothwarp`: 3.4 and 1.7 pixels, scaled by 1.01) and propagation over the depth
median-filtered (`median5`, 5x5); and the projections' displacement field smoothed over the pixels
the source sees (`dispgauss`: Gaussian, sigma 1.5 px, normalised by the mask; `dispbilateral`:
bilateral, sigma 3 px in space and 0.5 px in displacement); and the depth blurred (`blur3`,
`blur8`: Gaussian, sigma 3 or 8 px), propagated with fern_quick's tests and with none (every point
taken that projects inside the source), its consistency still judged on the true depth; and
`layers` (with --photos, the scene's images at the targets' size or larger): the photos stylized
by the shipped decoder whole, and in two depth layers (nearer and farther than --layer_depth, each
stylized with the other inpainted, then composited), each set propagated as fern_quick does: does
keeping strokes inside a depth layer lower propagation's cost? `finer` (with --photos): the photos
stylized at twice the targets' size and area-averaged down (strokes half as wide), propagated.
Per view, in propagation order, the style loss says how the cost grows with the
distance from the central camera.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402

VARIANTS = ("asis", "px1.5", "px3", "dilate3", "dilate5", "clean7", "central", "feather", "redecode", "smoothwarp",
            "median5", "dispgauss", "dispbilateral", "blur3", "blur8", "layers", "finer")


def export(argv, folder):
    """Writes the experiment's per-view targets and target-size depth into folder."""
    from core.config import build_parser, check_args
    args = build_parser().parse_args(argv)
    check_args(args)
    runtime.setup()
    import cv2
    import numpy as np
    from pipeline import stages, target_propagation, targets
    from pipeline.experiment import experiment_dir
    run = stages.Run(args, stages.load_scene(args), experiment_dir(args, create=False))
    geo = run.get("geo")
    h, w, focal = targets.target_hwf(args, geo)
    pts = target_propagation.points_at(geo.points, args.target_factor, h, w).astype(np.float64)
    c2ws = np.asarray(geo.c2ws, np.float64)
    depth = np.stack([-(pts[v] - c2ws[v][:3, 3]) @ c2ws[v][:3, 2] for v in range(len(pts))])
    os.makedirs(folder, exist_ok=True)
    np.savez_compressed(os.path.join(folder, "depth.npz"), depth=depth.astype(np.float16), c2ws=c2ws,
                        focal=focal, h=h, w=w)
    names, _paths, _images = run.styles()
    for k, name in enumerate(names):
        own = np.load(targets.target_path(os.path.join(run.expdir, "targets"), k, name))
        for v in range(len(own)):
            cv2.imwrite(os.path.join(folder, f"{os.path.splitext(name)[0]}_{v:02d}.png"),
                        cv2.cvtColor(np.ascontiguousarray(own[v]), cv2.COLOR_RGB2BGR))
    print(f"wrote {folder}: depth.npz and {len(names)} styles' targets")


def load_inputs(folder):
    """(points [V,h,w,3] float32, c2ws, focal, h, w) rebuilt from folder/depth.npz: each pixel's
    ray (dataset/rays.py's, at the targets' size; its direction has z = -1 in the camera) out to
    its depth."""
    import numpy as np
    from dataset.rays import get_rays_np
    d = np.load(os.path.join(folder, "depth.npz"))
    depth, c2ws, focal, h, w = d["depth"].astype(np.float32), d["c2ws"], float(d["focal"]), int(d["h"]), int(d["w"])
    points = []
    for v in range(len(depth)):
        origin, direction = get_rays_np(h, w, focal, c2ws[v])
        points.append(origin + depth[v][..., None] * direction)
    return np.stack(points).astype(np.float32), c2ws, focal, h, w


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", help="folder written by --export")
    ap.add_argument("--export", help="write the experiment's inputs here (the other options: run_stylenerf.py's)")
    ap.add_argument("--styles", default="la_muse", help="comma-separated style names (file stems)")
    ap.add_argument("--variants", default="all", help=f"comma-separated, from {', '.join(VARIANTS)}; or all")
    ap.add_argument("--photos", default=None, help="layers: folder of the scene's images, in the views' order")
    ap.add_argument("--layer_depth", type=float, default=4.0, help="layers: the depth between the two layers")
    args, rest = ap.parse_known_args(argv)
    if args.export:
        export(rest, args.export)
        return 0
    if not args.inputs or not os.path.exists(os.path.join(args.inputs, "depth.npz")):
        raise SystemExit(f"error: --inputs must be a folder written by --export (with depth.npz), got {args.inputs!r}")
    chosen = VARIANTS if args.variants == "all" else tuple(args.variants.split(","))
    if not set(chosen) <= set(VARIANTS):
        raise SystemExit(f"error: --variants takes {', '.join(VARIANTS)} or all, got {args.variants!r}")
    for needs_photos in ("layers", "finer"):
        if needs_photos in chosen and not (args.photos and os.path.isdir(args.photos)):
            raise SystemExit(f"error: --variants {needs_photos} needs --photos, a folder of the scene's images; "
                             f"got {args.photos!r}")
    runtime.setup()
    import cv2
    import jittor as jt
    import numpy as np
    from core.config import parse_args
    from evaluation.consistency import consistency_error
    from evaluation.style_strength import loss_terms, path_sharpness, tap_statistics
    from models.adain import adain
    from pipeline import target_propagation as tp
    from pipeline.style_selection import load_style_images, load_style_networks, select_styles

    points, c2ws, focal, h, w = load_inputs(args.inputs)
    depth = np.load(os.path.join(args.inputs, "depth.npz"))["depth"].astype(np.float32)
    order = tp.view_order(c2ws)
    opts = parse_args(["--config", "configs/fern_quick.txt"])
    encoder, decoder = load_style_networks(opts, lambda *a: None)

    def propagate(own, pts=points, thresh=0.2, **kw):  # fern_quick's tests unless told
        kw.setdefault("edge_thresh", 0.2)
        return tp.propagate(own, pts, c2ws, focal, thresh, **kw)

    def with_patch(name, fn, run):  # a module function swapped for one call
        old = getattr(tp, name)
        setattr(tp, name, fn)
        try:
            return run()
        finally:
            setattr(tp, name, old)

    def seen_in_px(px):
        base = tp.seen_in

        def seen(points_dst, points_src, c2w_src, h_, w_, focal_, thresh):
            u, v, inside = base(points_dst, points_src, c2w_src, h_, w_, focal_, np.inf)  # no distance test
            row, col = tp.nearest_pixel(u, v, h_, w_)
            dist = np.linalg.norm(points_src[row, col] - points_dst, axis=-1)
            c2w = np.asarray(c2w_src, np.float64)
            z = -(points_dst - c2w[:3, 3]) @ c2w[:3, 2]  # the point's depth in the source camera
            return u, v, inside & (dist * focal_ / np.maximum(np.abs(z), 1e-6) < px)  # in source pixels there
        return seen

    def dilated_edges(k):
        base = tp.depth_edges
        return lambda pts, cams, thresh: np.stack(
            [cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool) for m in base(pts, cams, thresh)])

    cols, rows = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32), indexing="xy")

    def smoothed_reads(bilateral):
        base = tp.seen_in

        def seen(points_dst, points_src, c2w_src, h_, w_, focal_, thresh):
            u, v, ok = base(points_dst, points_src, c2w_src, h_, w_, focal_, thresh)
            m = ok.astype(np.float32)
            du, dv = np.nan_to_num(u - cols) * m, np.nan_to_num(v - rows) * m
            if bilateral:
                su, sv = (cv2.bilateralFilter(d, -1, 0.5, 3.0) for d in (du, dv))
            else:
                norm = cv2.GaussianBlur(m, (0, 0), 1.5) + 1e-6
                su, sv = (cv2.GaussianBlur(d, (0, 0), 1.5) / norm for d in (du, dv))
            return (np.where(ok, cols + su, u).astype(np.float32), np.where(ok, rows + sv, v).astype(np.float32), ok)
        return seen

    def at_depth(new_depth):
        """The surface points moved along their rays to new_depth [V,h,w]."""
        ratio = np.where(depth > 0, new_depth / np.maximum(depth, 1e-6), 1.0)[..., None]
        centres = np.asarray(c2ws)[:, None, None, :3, 3]
        return (centres + (points - centres) * ratio).astype(np.float32)

    def read_photos(scale=1):
        """The scene's images (--photos, in the views' order) at scale times the targets' size, uint8."""
        files = sorted(f for f in os.listdir(args.photos) if f.lower().endswith((".png", ".jpg", ".jpeg")))
        return [cv2.resize(cv2.cvtColor(cv2.imread(os.path.join(args.photos, f)), cv2.COLOR_BGR2RGB),
                           (scale * w, scale * h), interpolation=cv2.INTER_AREA) for f in files[:len(points)]]

    def cleaner(k):
        ker = np.ones((k, k), np.uint8)
        return lambda mask: cv2.morphologyEx(cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, ker),
                                             cv2.MORPH_OPEN, ker).astype(bool)

    for stem in args.styles.split(","):
        own = np.stack([cv2.cvtColor(cv2.imread(os.path.join(args.inputs, f"{stem}_{v:02d}.png")), cv2.COLOR_BGR2RGB)
                        for v in range(len(points))]).astype(np.float32) / 255
        _names, paths = select_styles(parse_args(["--config", "configs/fern_quick.txt", "--style", stem]))
        image = load_style_images(paths, opts.style_size)[0]
        style_stats = tap_statistics(encoder, image)
        with jt.no_grad():
            style_feat = encoder.encode(jt.array(image.transpose(2, 0, 1)[None]))

        def show(label, t, taken=None):
            stats = tap_statistics(encoder, t)
            terms = loss_terms(stats, style_stats)
            e1, e7 = (consistency_error(t, points, c2ws, h, w, focal, k=k)["mean"] for k in (1, 7))
            share = "" if taken is None else f" taken {taken.mean():.2f}"
            print(f"{stem} {label:22s}{share} style loss {terms.sum((1, 2)).mean():.3f} relu3_1 means/stds "
                  f"{terms.mean(0)[2][0]:.3f}/{terms.mean(0)[2][1]:.3f} sharpness {path_sharpness(t, own):.3f} "
                  f"k=1 {e1:.4f} k=7 {e7:.4f}", flush=True)
            # relu3_1's mean activation and mean channel std over the frames (the painting's: below)
            print(f"  relu3_1 mean activation {stats[-1][0].mean():.3f}, mean channel std {stats[-1][1].mean():.3f} "
                  f"(the painting: {style_stats[-1][0].mean():.3f}, {style_stats[-1][1].mean():.3f})", flush=True)
            print(f"  style loss per view in propagation order: "
                  + " ".join(f"{terms[v].sum():.2f}" for v in order), flush=True)

        def redecode(x, a):
            with jt.no_grad():
                c = encoder.encode(jt.array(x.transpose(2, 0, 1)[None]))
                out = decoder(a * adain(c, style_feat) + (1 - a) * c)[0, :, :h, :w]
                return np.clip(out.numpy().transpose(1, 2, 0), 0, 1)

        show("per-view", own)
        asis, taken = propagate(own)
        for name in chosen:
            if name == "asis":
                show("as is", asis, taken)
            elif name.startswith("px"):
                show(f"occlusion test {name[2:]} px", *with_patch("seen_in", seen_in_px(float(name[2:])),
                                                                  lambda: propagate(own)))
            elif name.startswith("dilate"):
                show(f"edges dilated {name[6:]}", *with_patch("depth_edges", dilated_edges(int(name[6:])),
                                                              lambda: propagate(own)))
            elif name.startswith("clean"):
                show(f"cleaning {name[5:]}x{name[5:]}", *with_patch("clean_mask", cleaner(int(name[5:])),
                                                                     lambda: propagate(own)))
            elif name == "central":
                show("central view only", *propagate(own, max_sources=1))
            elif name == "feather":
                out = asis.copy()
                for v in range(len(out)):
                    a = cv2.GaussianBlur((np.abs(asis[v] - own[v]).max(-1) > 1e-6).astype(np.float32), (0, 0), 2.0)
                    out[v] = a[..., None] * asis[v] + (1 - a[..., None]) * own[v]
                show("seams feathered", out, taken)
            elif name == "smoothwarp":
                m = np.float32([[1.01, 0, 3.4 - 0.005 * w], [0, 1.01, 1.7 - 0.005 * h]])
                show("smooth warp of each", np.stack([cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_CUBIC,
                                                                     borderMode=cv2.BORDER_REFLECT) for x in own]))
            elif name in ("blur3", "blur8"):
                sigma = float(name[4:])
                moved = at_depth(np.stack([cv2.GaussianBlur(d, (0, 0), sigma) for d in depth]))
                show(f"depth blurred {sigma:g} px", *propagate(own, moved))
                show(f"  the same, no tests", *propagate(own, moved, np.inf, edge_thresh=0.0))
            elif name == "median5":
                moved = at_depth(np.stack([cv2.medianBlur(d, 5) for d in depth]))
                show("depth median 5x5", *propagate(own, moved))
            elif name in ("dispgauss", "dispbilateral"):
                show(f"displacement {name[4:]}", *with_patch("seen_in", smoothed_reads(name == "dispbilateral"),
                                                             lambda: propagate(own)))
            elif name == "layers":
                from pipeline.targets import stylize_view
                whole, layered = [], []
                for v, photo in enumerate(read_photos()):
                    whole.append(stylize_view(encoder, decoder, photo.astype(np.float32) / 255, style_feat))
                    near = (depth[v] < args.layer_depth).astype(np.uint8)
                    out = np.zeros((h, w, 3), np.float32)
                    for m in (near, 1 - near):  # each layer with the other filled in from its borders
                        fill = cv2.inpaint(photo, 1 - m, 5, cv2.INPAINT_TELEA).astype(np.float32) / 255
                        out += stylize_view(encoder, decoder, fill, style_feat) * m[..., None]
                    layered.append(out)
                for label, t in (("photos stylized whole", np.stack(whole)), ("photos in two layers", np.stack(layered))):
                    show(label, t)
                    show("  propagated", *propagate(t))
            elif name == "finer":
                from pipeline.targets import stylize_view
                finer = [cv2.resize(stylize_view(encoder, decoder, big.astype(np.float32) / 255, style_feat), (w, h),
                                    interpolation=cv2.INTER_AREA) for big in read_photos(2)]
                show("photos stylized at 2x", np.stack(finer))
                show("  propagated", *propagate(np.stack(finer)))
            elif name == "redecode":
                for a in (0.0, 0.3, 0.6, 1.0):
                    show(f"decoded again, AdaIN {a}", np.stack([redecode(x, a) for x in asis]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
