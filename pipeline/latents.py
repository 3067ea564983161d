"""Stage 5: latent codes - the VAE prior of each style.

Each style's per-channel mean and std of the deepest VGG tap (the statistics the
VAE is trained on, at --style_size) is encoded to (mu_s, logvar_s).  The VAE comes
from --vae_pth_path (written by `train_style_modules.py --task vae`) or an earlier
run's `<expdir>/vae.pkl`; if neither exists, the same trainer as
`train_style_modules.py --task vae` runs here on --vae_style_dir for --vae_steps
iterations and writes `<expdir>/vae.pkl`.
"""
import os

import jittor as jt
import numpy as np

from models.vae import StyleVAE, style_statistics
from pipeline.style_selection import vae_style_dir  # noqa: F401 (also read from here)


def vae_training_args(args, style_dir, save_dir):
    """train_style_modules.py --task vae's options for an in-pipeline run (its defaults for the
    learning rate and the batch), parsed by its own parser."""
    from core.config import parse_pretrain_args
    opts = {"vgg": args.vgg_pth_path, "style_dir": style_dir, "image_size": args.style_size, "save_dir": save_dir,
            "max_iter": args.vae_steps, "save_model_interval": max(1, args.vae_steps), "keep": 1, "seed": args.seed,
            "vae_latent": args.vae_latent, "vae_w": args.vae_w, "vae_d": args.vae_d,
            "vae_kl_lambda": args.vae_kl_lambda}
    return parse_pretrain_args(["--task", "vae"] + [x for k, v in opts.items() for x in (f"--{k}", str(v))])


def vae_file(args, expdir):
    """The VAE this run uses: --vae_pth_path, else an earlier run's <expdir>/vae.pkl; None if neither."""
    return next((p for p in (args.vae_pth_path, os.path.join(expdir, "vae.pkl")) if p and os.path.exists(p)), None)


def load_or_train_vae(args, encoder, expdir, log=print):
    in_dim = 2 * encoder.deepest_channels
    path = vae_file(args, expdir)
    if path is not None:
        vae = StyleVAE.load(path)
        if vae.in_dim != in_dim:
            raise ValueError(f"{path}: a VAE over {vae.in_dim} statistics, but the VGG encoder gives "
                             f"{in_dim} (= 2 x {encoder.deepest_channels} channels); train one for this "
                             f"encoder (train_style_modules.py --task vae) or remove the file")
        log(f"VAE from {path}")
        return vae
    from pipeline.pretrain_2d import train_vae
    style_dir = vae_style_dir(args)
    log(f"no VAE at {args.vae_pth_path}: training one on {style_dir} for {args.vae_steps} iterations")
    return StyleVAE.load(train_vae(vae_training_args(args, style_dir, expdir), log))


def style_priors(vae, encoder, style_images):
    """(mu [S,L], logvar [S,L]) of the styles being used."""
    stats = style_statistics(encoder, style_images)
    with jt.no_grad():
        mu, logvar = vae.encode(jt.array(stats))
        return mu.numpy().astype(np.float32), logvar.numpy().astype(np.float32)
