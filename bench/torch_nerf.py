"""The NeRF training step in PyTorch: the yardstick bench/bench_nerf.py times beside Jittor's.

Written as nerf-pytorch writes it (positional encoding, 8x256 MLPs with the skip after layer 4,
view directions, stratified coarse samples, sample_pdf fine samples merged by torch.sort,
raw2outputs with density noise, Adam) at the project's options: the fine samples read the CDF
at fixed positions unless --fine_sampling random, as render/samplers.py does. Nothing here is
a project dependency: PyTorch is imported only when this module's functions run, and the
benchmark skips it where PyTorch is not installed. With the Jittor NeRF's weights copied in
(`TorchNeRFStep(args, near, far, state=NeRFSystem.state())`) it renders the same images
(tests/test_torch_nerf.py), so both benchmarks time the same arithmetic.
"""
import numpy as np


def available():
    import importlib
    try:  # an installed PyTorch can still fail to import (a CUDA build without its libraries)
        importlib.import_module("torch")
        return True
    except ImportError:
        return False


def _modules(args, state):
    import torch
    from torch import nn

    def embed(x, n_freqs):  # [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)]
        out = [x]
        for k in range(n_freqs):
            out += [torch.sin(x * 2.0 ** k), torch.cos(x * 2.0 ** k)]
        return torch.cat(out, -1)

    class NeRF(nn.Module):
        def __init__(self, D, W, in_ch, in_views, skips=(4,)):
            super().__init__()
            self.skips = tuple(i for i in skips if i < D - 1)
            widths = [in_ch] + [W + in_ch if i in self.skips else W for i in range(D - 1)]
            self.pts_linears = nn.ModuleList([nn.Linear(c, W) for c in widths])
            self.alpha_linear = nn.Linear(W, 1)
            self.feature_linear = nn.Linear(W, W)
            self.views_linear = nn.Linear(W + in_views, W // 2)
            self.rgb_linear = nn.Linear(W // 2, 3)

        def forward(self, x, d):
            h = x
            for i, layer in enumerate(self.pts_linears):
                h = torch.relu(layer(h))
                if i in self.skips:
                    h = torch.cat([x, h], -1)
            sigma = self.alpha_linear(h).squeeze(-1)
            h = torch.relu(self.views_linear(torch.cat([self.feature_linear(h), d], -1)))
            return torch.sigmoid(self.rgb_linear(h)), sigma

    in_ch, in_views = 3 * (1 + 2 * args.embed_freq_coor), 3 * (1 + 2 * args.embed_freq_dir)
    nets = {"coarse": NeRF(args.netdepth, args.netwidth, in_ch, in_views),
            "fine": NeRF(args.netdepth_fine, args.netwidth_fine, in_ch, in_views)}
    if state is not None:  # the Jittor NeRF's weights (same names and [out, in] layout)
        for level, net in nets.items():
            net.load_state_dict({k: torch.tensor(np.asarray(v.numpy() if hasattr(v, "numpy") else v))
                                 for k, v in state[level].items()})
    return nets, embed


class TorchNeRFStep:
    """PyTorch NeRF (coarse + fine, view directions) with render(...) and step(batch)."""

    def __init__(self, args, near, far, state=None, device=None):
        import torch
        if not args.use_viewdir or args.N_samples_fine < 1:
            raise ValueError("TorchNeRFStep: the yardstick is the fern workload (view directions, a fine level)")
        self.torch, self.args, self.near, self.far = torch, args, float(near), float(far)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        nets, self.embed = _modules(args, state)
        self.nets = {k: v.to(self.device) for k, v in nets.items()}
        self.opt = torch.optim.Adam([p for n in self.nets.values() for p in n.parameters()],
                                    lr=args.lrate, betas=(0.9, 0.999))

    def _level(self, net, rays_o, rays_d, viewdirs, z, noise_std):
        torch = self.torch
        pts = rays_o[:, None] + rays_d[:, None] * z[..., None]
        d = self.embed(viewdirs, self.args.embed_freq_dir)[:, None].expand(-1, z.shape[1], -1)
        rgb, sigma = net(self.embed(pts, self.args.embed_freq_coor), d)
        dists = torch.cat([z[:, 1:] - z[:, :-1], torch.full_like(z[:, :1], 1e10)], -1)
        dists = dists * torch.linalg.norm(rays_d, dim=-1, keepdim=True)
        if noise_std > 0:
            sigma = sigma + torch.randn_like(sigma) * noise_std
        alpha = 1.0 - torch.exp(-torch.relu(sigma) * dists)
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], -1), -1)[:, :-1]
        weights = alpha * trans
        return {"rgb": (weights[..., None] * rgb).sum(1), "weights": weights, "z_vals": z}

    def _sample_pdf(self, bins, weights, n, det):
        torch = self.torch
        pdf = (weights + 1e-5) / (weights + 1e-5).sum(-1, keepdim=True)
        cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
        if det:
            u = torch.linspace(0.0, 1.0, n, device=bins.device).expand(cdf.shape[0], n).contiguous()
        else:  # stratified, as render/samplers.py's cdf_positions
            u = (torch.arange(n, device=bins.device) + torch.rand(cdf.shape[0], n, device=bins.device)) / n
        inds = torch.searchsorted(cdf, u, right=True)
        below, above = (inds - 1).clamp(min=0), inds.clamp(max=cdf.shape[-1] - 1)
        cdf_lo, cdf_hi = cdf.gather(1, below), cdf.gather(1, above)
        bin_lo, bin_hi = bins.gather(1, below), bins.gather(1, above)
        denom = torch.where(cdf_hi - cdf_lo < 1e-5, torch.ones_like(cdf_lo), cdf_hi - cdf_lo)
        return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)

    def render(self, rays_o, rays_d, viewdirs, perturb, noise_std):
        """rays [R,3] (torch, on self.device) -> {"coarse": level, "fine": level}, each rgb [R,3]."""
        torch, a = self.torch, self.args
        t = torch.linspace(0.0, 1.0, a.N_samples, device=rays_o.device)
        z = (self.near * (1.0 - t) + self.far * t).expand(rays_o.shape[0], a.N_samples)
        if perturb:
            mids = 0.5 * (z[:, 1:] + z[:, :-1])
            upper, lower = torch.cat([mids, z[:, -1:]], -1), torch.cat([z[:, :1], mids], -1)
            z = lower + (upper - lower) * torch.rand_like(z)
        out = {"coarse": self._level(self.nets["coarse"], rays_o, rays_d, viewdirs, z, noise_std)}
        with torch.no_grad():
            det = getattr(a, "fine_sampling", "det") != "random"
            fine_z = self._sample_pdf(0.5 * (z[:, 1:] + z[:, :-1]), out["coarse"]["weights"][:, 1:-1],
                                      a.N_samples_fine, det)
            z_all, _ = torch.sort(torch.cat([z, fine_z], -1), -1)
        out["fine"] = self._level(self.nets["fine"], rays_o, rays_d, viewdirs, z_all, noise_std)
        return out

    def step(self, batch):
        """One training step on a PixelRays.sample batch (NumPy): MSE of both levels, Adam."""
        torch, a = self.torch, self.args
        t = {k: torch.as_tensor(batch[k], device=self.device) for k in ("rays_o", "rays_d", "viewdirs", "rgb")}
        out = self.render(t["rays_o"], t["rays_d"], t["viewdirs"], a.perturb > 0, a.sigma_noise_std)
        loss = ((out["coarse"]["rgb"] - t["rgb"]) ** 2).mean() + ((out["fine"]["rgb"] - t["rgb"]) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()
