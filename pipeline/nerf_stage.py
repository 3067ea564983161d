"""Stage 1: NeRF pre-training on an LLFF scene, and photoreal rendering.

The NeRF (coarse + fine MLPs with their positional encodings) is trained with
2048 random rays a step, Adam, lr = lrate * 0.1^(step / lrate_decay), loss
MSE(coarse) + MSE(fine).  Checkpoints `nerf_<step>.pkl` every i_weights steps
and at the end; a run resumes from the newest one.  The stage is finished once
a checkpoint at step >= origin_step exists.
"""
import os

import jittor as jt
import numpy as np
from tqdm import tqdm

from core.checkpoint import CheckpointManager, adam_state, load_adam_state, load_module_state
from core.train_loop import TrainLoop, resume
from core.media import write_png
from core.optim import Adam
from dataset.camera_paths import circle_path, frames_per_interval, interpolate_poses, spiral_path
from dataset.rays import PixelRays, image_rays, scaled_hwf
from models.embedder import PositionalEncoding
from models.nerf import NeRF
from pipeline import render_files
from render.fast import fast_options
from render.options import RenderOptions
from render.renderer import NeRFField, render_image, render_rays


def mse_to_psnr(mse):
    return -10.0 * np.log10(max(float(mse), 1e-10))


class NeRFSystem:
    """Coarse and fine NeRF with their encoders; builds the fields the renderer queries."""

    def __init__(self, args):
        self.embed_xyz = PositionalEncoding(args.embed_freq_coor)
        self.embed_dir = PositionalEncoding(args.embed_freq_dir) if args.use_viewdir else None
        views_ch = self.embed_dir.out_dim if args.use_viewdir else 0
        self.coarse = NeRF(D=args.netdepth, W=args.netwidth, input_ch=self.embed_xyz.out_dim,
                           input_ch_views=views_ch, use_viewdirs=args.use_viewdir)
        self.fine = NeRF(D=args.netdepth_fine, W=args.netwidth_fine, input_ch=self.embed_xyz.out_dim,
                         input_ch_views=views_ch, use_viewdirs=args.use_viewdir)

    def parameters(self):
        return self.coarse.parameters() + self.fine.parameters()

    def fields(self):
        return (NeRFField(self.coarse, self.embed_xyz, self.embed_dir),
                NeRFField(self.fine, self.embed_xyz, self.embed_dir))

    def state(self):
        return {"coarse": self.coarse.state_dict(), "fine": self.fine.state_dict()}

    def load(self, ckpt, source):
        load_module_state(self.coarse, ckpt["coarse"], source + " (coarse)")
        load_module_state(self.fine, ckpt["fine"], source + " (fine)")


def nerf_checkpoints(expdir, args):
    return CheckpointManager(expdir, "nerf", keep=args.ckp_num)


def load_trained_nerf(args, expdir):
    """The NeRF of the newest checkpoint; a clear error if none exists."""
    step, path, ck = nerf_checkpoints(expdir, args).load_latest(("coarse", "fine", "step"), clean=False)
    if path is None:
        raise FileNotFoundError(f"no NeRF checkpoint (nerf_*.pkl) in {expdir}: train the NeRF stage first "
                                f"(run_stylenerf.py --config ... without render options)")
    system = NeRFSystem(args)
    system.load(ck, path)
    return system, step, path


def nerf_stage_done(args, expdir, log=None):
    """True when a readable checkpoint at step >= origin_step exists (a corrupt newest file is set
    aside here, as a resume would, so that the one before it counts)."""
    step, _, _ = nerf_checkpoints(expdir, args).load_latest(("step",), log, clean=False)
    return step is not None and step >= args.origin_step


def train_nerf(args, scene, expdir, log=print):
    """Train (or resume) the NeRF until args.origin_step; returns the trained NeRFSystem."""
    system = NeRFSystem(args)
    params = system.parameters()
    opt = Adam(params, lr=args.lrate, betas=(0.9, 0.999))
    ckpts = nerf_checkpoints(expdir, args)
    start, latest_path, ck = resume(ckpts, ("coarse", "fine", "step", "optimizer"), "NeRF", log,
                                    no_reload=args.no_reload, key="step")
    if latest_path is not None:
        system.load(ck, latest_path)
        load_adam_state(opt, ck["optimizer"], latest_path)
    if start >= args.origin_step:
        return system

    rays = PixelRays.from_scene(scene, scene.i_train, ndc=not args.no_ndc)
    coarse_field, fine_field = system.fields()
    opts = RenderOptions.from_args(args, scene, "train")
    log(f"NeRF stage: {len(scene.i_train)} training views, {len(rays)} rays, steps {start}..{args.origin_step}")
    loop = TrainLoop("NeRF", start, args.origin_step, every=args.i_weights,
                     save=lambda s: ckpts.save(s, {"step": s, **system.state(), "optimizer": adam_state(opt)}))
    for step in loop:
        rng = np.random.default_rng([args.seed, step])  # reproducible across resumes
        batch = rays.sample(args.batch_size, rng)
        target = jt.array(batch["rgb"])
        out = render_rays(jt.array(batch["rays_o"]), jt.array(batch["rays_d"]),
                          jt.array(batch["viewdirs"]) if args.use_viewdir else None,
                          coarse_field, fine_field, opts=opts)
        loss_c = ((out["coarse"]["rgb"] - target) ** 2).mean()
        loss_f = ((out["fine"]["rgb"] - target) ** 2).mean() if "fine" in out else loss_c * 0
        loss = loss_c + loss_f
        opt.lr = args.lrate * 0.1 ** (step / args.lrate_decay)
        opt.step(loss)
        if loop.due(args.i_print):
            lf = float(loss_f.item()) if "fine" in out else float(loss_c.item())
            loop.postfix(loss=f"{float(loss.item()):.4f}", psnr=f"{mse_to_psnr(lf):.2f}", it_s=f"{loop.rate():.2f}")
    return system


def render_views(system, args, scene, poses, outdir, gt=None, video=False, opts=None):
    """Render poses with both levels; write the original's PNGs (fine/coarse colour and depth, gt_
    where given, frames numbered by position in poses) and, with video, its four mp4s.
    opts: a RenderOptions (default: the exact "eval" renderer).

    Returns the fine renders [N,H,W,3] as NumPy.
    """
    H, W, focal = scaled_hwf(scene.hwf, args.render_factor)
    coarse_field, fine_field = system.fields()
    opts = opts or RenderOptions.from_args(args, scene, "eval")
    os.makedirs(outdir, exist_ok=True)
    rgbs, depths = [], render_files.DepthFrames()  # kept for the videos only
    for i, c2w in enumerate(tqdm(poses, desc=f"render {os.path.basename(outdir)}", dynamic_ncols=True)):
        ro, rd, vd = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
        out = render_image(ro, rd, vd if args.use_viewdir else None, H, W, args.chunk, opts=opts,
                           coarse_field=coarse_field, fine_field=fine_field)
        depth = render_files.write_views(outdir, i, out)
        if video:
            depths.add(depth)
        if gt is not None:
            write_png(os.path.join(outdir, render_files.png_name("gt", i)), gt[i])
        rgbs.append(out["fine" if "fine" in out else "coarse"]["rgb"])
    if video:
        render_files.write_rgb_videos(outdir, outdir, [(None, i) for i in range(len(poses))], args.fps)
        depths.write(outdir, args.fps)
    return np.stack(rgbs)


def heldout_psnr(system, args, scene):
    """Mean PSNR of the fine renders over the held-out views (no files written)."""
    return float(np.mean(view_psnrs(system, args, scene, scene.i_test)))


def spread_train_views(scene, n):
    """n training views spread evenly over the training set (first and last included)."""
    return scene.i_train[np.linspace(0, len(scene.i_train) - 1, n).round().astype(int)]


def view_psnrs(system, args, scene, ids, stride=1):
    """PSNR of the fine render (no noise, no jitter) of each view in ids against its photo, over
    every stride-th pixel in both directions (1: the whole image)."""
    H, W, focal = int(scene.hwf[0]), int(scene.hwf[1]), scene.hwf[2]
    coarse_field, fine_field = system.fields()
    opts = RenderOptions.from_args(args, scene, "eval")
    psnrs = []
    for i in ids:
        ro, rd, vd = (r.reshape(H, W, 3)[::stride, ::stride]
                      for r in image_rays(H, W, focal, scene.poses[i], ndc=not args.no_ndc))
        h, w = ro.shape[:2]
        out = render_image(ro, rd, vd if args.use_viewdir else None, h, w, args.chunk, opts=opts,
                           coarse_field=coarse_field, fine_field=fine_field)
        rgb = out["fine" if "fine" in out else "coarse"]["rgb"]
        psnrs.append(mse_to_psnr(np.mean((rgb - scene.images[i][::stride, ::stride]) ** 2)))
    return psnrs


def render_train(args, scene, expdir, log=print):
    """--render_train: every view (train and held-out, numbered as the images) with its photo;
    `psnr.txt` beside them gives the PSNR of each and says which are held out."""
    system, step, _ = load_trained_nerf(args, expdir)
    outdir = render_files.render_dir(expdir, "train", step)
    ids = np.arange(len(scene.poses))
    gt = scene.images
    if args.render_factor > 1:
        import cv2
        H, W = gt.shape[1] // args.render_factor, gt.shape[2] // args.render_factor
        gt = np.stack([cv2.resize(g, (W, H), interpolation=cv2.INTER_AREA) for g in gt])
    rgbs = render_views(system, args, scene, scene.poses[ids], outdir, gt=gt)
    psnrs = {int(i): mse_to_psnr(np.mean((rgbs[i] - gt[i]) ** 2)) for i in ids}
    test = [psnrs[int(i)] for i in scene.i_test]
    train = [psnrs[int(i)] for i in scene.i_train]
    lines = [f"step {step}", f"train PSNR {np.mean(train):.2f} over {len(train)} views"]
    if test:
        lines.append(f"held-out PSNR {np.mean(test):.2f} over {len(test)} views ({list(map(int, scene.i_test))})")
    with open(os.path.join(outdir, "psnr.txt"), "w") as f:
        f.write("\n".join(lines + [f"view {i}: {p:.3f}" for i, p in psnrs.items()]) + "\n")
    for line in lines:
        log(line)
    return psnrs


def valid_poses(args, scene):
    """The novel-view camera path for --render_valid*."""
    if args.render_path_type == "spiral":
        return spiral_path(scene.poses, scene.bounds)
    if args.render_path_type == "circle":  # as many frames as the interpolated path would have
        return circle_path(scene.poses, len(scene.poses) * frames_per_interval(args.valid_factor))
    return interpolate_poses(scene.poses, args.valid_factor, closed=True)


def render_valid(args, scene, expdir, log=print):
    """--render_valid: the novel-view path, PNGs and the four mp4 videos (--render_mode)."""
    system, step, _ = load_trained_nerf(args, expdir)
    poses = valid_poses(args, scene)
    outdir = render_files.render_dir(expdir, "valid", step)
    opts = fast_options(RenderOptions.from_args(args, scene, "eval"), args, scene, system.fields(), expdir, step, log)
    render_views(system, args, scene, poses, outdir, video=True, opts=opts)
    log(f"wrote {len(poses)} frames and videos to {outdir}")
    return outdir
