"""Stage 5: latent codes - the VAE prior of each style.

Each style's per-channel mean and std of the deepest VGG tap (the same
statistics the VAE is trained on) is encoded to (mu_s, logvar_s).  The VAE
comes from --vae_pth_path (written by `train_style_modules.py --task vae`);
if that file does not exist, a VAE is trained here on the styles of
--vae_style_dir for --vae_steps steps and saved as `<expdir>/vae.pkl`.
"""
import os

import jittor as jt
import numpy as np
from tqdm import tqdm

from core.checkpoint import load, load_module_state
from models.vae import StyleVAE, style_features


def style_statistics(encoder, images):
    """[S, 2C] per-channel mean and std of the deepest tap, one row per image."""
    with jt.no_grad():
        return np.concatenate([style_features(encoder, jt.array(img.transpose(2, 0, 1)[None])).numpy()
                               for img in images], 0).astype(np.float32)


def build_vae(args, in_dim):
    return StyleVAE(in_dim=in_dim, latent=args.vae_latent, hidden=args.vae_w, depth=args.vae_d,
                    kl_lambda=args.vae_kl_lambda)


def train_vae(vae, stats, steps, lr=1e-4, batch=8, seed=0):
    opt = jt.optim.Adam(vae.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in tqdm(range(steps), desc="vae", dynamic_ncols=True):
        idx = rng.integers(len(stats), size=min(batch, len(stats)))
        _, _, total = vae.loss(jt.array(stats[idx]))
        opt.step(total)
    return vae


def load_or_train_vae(args, encoder, expdir, train_images, log=print):
    in_dim = 2 * encoder.deepest_channels
    vae = build_vae(args, in_dim)
    for path in (args.vae_pth_path, os.path.join(expdir, "vae.pkl")):
        if path and os.path.exists(path):
            ck = load(path, required_keys=("vae",))
            load_module_state(vae, ck["vae"], f"{path} (VAE; expects input {in_dim} = 2 x deepest VGG channels)")
            log(f"VAE from {path}")
            return vae
    log(f"no VAE at {args.vae_pth_path}: training one on {len(train_images)} style images "
        f"for {args.vae_steps} steps")
    stats = style_statistics(encoder, train_images)
    train_vae(vae, stats, args.vae_steps, seed=args.seed)
    vae.save(os.path.join(expdir, "vae.pkl"))  # models/vae.py's layout (config included): StyleVAE.load reads it
    return vae


def style_priors(vae, encoder, style_images):
    """(mu [S,L], logvar [S,L]) of the styles being used."""
    stats = style_statistics(encoder, style_images)
    with jt.no_grad():
        mu, logvar = vae.encode(jt.array(stats))
        return mu.numpy().astype(np.float32), logvar.numpy().astype(np.float32)
