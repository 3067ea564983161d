"""Stages 2-6 in order; each reuses what an earlier run finished.

Also the shared loading of the 2D style networks and the style images, so that
stylized rendering sees exactly what training saw.
"""
import os


from core import timing
from dataset.image_folder import list_images, load_image, resize_short_side
from pipeline import decoder_finetune, geometry, latents, style_stage, targets
from pipeline.nerf_stage import load_trained_nerf
from render.options import RenderOptions


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


def prepare(args, scene, expdir, log=print):
    """Stages 2-5: everything style training and stylized rendering need."""
    system, nerf_step, _ = load_trained_nerf(args, expdir)
    with timing.stage("2 geometry"):
        geo = geometry.load_or_generate(args, scene, expdir, system, nerf_step, log)
    names, paths = select_styles(args)
    encoder, decoder = load_style_networks(args, log)
    style_imgs = load_style_images(paths, args.style_size)
    small_styles = load_style_images(paths, args.finetune_size // 2)  # style losses of the fine-tune
    with timing.stage("3 decoder fine-tune"):
        decoder = decoder_finetune.finetune_decoder(args, geo, encoder, decoder, small_styles, expdir, log)
    with timing.stage("4 stylized targets"):
        tgts = targets.load_or_make_targets(args, geo, encoder, decoder, list(zip(names, style_imgs)), expdir, log)
    with timing.stage("5 latents (VAE)"):
        # statistics at --style_size, as train_style_modules.py --task vae computes them
        vae = latents.load_or_train_vae(args, encoder, expdir, log)
        mu, logvar = latents.style_priors(vae, encoder, style_imgs)
    return dict(system=system, geo=geo, names=names, targets=tgts, mu=mu, logvar=logvar,
                encoder=encoder, decoder=decoder)


def run_style_stages(args, scene, expdir, log=print):
    if args.total_step <= args.origin_step:
        log("total_step <= origin_step: no style training asked for")
        return None
    p = prepare(args, scene, expdir, log)
    opts = RenderOptions.from_args(args, scene, "frozen_geometry")  # no density noise on a frozen NeRF
    with timing.stage("6 style training"):
        model = style_stage.train_style(args, p["system"], p["geo"], p["targets"], p["mu"], p["logvar"],
                                        p["names"], expdir, opts, log)
    log(f"style training finished at step {args.total_step}; styles: {', '.join(p['names'])}")
    return model
