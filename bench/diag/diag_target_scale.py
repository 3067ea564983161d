"""What a stylized NeRF loses against per-frame AdaIN before it is even trained: the style loss
of ideal renders of its targets, at the resolution evaluate.py judges them.

    python bench/diag/diag_target_scale.py [--n_views 5] [--styles la_muse,sketch,...]

evaluate.py compares the stylized NeRF with AdaIN applied to each path frame at the frame's own
size (504x378 for fern at factor 4 with --eval_factor 2).  The NeRF itself learns from targets
stylized at the geometry's size, and a 3D field can only average targets that disagree from
view to view.  This script stylizes fern's photos (the stand-in for the NeRF's renders, no
NeRF needed) with the decoder and measures each way of making a frame at the eval size:

- per-frame:    AdaIN of the frame at the eval size (evaluate.py's baseline; ratio 1);
- target xF:    AdaIN at F times the eval size, then downscaled (INTER_AREA) to it: a NeRF that
                fits targets made at F x the eval size exactly;
- blur s:       per-frame, blurred with a Gaussian of s pixels: a NeRF that smooths;
- shift-mean d: the mean of AdaIN of the frame shifted by (dx, dy) in [0, d]^2 and shifted
                back: the average of targets whose texture lands a few pixels apart, as targets
                of neighbouring views do on one surface point.

For each: the style loss (AdaIN's objective against the style image, evaluation/style_strength)
as a ratio to per-frame AdaIN's, and the sharpness (Laplacian energy) relative to the photo.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402


def stylize(encoder, decoder, img, s_feat):
    from pipeline.targets import stylize_view
    return stylize_view(encoder, decoder, img, s_feat)


def shift_mean(encoder, decoder, img, s_feat, d):
    """Mean over (dx, dy) in [0, d]^2 of AdaIN(img shifted by (dx, dy)), shifted back; edge pixels
    padded by replication so that every output pixel has all shifts."""
    import numpy as np
    H, W = img.shape[:2]
    pad = np.pad(img, ((0, d), (0, d), (0, 0)), mode="edge")
    acc = np.zeros_like(img)
    for dy in range(d + 1):
        for dx in range(d + 1):
            acc += stylize(encoder, decoder, np.ascontiguousarray(pad[dy:dy + H, dx:dx + W]), s_feat)
    return acc / (d + 1) ** 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vgg", default="pretrained/vgg_normalised_conv3_1.pth")
    ap.add_argument("--decoder", default="weights/adain_decoder_relu3_1.pkl")
    ap.add_argument("--views", default="data/nerf_llff_data/fern/images_4", help="the photos (geometry size)")
    ap.add_argument("--n_views", type=int, default=5)
    ap.add_argument("--style_dir", default="all_styles")
    ap.add_argument("--styles", default="la_muse,sketch,woman_with_hat_matisse")
    ap.add_argument("--style_size", type=int, default=512, help="short side of the style image (--style_size)")
    ap.add_argument("--eval_factor", type=int, default=2, help="eval frames are the photos downscaled by this")
    ap.add_argument("--blur", default="0.5,1,2", help="Gaussian sigmas (pixels at the eval size)")
    ap.add_argument("--shift", default="1,3", help="largest shifts d of shift-mean")
    ap.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    args = ap.parse_args(argv)
    runtime.setup(device=args.device)
    import cv2
    import jittor as jt
    import numpy as np
    from dataset.image_folder import list_images, load_image, resize_short_side
    from evaluation.style_strength import path_sharpness, style_loss, tap_statistics
    from models.vgg import VGGEncoder
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from decoder_recipe import load_decoder

    encoder = VGGEncoder.from_pth(args.vgg)
    decoder = load_decoder(args.decoder, encoder.deepest_channels)
    photos = [load_image(p) for p in list_images(args.views)[:args.n_views]]
    H, W = photos[0].shape[:2]
    h, w = H // args.eval_factor, W // args.eval_factor

    def down(img):
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)

    frames = np.stack([down(p) for p in photos])
    style_paths = {os.path.splitext(os.path.basename(p))[0]: p for p in list_images(args.style_dir)}
    print(runtime.summary(), flush=True)
    print(f"{len(photos)} photos {W}x{H}, eval frames {w}x{h}, decoder {args.decoder}", flush=True)
    for name in [n.strip() for n in args.styles.split(",") if n.strip()]:
        if name not in style_paths:
            raise SystemExit(f"error: --styles: {name} not in {args.style_dir}")
        style = resize_short_side(load_image(style_paths[name]), args.style_size)
        with jt.no_grad():
            s_feat = encoder.encode(jt.array(style.transpose(2, 0, 1)[None]))
        s_stats = tap_statistics(encoder, style)
        per_frame = np.stack([stylize(encoder, decoder, f, s_feat) for f in frames])
        rows = {"per-frame": per_frame,
                f"target x{args.eval_factor}": np.stack([down(stylize(encoder, decoder, p, s_feat))
                                                          for p in photos])}
        for s in [float(x) for x in args.blur.split(",") if x]:
            rows[f"blur {s:g}"] = np.stack([cv2.GaussianBlur(f, (0, 0), s) for f in per_frame])
        for d in [int(x) for x in args.shift.split(",") if x]:
            rows[f"shift-mean {d}"] = np.stack([shift_mean(encoder, decoder, f, s_feat, d) for f in frames])
        base = style_loss(encoder, per_frame, style_stats=s_stats).mean()
        photo_loss = style_loss(encoder, frames, style_stats=s_stats).mean()
        print(f"{name}: photo style loss {photo_loss:.3f}", flush=True)
        for label, out in rows.items():
            loss = style_loss(encoder, out, style_stats=s_stats).mean()
            print(f"  {label:14s} style loss {loss:7.3f} ({loss / base:5.2f}x per-frame)  "
                  f"sharpness {path_sharpness(out, frames):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
