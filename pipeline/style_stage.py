"""Stage 6: style training - the style MLP and the latent codes mimic the 2D targets.

The NeRF's density is frozen; colour comes from the style MLP (shared by the
coarse and the fine pass) fed with the encoded position and the latent code of
the ray's (style, view).  Each step draws --batch_size_style random
(style, view, pixel) triples directly (no styles x views x H x W index array),
builds their rays in closed form, and minimises

    MSE(coarse, target) + MSE(fine, target) + logp_weight * logp(z)

Checkpoints `style_<step>.pkl` (style MLP, latents, optimizers) every
--i_weights steps, newest --ckp_num kept; resumes from the newest.  With a Mimic
(pipeline/mimic.py) the 2D <- 3D mimic step runs too, its decoder kept in the checkpoints.
"""
import os

import jittor as jt
import numpy as np

from core.checkpoint import CheckpointManager, adam_state, load_adam_state, load_module_state
from core.config import VIEW_REFS
from core.train_loop import TrainLoop, resume
from core.optim import Adam
from dataset.rays import pixel_rays
from models.hash_grid import HashGrid
from models.style_mlp import HashStyleMLP, LatentCodes, StyleMLP
from pipeline import style_inputs
from pipeline.style_patch import (patch_nn_loss, patch_pixels, patch_split_loss, patch_style_image_loss,
                                  patch_texture_loss, style_image_features, style_image_stats, target_window_losses,
                                  window_target, WindowBalance)
from pipeline.targets import target_hwf
from render.cached_samples import cached_points, composite_cached, jittered
from render.occupancy import scene_box
from render.renderer import render_rays

LATENT_LR = 1e-3


class StyleField:
    """A renderer field: density from a frozen NeRF, colour from the style MLP with a latent code.

    latent: [L] (one code for every ray) or [R,L] (one per ray).  style: the style index of every
    ray (an int or a models.style_mlp.StyleMix) or of each (a NumPy array [R]), for per-style
    hash grids (--hash_per_style).
    """

    def __init__(self, nerf, style_mlp, embed_xyz, latent, style=None):
        self.nerf, self.style_mlp, self.embed_xyz, self.latent = nerf, style_mlp, embed_xyz, latent
        self.style = style

    def density(self, pts):
        """pts [R,S,3] -> sigma_raw [R,S] of the frozen NeRF (for render_rays' share_color)."""
        R, S = pts.shape[0], pts.shape[1]
        sigma, _ = self.nerf.density(self.embed_xyz(pts.reshape(-1, 3)))
        return sigma.stop_grad().reshape(R, S)

    def __call__(self, pts, viewdirs=None):
        R, S = pts.shape[0], pts.shape[1]
        x = self.embed_xyz(pts.reshape(-1, 3))
        sigma, _ = self.nerf.density(x)
        return self._rgb(x, self.latent, R, S, self.style), sigma.stop_grad().reshape(R, S)

    def colors(self, pts):
        """The style MLP's colour [R,S,3] at points [R,S,3], without the density (cached samples)."""
        return self._rgb(self.embed_xyz(pts.reshape(-1, 3)), self.latent, pts.shape[0], pts.shape[1],
                         self.style)

    def _rgb(self, x, lat, R, S, style=None):
        """The style MLP's colour [R,S,3] at embedded points x [R*S,C] with latent [L] or [R,L]
        and style None, an int or [R] (each ray's style, repeated for its S points)."""
        if lat.ndim == 1:
            lat = lat.reshape(1, -1).broadcast((R * S, lat.shape[0]))
        else:
            lat = lat.reshape(R, 1, -1).broadcast((R, S, lat.shape[-1])).reshape(R * S, -1)
        if isinstance(style, np.ndarray):
            style = np.repeat(style, S)
        return self.style_mlp(x, lat, style).reshape(R, S, 3)


def style_fields(system, style_mlp, latent, style=None):
    """The coarse and fine StyleFields; style: StyleField's (the rays' style indices)."""
    return (StyleField(system.coarse, style_mlp, system.embed_xyz, latent, style),
            StyleField(system.fine, style_mlp, system.embed_xyz, latent, style))


class StyleColors(StyleField):
    """The fine field of render_image_colors: the frozen NeRF's density and the style MLP's colour
    with latents[k] (each [L], one code for every ray) for colour k, of style styles[k]."""

    def __init__(self, nerf, style_mlp, embed_xyz, latents, styles=None):
        super().__init__(nerf, style_mlp, embed_xyz, None)
        self.latents = list(latents)
        self.styles = list(styles) if styles is not None else [None] * len(self.latents)
        if len(self.styles) != len(self.latents):
            raise ValueError(f"StyleColors: {len(self.latents)} latents and {len(self.styles)} styles")

    def color(self, pts, k):
        return self._rgb(self.embed_xyz(pts.reshape(-1, 3)), self.latents[k], pts.shape[0], pts.shape[1],
                         self.styles[k])


def sample_batch(rng, n_styles, n_views, H, W, batch):
    """Uniform random (style, view, row, col) quadruples."""
    return (rng.integers(n_styles, size=batch), rng.integers(n_views, size=batch),
            rng.integers(H, size=batch), rng.integers(W, size=batch))


def gather_targets(targets, s, v, r, c):
    """[B,3] float32 target colours (0-255) of the quadruples, read from each style's
    (memory-mapped) target stack [views,H,W,3]."""
    target = np.empty((len(s), 3), np.float32)
    for k in np.unique(s):
        m = s == k
        target[m] = targets[k][v[m], r[m], c[m]]
    return target


def style_width(args):
    """The style MLP's width: --style_W, or --netwidth (the original's) when it is 0."""
    return args.style_W or args.netwidth


def style_lrate(args, step):
    """The style MLP's learning rate at `step`: --style_lrate (or --lrate) falling 10x every
    --lrate_decay steps from --origin_step."""
    return (args.style_lrate or args.lrate) * lr_decay(args, step)


def lr_decay(args, step):
    """The style stage's learning-rate factor at `step`: 10x lower every --lrate_decay steps from
    --origin_step (the MLP's and the hash grid's rates share it)."""
    return 0.1 ** ((step - args.origin_step) / args.lrate_decay)


def style_encoding(args):
    """What the style MLP sees beside the position's encoding (--style_encoding): None, or the
    hash grid's settings (kept in the checkpoint, which a render then builds its model from)."""
    if args.style_encoding == "pe":
        return None
    encoding = {"levels": int(args.hash_levels), "log2_size": int(args.hash_log2_size),
                "max_res": int(args.hash_max_res)}
    if args.hash_per_style:  # (the key only where set: the shared grid's record stays as it was)
        encoding["per_style"] = True
    return encoding


def style_box(args, geo, opts):
    """The box of the hash grid: every training view's ray segments [near, far], in the space
    the renderer samples (NDC for LLFF scenes)."""
    return scene_box(geo.hwf, geo.c2ws, opts.near, opts.far, ndc=not args.no_ndc)


class StyleModel:
    """Style MLP + latent codes, with their optimizers and checkpoint state.  width: the MLP's
    (a checkpoint's own when loading one; style_width(args) otherwise).  encoding: style_encoding()'s
    value (a checkpoint's own when loading one); with a hash grid, box = (lo, hi) of its points
    (a loaded checkpoint brings its own)."""

    def __init__(self, args, mu, logvar, n_views, in_ch, style_names, width=None, encoding="args", box=None):
        self.style_names, self.mu, self.logvar, self.n_views = list(style_names), mu, logvar, n_views
        self.width = int(width or style_width(args))
        self.encoding = style_encoding(args) if encoding == "args" else encoding
        latent_dim = mu.shape[1]
        if self.encoding is None:
            self.mlp = StyleMLP(D=args.style_D, W=self.width, input_ch=in_ch, latent_dim=latent_dim)
            grid_params = []
        else:
            # without a box (a checkpoint to load), any box: the checkpoint's own replaces it
            lo, hi = box if box is not None else (-np.ones(3), np.ones(3))

            grid = HashGrid(lo, hi, n_levels=self.encoding["levels"], log2_size=self.encoding["log2_size"],
                            max_res=self.encoding["max_res"], seed=args.seed,
                            n_tables=len(self.style_names) if self.encoding.get("per_style") else 1)
            self.mlp = HashStyleMLP(grid, D=args.style_D, W=self.width, input_ch=in_ch, latent_dim=latent_dim)
            grid_params = self.mlp.grid_tables()
        self.latents = LatentCodes(mu, logvar, n_views, sigma_scale=args.sigma_scale,
                                   rng=np.random.default_rng(args.seed))
        # one Adam: the MLP at style_lrate (decayed), the latent codes at 1e-3, the hash grid's
        # table (if any) at --hash_lrate (decayed alike)
        lr = style_lrate(args, args.origin_step)
        in_grid = {id(p) for p in grid_params}
        groups = [{"params": [p for p in self.mlp.parameters() if id(p) not in in_grid], "lr": lr},
                  {"params": self.latents.parameters(), "lr": LATENT_LR}]
        if grid_params:
            groups.append({"params": grid_params, "lr": args.hash_lrate})
        self.opt = Adam(groups, lr=lr)

    def set_lrates(self, args, step):
        """The decayed learning rates at `step` (the latent codes' stays fixed)."""
        self.opt.param_groups[0]["lr"] = style_lrate(args, step)
        if len(self.opt.param_groups) > 2:  # the hash grid's table
            self.opt.param_groups[2]["lr"] = args.hash_lrate * lr_decay(args, step)

    def state(self, step):
        return {"step": step, "style_mlp": self.mlp.state_dict(), "latents": self.latents.state_dict(),
                "optimizer": adam_state(self.opt), "style_names": self.style_names, "mu": self.mu,
                "logvar": self.logvar, "n_views": self.n_views, "width": self.width, "encoding": self.encoding}

    def load(self, ck, source, with_optim=True):
        if ck.get("encoding") != self.encoding:
            raise ValueError(f"{source}: its style MLP was trained with {describe_encoding(ck.get('encoding'))}, "
                             f"now asked for {describe_encoding(self.encoding)}: use the same --style_encoding "
                             f"and --hash_* options, or another --expname / --no_reload")
        ck = stack_style_grids(ck)
        load_module_state(self.mlp, ck["style_mlp"], source + " (style MLP)")
        load_module_state(self.latents, ck["latents"], source + " (latent codes)")
        if with_optim:
            load_adam_state(self.opt, ck["optimizer"], source)


def stack_style_grids(ck):
    """A checkpoint whose per-style grids were modules of their own (grids.<k>.*, before the
    tables were stacked into one grid) in today's layout: the tables stacked in style order
    into grid.table, and likewise the hash grid's Adam moments (the optimizer's last group)."""
    sd = ck["style_mlp"]
    if "grids.0.table" not in sd:
        return ck
    n = 0
    while f"grids.{n}.table" in sd:
        n += 1
    stacked = {k: v for k, v in sd.items() if not k.startswith("grids.")}
    for key in [k[len("grids.0."):] for k in sd if k.startswith("grids.0.")]:
        stacked["grid." + key] = (np.concatenate([sd[f"grids.{i}.table"] for i in range(n)])
                                  if key == "table" else sd["grids.0." + key])
    out = dict(ck, style_mlp=stacked)
    opt = ck.get("optimizer")
    if opt is not None and len(opt["m"]) > 2 and len(opt["m"][-1]) == n:
        out["optimizer"] = dict(opt, m=opt["m"][:-1] + [[np.concatenate(opt["m"][-1])]],
                                v=opt["v"][:-1] + [[np.concatenate(opt["v"][-1])]])
    return out


def describe_encoding(encoding):
    if encoding is None:
        return "--style_encoding pe"
    return (f"--style_encoding hash --hash_levels {encoding['levels']} --hash_log2_size {encoding['log2_size']} "
            f"--hash_max_res {encoding['max_res']}" + (" --hash_per_style" if encoding.get("per_style") else ""))


def style_checkpoints(expdir, args):
    return CheckpointManager(expdir, "style", keep=args.ckp_num)


def train_style(args, system, geo, targets, mu, logvar, style_names, expdir, opts, log=print, mimic=None,
                encoder=None, samples=None, style_images=None, view_targets=None):
    """Train from the newest style checkpoint (or origin_step) to total_step, rendering as opts (a
    RenderOptions: the "frozen_geometry" phase) says; returns the StyleModel.  mimic: a
    pipeline.mimic.Mimic over the same `targets` list, or None (no mimic step).  encoder: the VGG
    encoder of the texture term (--style_patch_weight > 0).  samples: a SampleCache
    (pipeline/style_samples.py, --style_samples) to render the steps from, or None (the renderer).
    style_images: the styles' images at --style_size, in style_names' order (--style_patch_ref
    style or nn).  view_targets: the views' own stylizations beside propagated targets, as
    `targets` (--style_patch_ref view)."""
    model = StyleModel(args, mu, logvar, geo.n_views, system.embed_xyz.out_dim, style_names,
                       box=style_box(args, geo, opts) if args.style_encoding == "hash" else None)
    ckpts = style_checkpoints(expdir, args)
    start, path, ck = resume(ckpts, ("step", "style_mlp", "latents", "optimizer", "style_names"),
                             "style training", log, no_reload=args.no_reload, key="step")
    if path is not None:
        if list(ck["style_names"]) != list(style_names):
            raise ValueError(f"{path} was trained on styles {list(ck['style_names'])}, now asked for "
                             f"{list(style_names)}: use another --expname or --no_reload")
        style_inputs.check(args, expdir, path)
        model.load(ck, path)
    else:
        start = args.origin_step
        style_inputs.record(args, expdir)
    if mimic is not None:
        mimic.resume(ck if path is not None else None, str(path), start)
    if start >= args.total_step:
        return model
    for p in system.parameters():
        p.stop_grad()
    stats = None
    if args.style_patch_weight > 0 and args.style_patch_ref in ("style", "nn"):
        if encoder is None or style_images is None or len(style_images) != len(style_names):
            raise ValueError(f"--style_patch_ref {args.style_patch_ref} needs the VGG encoder and one image per style")
        of_image = style_image_stats if args.style_patch_ref == "style" else style_image_features
        stats = [of_image(encoder, im) for im in style_images]
    balance = None
    if args.style_patch_balance and len(style_names) > 1:
        reference = target_window_losses(encoder, targets, stats, args.style_patch,
                                         np.random.default_rng([args.seed, 7]))
        balance = WindowBalance(reference)
        if path is not None:
            balance.load(ck)
        log("texture windows per style (--style_patch_balance): in proportion to the rendered windows' texture "
            "loss over the targets' (" + ", ".join(f"{os.path.splitext(n)[0]} {r:.3g}"
                                                    for n, r in zip(style_names, reference)) + ")")
    step_fn = style_step(args, system, geo, targets, model, opts, encoder=encoder, samples=samples,
                         style_stats=stats, view_targets=view_targets, balance=balance)

    def state(s):
        return {**model.state(s), **(mimic.state() if mimic is not None else {}),
                **(balance.state() if balance is not None else {})}
    loop = TrainLoop("style training", start, args.total_step, every=args.i_weights, desc="style",
                     bar_base=args.origin_step, save=lambda s: ckpts.save(s, state(s)))
    for step in loop:
        loss_f, logp, texture = step_fn(step)
        if mimic is not None and mimic.due(step):
            mimic.step(step, model)
        if loop.due(args.i_print):
            shown = {"texture": f"{texture.item():.3f}"} if texture is not None else {}
            if balance is not None:
                shown["windows"] = "/".join(f"{sh:.2f}" for sh in balance.shares())
            loop.postfix(mse=f"{loss_f.item():.4f}", logp=f"{logp.item():.3f}", **shown, it_s=f"{loop.rate():.2f}")
    if balance is not None:
        log("texture windows per style at the end: " + ", ".join(
            f"{os.path.splitext(n)[0]} {sh:.0%}" for n, sh in zip(style_names, balance.shares())))
    return model


def logp_weight(args, step):
    """--logp_loss_lambda times --logp_loss_decay once per 1000 style steps (the original's schedule)."""
    return args.logp_loss_lambda * args.logp_loss_decay ** ((step - args.origin_step) // 1000)


def render_cached(samples, field, rays_o, rays_d, pixels, opts, rng):
    """A batch's levels from the SampleCache: the frozen density's cached weights, the style
    field's colours at each pixel's K samples (a turned window's rays take their nearest pixel's),
    jittered within their intervals while opts.perturb (as the renderer's samples are)."""
    v, r, c = pixels
    z, w_c, w_f, spread = samples.lookup(v, np.rint(r).astype(np.int64), np.rint(c).astype(np.int64))
    if opts.perturb:
        z = jittered(z, spread, rng)
    return composite_cached(field.colors(cached_points(rays_o, rays_d, z)), w_c, w_f, opts.white_bkgd)


def style_step(args, system, geo, targets, model, opts, share_color=True, encoder=None, samples=None,
               style_stats=None, view_targets=None, balance=None):
    """One optimisation step of the style stage as a function of the step number (its random
    batch is seeded by it): returns (fine MSE, logp, texture term or None) as Jittor scalars.
    share_color=False: the style MLP runs at both levels' depths (the same result, more work; for
    benchmarks).
    With --style_patch_weight > 0 the batch of every --style_patch_every-th step also holds one
    --style_patch window, whose fine render adds the texture term (pipeline/style_patch.py; needs
    the encoder).  samples: a SampleCache to render from instead of the renderer
    (render_cached).  style_stats: per style, its image's tap statistics (style_image_stats): the
    window is judged against those instead of its target window's (--style_patch_ref style); or
    its deepest features as unit rows (style_image_features): nearest-neighbour feature matching
    (--style_patch_ref nn).
    view_targets: per style, the views' own stylizations before propagation: the window is
    judged against the same window of those (--style_patch_ref view), or only its channel stds
    (--style_patch_ref view_std; the means against the target window's).
    balance: a WindowBalance (--style_patch_balance) that draws each texture window's style and
    learns from its loss, or None: every style alike."""
    H, W, focal = target_hwf(args, geo)  # the targets' camera (--target_factor)
    n_styles = len(targets)
    p = args.style_patch if args.style_patch_weight > 0 else 0
    if p and encoder is None:
        raise ValueError("--style_patch_weight > 0 needs the VGG encoder for the texture term")
    if p and args.style_patch_ref in VIEW_REFS and (view_targets is None or len(view_targets) != n_styles):
        raise ValueError(f"--style_patch_ref {args.style_patch_ref} needs the views' own stylizations, one array "
                         f"per style (pipeline/targets.load_view_targets)")

    def step_fn(step):
        side = p if step % args.style_patch_every == 0 else 0  # this step's window, if any
        rng = np.random.default_rng([args.seed, 6, step])
        s, v, r, c = sample_batch(rng, n_styles, geo.n_views, H, W, args.batch_size_style)
        target = gather_targets(targets, s, v, r, c)
        if side:  # the texture window's rays go last, its target read bilinearly
            ws, wv, wr, wc = patch_pixels(rng, n_styles, geo.n_views, H, W, side,
                                          None if balance is None else balance.shares())
            target = np.concatenate([target, window_target(targets[ws[0]][wv[0]], wr, wc)])
            if args.style_patch_ref in VIEW_REFS:  # the texture's reference: the view's own stylization
                own = jt.array(window_target(view_targets[ws[0]][wv[0]], wr, wc) / 255.0)
            s, v, r, c = (np.concatenate(x) for x in zip((s, v, r, c), (ws, wv, wr, wc)))
        rays_o, rays_d = pixel_rays(H, W, focal, geo.c2ws[v], r.astype(np.float64), c.astype(np.float64),
                                    ndc=not args.no_ndc)
        # NumPy ids: the range checks read them on the host (Vars would be fetched back)
        s_i, v_i = s.astype(np.int32), v.astype(np.int32)
        latent = model.latents.lookup(s_i, v_i)
        fields = style_fields(system, model.mlp, latent, s_i)
        if samples is not None:
            out = render_cached(samples, fields[1], rays_o, rays_d, (v, r, c), opts, rng)
        else:  # one style MLP for both levels: its colours evaluated once, at the fine depths
            out = render_rays(jt.array(rays_o), jt.array(rays_d), None, *fields, opts=opts, share_color=share_color)
        tgt = jt.array(target / 255.0)
        loss_c = ((out["coarse"]["rgb"] - tgt) ** 2).mean()
        loss_f = ((out["fine"]["rgb"] - tgt) ** 2).mean() if "fine" in out else loss_c * 0
        logp_w = logp_weight(args, step)
        logp = model.latents.logp_loss(s_i, v_i)
        loss = args.rgb_loss_lambda * (loss_c + loss_f) + logp_w * logp
        texture = None
        if side:
            rgb = out["fine" if "fine" in out else "coarse"]["rgb"]
            n = args.batch_size_style
            if args.style_patch_ref == "target":  # the target window's statistics
                texture = patch_texture_loss(encoder, rgb[n:], tgt[n:], side)
            elif args.style_patch_ref == "view":  # the unpropagated stylization's, same window
                texture = patch_texture_loss(encoder, rgb[n:], own, side)
            elif args.style_patch_ref == "view_std":  # the target window's means, the view's own stds
                texture = patch_split_loss(encoder, rgb[n:], tgt[n:], own, side)
            elif args.style_patch_ref == "style":  # the style image's statistics
                texture = patch_style_image_loss(encoder, rgb[n:], style_stats[int(ws[0])], side)
            else:  # nn: each feature near one of the style image's
                texture = patch_nn_loss(encoder, rgb[n:], style_stats[int(ws[0])], side)
            loss = loss + args.style_patch_weight * texture
        model.set_lrates(args, step)
        model.opt.step(loss)
        if side and balance is not None:
            balance.update(int(ws[0]), float(texture.item()))
        return loss_f, logp, texture
    return step_fn


def load_style_model(args, system, expdir):
    """The newest style checkpoint as a StyleModel (its style names, priors and codes included)."""
    step, path, ck = style_checkpoints(expdir, args).load_latest(
        ("step", "style_mlp", "latents", "style_names", "mu", "logvar", "n_views"), clean=False)
    if path is None:
        raise FileNotFoundError(f"no style checkpoint (style_*.pkl) in {expdir}: train the style stage first "
                                f"(run_stylenerf.py --config ... without render options)")
    # the checkpoint's own width (files from before --style_W have --netwidth's)
    model = StyleModel(args, ck["mu"], ck["logvar"], int(ck["n_views"]), system.embed_xyz.out_dim,
                       ck["style_names"], width=ck.get("width") or args.netwidth, encoding=ck.get("encoding"))
    model.load(ck, path, with_optim=False)
    return model, step
