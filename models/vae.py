"""Style VAE over channel statistics of the deepest VGG tap.

Input x [B, 2C] = per-channel means then stds of the deepest tap (C = 512 for relu4_1,
256 for relu3_1).  With depth d (the original's --vae_d 4) and hidden width w (--vae_w 512):
    encoder: in -> w -> ... -> w  (d-1 linear+ReLU)  -> mu, logvar  (latent each)
    decoder: latent -> w -> ... -> w  (d-1 linear+ReLU)  -> in  (last linear, no activation)
Loss: recon = sum over dims of the batch-mean squared error; kl = batch mean of
KL(N(mu, exp(logvar)) || N(0, I)); total = recon + kl_lambda * kl.

Files (`save`/`load`): checkpoint pickles {"vae": state dict, "in_dim", "config"}, the
layout pipeline/latents.py reads; `load` also reads the original release's `vae.pth` (its
torch state dict, core/original_ckpt.py), the sizes taken from its weights.
"""
import jittor as jt

from core import checkpoint
from core.original_ckpt import vae_from_original
from core.pth import is_pth_file, load_state_dict
from models.adain import channel_stats


def style_features(encoder, image):
    """image [B,3,H,W] in [0,1] -> [B, 2C]: concat(mean, std) per channel of the deepest tap.

    Statistics are per channel over H*W (channel_stats), never a reshape that mixes
    channels (a defect of the original).
    """
    mean, std = channel_stats(encoder.encode(image))
    return jt.concat([mean, std], dim=1)


def style_statistics(encoder, images):
    """Style images (float [H,W,3] in [0,1], any sizes) -> [S, 2C] float32 NumPy rows of
    style_features, one image at a time."""
    import numpy as np
    with jt.no_grad():
        rows = [style_features(encoder, jt.array(np.ascontiguousarray(img.transpose(2, 0, 1)[None]))).numpy()
                for img in images]
    return np.concatenate(rows, 0).astype(np.float32)


def _mlp(sizes, last_relu):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(jt.nn.Linear(sizes[i], sizes[i + 1]))
        if last_relu or i < len(sizes) - 2:
            layers.append(jt.nn.ReLU())
    return jt.nn.Sequential(*layers)


class StyleVAE(jt.Module):
    def __init__(self, in_dim=1024, latent=32, hidden=512, depth=4, kl_lambda=0.1):
        super().__init__()
        if depth < 1 or in_dim < 1 or latent < 1 or hidden < 1:
            raise ValueError(f"StyleVAE: in_dim, latent, hidden and depth must be >= 1 "
                             f"(got {in_dim}, {latent}, {hidden}, {depth})")
        self.config = dict(in_dim=in_dim, latent=latent, hidden=hidden, depth=depth, kl_lambda=kl_lambda)
        self.in_dim, self.latent, self.kl_lambda = in_dim, latent, kl_lambda
        trunk = [in_dim] + [hidden] * (depth - 1)
        self.encoder = _mlp(trunk, last_relu=True) if depth > 1 else None
        self.fc_mu = jt.nn.Linear(trunk[-1], latent)
        self.fc_logvar = jt.nn.Linear(trunk[-1], latent)
        self.decoder = _mlp([latent] + [hidden] * (depth - 1) + [in_dim], last_relu=False)

    def _check(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"StyleVAE expects [B,{self.in_dim}] style statistics, got {tuple(x.shape)}")

    def encode(self, x):
        """x [B,in] -> (mu [B,latent], logvar [B,latent])."""
        self._check(x)
        h = self.encoder(x) if self.encoder is not None else x
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        """z [B,latent] -> x_hat [B,in]."""
        return self.decoder(z)

    def execute(self, x, noise=None):
        """-> (x_hat, mu, logvar); z = mu + exp(logvar/2) * noise, noise ~ N(0,1) unless given."""
        mu, logvar = self.encode(x)
        if noise is None:
            noise = jt.randn(mu.shape)
        z = mu + (logvar * 0.5).exp() * noise
        return self.decode(z), mu, logvar

    def loss(self, x, noise=None):
        """x [B,in] -> (recon, kl, total), scalars."""
        x_hat, mu, logvar = self(x, noise)
        recon = (x_hat - x).sqr().mean(dim=0).sum()
        kl = (-0.5 * (1.0 + logvar - mu.sqr() - logvar.exp()).sum(dim=1)).mean()
        return recon, kl, recon + self.kl_lambda * kl

    def save(self, path, extra=None):
        state = {"vae": self.state_dict(), "in_dim": self.in_dim, "config": dict(self.config)}
        state.update(extra or {})
        checkpoint.save_atomic(state, path)
        return path

    @classmethod
    def load(cls, path, **overrides):
        """A VAE from a file written by save() (its stored config, unless overridden) or the
        original's vae.pth."""
        if is_pth_file(path):
            config, state = vae_from_original(load_state_dict(path), path)
        else:
            ck = checkpoint.load(path, required_keys=("vae",))
            config, state = dict(ck.get("config") or {"in_dim": ck.get("in_dim", 1024)}), ck["vae"]
        config.update(overrides)
        vae = cls(**config)
        checkpoint.load_module_state(vae, state, f"{path} (style VAE)")
        return vae
