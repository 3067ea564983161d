"""How much style a relu3_1 AdaIN decoder transfers, against the inverter it starts from.

    python bench/decoder_recipe.py --decoders inverter=pretrained/feature_invertor_conv3_1.pth \
        today=/tmp/today/ chosen=pretrained/decoder_finetuned.pkl --out dec.json --grid dec.jpg

Content: fern's views (short side --size px); styles: --styles (short side --size px). For
every decoder and style, each view is stylized with AdaIN at the encoder's deepest tap and
clipped to [0,1] (what a user sees); then, as in evaluate.py:
- style loss: AdaIN's objective against the style image, summed over the encoder's taps:
  MSE of channel means + MSE of channel stds (models.adain.style_loss);
- content distance: MSE of the deepest features of the output and of the content view.
Both are averaged over views and styles and given as ratios to the first decoder's (the
inverter: AdaIN with a decoder that only reconstructs). A decoder given as a folder stands
for every decoder_train_<iter>.pkl checkpoint in it (label@iter), so one training run gives
a curve over iterations. --grid writes one view per style: content | style | each decoder
(the newest checkpoint of a folder).
"""
import argparse
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backend import runtime  # noqa: E402

DEFAULT_STYLES = ["la_muse", "sketch", "woman_with_hat_matisse", "brushstrokes",
                  "the_resevoir_at_poitiers", "picasso_self_portrait"]


def decoder_files(spec):
    """'label=path' -> [(label, file)]: a file as it is, a folder as its checkpoints by iteration."""
    label, _, path = spec.partition("=")
    if not path:
        raise SystemExit(f"error: --decoders takes label=path, got {spec!r}")
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "decoder_train_*.pkl")))
        if not files:
            raise SystemExit(f"error: {path} holds no decoder_train_<iter>.pkl checkpoints")
        return [(f"{label}@{int(os.path.basename(f)[14:-4])}", f) for f in files]
    if not os.path.isfile(path):
        raise SystemExit(f"error: decoder file {path} not found")
    return [(label, path)]


def load_decoder(path, channels):
    from core.checkpoint import load
    from models.decoder import Decoder
    if os.path.basename(path).startswith("decoder_train_"):
        dec = Decoder(channels)
        dec.load_weights(load(path, required_keys=("decoder",))["decoder"], path)
        return dec
    return Decoder.from_file(path, channels)


def measure(encoder, decoder, views, style, batch=10):
    """Mean style loss and content distance of AdaIN(views, style) through decoder; also the
    clipped outputs [N,H,W,3]."""
    import jittor as jt
    import numpy as np
    from models.adain import mse, style_loss, stylize
    from pipeline.pretrain_2d import to_nchw
    h, w = views[0].shape[:2]
    with jt.no_grad():
        s = to_nchw([style])
        style_taps = encoder(s)
        losses, dists, outs = [], [], []
        for i in range(0, len(views), batch):
            chunk = views[i:i + batch]
            c = to_nchw(chunk)
            out = stylize(encoder, decoder, c, s)[:, :, :h, :w].clamp(0.0, 1.0)
            taps = encoder(out)
            losses.append(style_loss(taps, style_taps).item() * len(chunk))
            dists.append(mse(taps[-1], encoder.encode(c)).item() * len(chunk))
            outs.append(out.numpy().transpose(0, 2, 3, 1))
    n = len(views)
    return sum(losses) / n, sum(dists) / n, np.concatenate(outs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decoders", nargs="+", required=True,
                    help="label=path (.pth, .pkl, or a folder of decoder_train_<iter>.pkl); the first is the baseline")
    ap.add_argument("--vgg", default="pretrained/vgg_normalised_conv3_1.pth")
    ap.add_argument("--views", default="data/nerf_llff_data/fern/images_4", help="content images folder")
    ap.add_argument("--n_views", type=int, default=20, help="the first N views of the folder")
    ap.add_argument("--style_dir", default="all_styles")
    ap.add_argument("--styles", default=",".join(DEFAULT_STYLES), help="comma-separated style names")
    ap.add_argument("--size", type=int, default=256, help="short side of views and styles")
    ap.add_argument("--grid_view", type=int, default=0, help="which view the grid shows")
    ap.add_argument("--out", default=None, help="JSON of the figures")
    ap.add_argument("--grid", default=None, help="JPEG grid: a row per style")
    ap.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    args = ap.parse_args(argv)
    runtime.setup(device=args.device)
    import numpy as np
    from dataset.image_folder import list_images, load_image, resize_short_side
    from models.vgg import VGGEncoder

    decoders = [d for spec in args.decoders for d in decoder_files(spec)]
    encoder = VGGEncoder.from_pth(args.vgg)
    channels = encoder.deepest_channels
    views = [resize_short_side(load_image(p), args.size) for p in list_images(args.views)[:args.n_views]]
    style_paths = {os.path.splitext(os.path.basename(p))[0]: p for p in list_images(args.style_dir)}
    names = [n.strip() for n in args.styles.split(",") if n.strip()]
    missing = [n for n in names if n not in style_paths]
    if missing:
        raise SystemExit(f"error: --styles {','.join(missing)} not in {args.style_dir}")
    styles = {n: resize_short_side(load_image(style_paths[n]), args.size) for n in names}
    print(runtime.summary(), flush=True)
    print(f"{len(views)} views of {args.views} at {views[0].shape[1]}x{views[0].shape[0]}, "
          f"{len(names)} styles, {len(decoders)} decoders", flush=True)

    rows, grid_rows = [], {n: [views[args.grid_view], resize_to(styles[n], views[0].shape[:2])] for n in names}
    newest = {}
    for label, path in decoders:
        t0 = time.time()
        dec = load_decoder(path, channels)
        per_style = {}
        for n in names:
            sl, cd, outs = measure(encoder, dec, views, styles[n])
            per_style[n] = {"style_loss": sl, "content_distance": cd}
            newest.setdefault(label.split("@")[0], {})[n] = outs[args.grid_view]
        rows.append({"decoder": label, "path": path, "styles": per_style,
                     "style_loss": float(np.mean([v["style_loss"] for v in per_style.values()])),
                     "content_distance": float(np.mean([v["content_distance"] for v in per_style.values()]))})
        base = rows[0]
        r = rows[-1]
        r["style_ratio"] = r["style_loss"] / base["style_loss"]
        r["content_ratio"] = r["content_distance"] / base["content_distance"]
        print(f"{label:24s} style loss {r['style_loss']:8.4f} ({r['style_ratio']:.3f}x)  content distance "
              f"{r['content_distance']:8.4f} ({r['content_ratio']:.2f}x)  [{time.time() - t0:.1f} s]", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"runtime": runtime.summary(), "views": args.views, "n_views": len(views),
                       "size": args.size, "styles": names, "rows": rows}, f, indent=1)
    if args.grid:
        for label, outs in newest.items():
            for n in names:
                grid_rows[n].append(outs[n])
        img = np.concatenate([np.concatenate(grid_rows[n], axis=1) for n in names], axis=0)
        write_jpg(args.grid, img)
        print(f"grid: {args.grid} (columns: content | style | {' | '.join(newest)})")
    return 0


def resize_to(img, hw):
    """img scaled to cover hw (h, w) and centre-cropped to it."""
    import cv2
    h, w = hw
    s = max(h / img.shape[0], w / img.shape[1])
    big = cv2.resize(img, (max(w, round(img.shape[1] * s)), max(h, round(img.shape[0] * s))),
                     interpolation=cv2.INTER_AREA)
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y:y + h, x:x + w]


def write_jpg(path, img):
    import cv2
    import numpy as np
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    sys.exit(main())
