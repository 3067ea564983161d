"""Which styles a run uses (--style over --styledir or a trained model's list), their images,
and the 2D networks they go through: one place, so that stylized rendering and evaluation see
exactly what training saw.
"""
import os

from dataset.image_folder import list_images, load_image, resize_short_side


def style_indices(spec, names, where):
    """Indices into `names` for --style `spec`: an index, a file name or a name without
    extension, or several of these separated by commas (in that order, no repeats); all of
    them when spec is None.  `where` names the list in errors."""
    if spec is None:
        return list(range(len(names)))
    keep = []
    for item in (x.strip() for x in str(spec).split(",")):
        k = _style_index(item, names, where)
        if k not in keep:
            keep.append(k)
    return keep


def _style_index(item, names, where):
    if item.isdigit():
        k = int(item)
        if not 0 <= k < len(names):
            raise ValueError(f"--style {k} is out of range: {where} has {len(names)} styles "
                             f"(0..{len(names) - 1}: {', '.join(names)})")
        return k
    for k, n in enumerate(names):
        if item in (n, os.path.splitext(n)[0]):
            return k
    raise ValueError(f"--style {item!r} is not in {where} (have: {', '.join(names)})")


def select_styles(args):
    """(names, paths) of the styles in --styledir, or only --style."""
    paths = list_images(args.styledir)
    names = [os.path.basename(p) for p in paths]
    keep = style_indices(args.style, names, args.styledir)
    return [names[k] for k in keep], [paths[k] for k in keep]


def load_style_images(paths, short_side):
    return [resize_short_side(load_image(p), short_side) for p in paths]


def load_style_networks(args, log=print):
    """Frozen VGG encoder and the (pre-fine-tune) AdaIN decoder."""
    from models.decoder import Decoder, resolve_decoder_path
    from models.vgg import VGGEncoder, resolve_vgg_path
    encoder = VGGEncoder.from_pth(resolve_vgg_path(args.vgg_pth_path))
    # a .pth of AdaIN's layout or our own pickle (e.g. train_style_modules' decoder_finetuned.pkl)
    decoder = Decoder.from_file(resolve_decoder_path(args.decoder_pth_path, encoder.deepest_channels),
                                encoder.deepest_channels)
    return encoder, decoder


def vae_style_dir(args):
    """The styles a VAE (and a pre-trained decoder) learn from: --vae_style_dir, else --styledir."""
    return args.vae_style_dir if os.path.isdir(args.vae_style_dir) else args.styledir
