"""The work of train_style_modules.py: AdaIN decoder training, style-VAE pre-training,
and stylising one image.

Files written to --save_dir (default ./pretrained/):
- decoder training: `decoder_train_<iter>.pkl` checkpoints (last --keep kept; a rerun
  resumes from the newest), `decoder_samples/decoder_<iter>.png` grids (rows of
  content | style | output) at each checkpoint, and the final `decoder_finetuned.pkl`
  (load with `models.decoder.Decoder.load` / `Decoder.from_file`).
- VAE: `vae_style_stats.npz` (per-channel statistics of the style folder, reused while
  the folder, VGG file and --image_size are unchanged: the key in `vae_style_stats.npz.key.json`), `vae_train_<iter>.pkl`
  checkpoints, and the final `vae.pkl` (`models.vae.StyleVAE.load`; the layout that
  pipeline/latents.py reads).
Learning rate: lr / (1 + lr_decay * iter), as the original.
"""
import os

import jittor as jt
import numpy as np
from tqdm import tqdm

from core import media
from core.cache_key import content_stamp, refresh
from core.checkpoint import (CheckpointError, CheckpointManager, adam_state, load_adam_state,
                             load_module_state)
from core.optim import Adam
from core.oserrors import remove_quietly
from core.train_loop import TrainLoop, resume
from core.pth import MissingWeightsError, PthError
from dataset.image_folder import (ImageFolderError, list_images, list_images_of, load_image, random_crop,
                                  resize_short_side)
from models.adain import stylize, training_losses
from models.decoder import Decoder, resolve_decoder_path
from models.vae import StyleVAE
from models.vae import style_statistics as vae_style_statistics
from models.vgg import VGGEncoder, resolve_vgg_path

DECODER_FINAL = "decoder_finetuned.pkl"
VAE_FINAL = "vae.pkl"
STATS_CACHE = "vae_style_stats.npz"


class StyleModulesError(ValueError):
    """A bad option of train_style_modules.py; the message names it."""


# errors a user can cause: reported as one line, no traceback
USER_ERRORS = (StyleModulesError, ImageFolderError, PthError, MissingWeightsError, CheckpointError)


def check_args(args):
    positive = {"lr": args.lr, "batch_size": args.batch_size, "save_model_interval": args.save_model_interval,
                "crop_size": args.crop_size, "keep": args.keep}
    for name, value in positive.items():
        if value <= 0:
            raise StyleModulesError(f"--{name} must be positive, got {value}")
    if args.max_iter < 0 or args.lr_decay < 0 or args.image_size < 0 or args.gram_weight < 0:
        raise StyleModulesError("--max_iter, --lr_decay, --image_size and --gram_weight must not be negative, got "
                                f"{args.max_iter}, {args.lr_decay}, {args.image_size}, {args.gram_weight}")
    if args.crop_size < 16:
        raise StyleModulesError(f"--crop_size must be at least 16 (the deepest VGG map needs 2x2), "
                                f"got {args.crop_size}")
    if not 0.0 <= args.alpha <= 1.0:
        raise StyleModulesError(f"--alpha must be in [0, 1], got {args.alpha}")


def decayed_lr(lr, lr_decay, it):
    return lr / (1.0 + lr_decay * it)


def load_encoder(vgg_path):
    return VGGEncoder.from_pth(resolve_vgg_path(vgg_path))


def initial_decoder(path, channels, log=print):
    """Decoder to start training from: --decoder, the file for this depth beside it, or random."""
    if not path or path.lower() == "none":
        log("decoder: --decoder none: training from scratch")
        return Decoder(channels)
    try:
        resolved = resolve_decoder_path(path, channels)
    except MissingWeightsError:
        log(f"decoder: no weights at {path} (nor the relu{3 if channels == 256 else 4}_1 decoder beside it): "
            "training the decoder from scratch")
        return Decoder(channels)
    log(f"decoder: initialised from {resolved}")
    return Decoder.from_file(resolved, channels)


def to_nchw(images):
    return jt.array(np.stack(images).transpose(0, 3, 1, 2).copy())


class ImagePool:
    """The images of one or more folders ('a,b'), resized (short side = image_size; 0 keeps the
    size) on first use and kept in memory as uint8 (up to `cache` of them: ~1 MB each at 512)."""

    def __init__(self, folders, image_size, cache=256):
        self.paths = list_images_of(folders)
        self.image_size, self.cache = image_size, cache
        self._images = {}

    def __len__(self):
        return len(self.paths)

    def get(self, i):
        """float32 [H,W,3] in [0,1]."""
        img8 = self._images.get(i)
        if img8 is None:
            img = load_image(self.paths[i])
            if self.image_size:
                img = resize_short_side(img, self.image_size)
            img8 = media.to8b(img)
            if len(self._images) < self.cache:
                self._images[i] = img8
        return img8.astype(np.float32) / np.float32(255)

    def random_crops(self, n, size, rng):
        """n random crops [size,size,3] of randomly chosen images."""
        return [random_crop(self.get(int(i)), size, rng) for i in rng.integers(len(self.paths), size=n)]


def sample_grid(contents, styles, outputs, rows=4):
    """[H*rows, 3*W, 3] image: each row content | style | output (float in [0,1])."""
    rows = min(rows, len(contents))
    lines = [np.concatenate([contents[i], styles[i], np.clip(outputs[i], 0, 1)], axis=1) for i in range(rows)]
    return np.concatenate(lines, axis=0)


def _resume(ckpts, required, stage, log):
    _, path, ck = resume(ckpts, required, stage, log, unit="iteration", key="iter")
    return ck, path


def train_decoder(args, log=print):
    """AdaIN decoder training (content + style loss, Adam on the decoder only); returns the final path."""
    np.random.seed(args.seed)
    jt.set_global_seed(args.seed)
    encoder = load_encoder(args.vgg)
    channels = encoder.deepest_channels
    contents = ImagePool(args.content_dir, args.image_size)
    styles = ImagePool(args.style_dir, args.image_size)
    log(f"decoder training: {len(contents)} content images ({args.content_dir}), {len(styles)} styles "
        f"({args.style_dir}), batch {args.batch_size}, crop {args.crop_size}, up to iteration {args.max_iter}")
    ckpts = CheckpointManager(args.save_dir, "decoder_train", keep=args.keep)
    ck, ck_path = _resume(ckpts, ("iter", "decoder", "optimizer", "rng", "deepest_channels"), "decoder training", log)
    if ck is not None and ck["deepest_channels"] != channels:
        raise CheckpointError(f"{ck_path} was trained with a relu{3 if ck['deepest_channels'] == 256 else 4}_1 "
                              f"encoder, but {args.vgg} gives {channels} channels; use another --save_dir")
    decoder = Decoder(channels) if ck is not None else initial_decoder(args.decoder, channels, log)
    opt = Adam(decoder.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    start = 0
    if ck is not None:
        decoder.load_weights(ck["decoder"], ck_path)
        load_adam_state(opt, ck["optimizer"], ck_path)
        rng.bit_generator.state = ck["rng"]
        start = int(ck["iter"])
    final = os.path.join(args.save_dir, DECODER_FINAL)
    last = {}  # the newest step's images and losses, for its checkpoint and sample grid

    def save(done):
        path = ckpts.save(done, {"iter": done, "decoder": decoder.weights(), "deepest_channels": channels,
                                 "optimizer": adam_state(opt), "rng": rng.bit_generator.state,
                                 "loss_content": last["loss_c"].item(), "loss_style": last["loss_s"].item()})
        outs = last["out"].numpy().transpose(0, 2, 3, 1)[:, :args.crop_size, :args.crop_size]
        media.write_png(os.path.join(args.save_dir, "decoder_samples", f"decoder_{done:06d}.png"),
                        sample_grid(last["c_imgs"], last["s_imgs"], outs))
        return path
    loop = TrainLoop("decoder training", start, args.max_iter, save=save, every=args.save_model_interval,
                     desc="decoder", bar_kwargs={"mininterval": 1.0})
    for done in loop:
        it = done - 1
        opt.lr = decayed_lr(args.lr, args.lr_decay, it)
        c_imgs = contents.random_crops(args.batch_size, args.crop_size, rng)
        s_imgs = styles.random_crops(args.batch_size, args.crop_size, rng)
        out, loss_c, loss_s = training_losses(encoder, decoder, to_nchw(c_imgs), to_nchw(s_imgs),
                                              gram_weight=args.gram_weight)
        opt.step(args.content_weight * loss_c + args.style_weight * loss_s)
        last.update(out=out, loss_c=loss_c, loss_s=loss_s, c_imgs=c_imgs, s_imgs=s_imgs)
        if loop.due(10):  # .item() waits for the GPU: not every step
            loop.postfix(content=f"{loss_c.item():.3f}", style=f"{loss_s.item():.3f}", lr=f"{opt.lr:.2e}")
    if start >= args.max_iter:
        log(f"already trained to iteration {start} (>= --max_iter {args.max_iter}): nothing to train")
    decoder.save(final, extra={"iter": max(start, args.max_iter)})
    log(f"decoder weights: {final} (iteration {max(start, args.max_iter)}; load with Decoder.load)")
    return final


def style_statistics(encoder, style_dir, image_size, vgg_path, cache_path, log=print):
    """(stats [S, 2C], names): per-channel mean/std of the deepest tap of every style image
    (short side resized to image_size), cached in cache_path while its inputs (the key beside
    it, <cache>.key.json: the images, the VGG file, the size) are unchanged."""
    paths = list_images(style_dir)
    names = [os.path.basename(p) for p in paths]
    inputs = {"vgg": [os.path.abspath(vgg_path), content_stamp(vgg_path)], "image_size": image_size,
              "channels": encoder.deepest_channels, "files": [[n, content_stamp(p)] for n, p in zip(names, paths)]}
    if refresh(cache_path + ".key.json", inputs, lambda: remove_quietly(cache_path), "style statistics", log):
        try:
            with np.load(cache_path) as cached:
                stats = cached["stats"]
            log(f"style statistics: {cache_path} ({len(paths)} styles)")
            return stats, names
        except (OSError, KeyError, ValueError):
            pass  # missing or unreadable: recompute

    def images():
        for p in tqdm(paths, desc="style statistics", dynamic_ncols=True):
            img = load_image(p)
            yield resize_short_side(img, image_size) if image_size else img

    stats = vae_style_statistics(encoder, images())
    os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
    tmp = cache_path + ".tmp.npz"
    np.savez(tmp, stats=stats)
    os.replace(tmp, cache_path)
    return stats, names


def train_vae(args, log=print):
    """Style-VAE pre-training on the style folder's statistics; returns the final path."""
    np.random.seed(args.seed)
    jt.set_global_seed(args.seed)
    vgg_path = resolve_vgg_path(args.vgg)
    encoder = VGGEncoder.from_pth(vgg_path)
    stats, names = style_statistics(encoder, args.style_dir, args.image_size, vgg_path,
                                    os.path.join(args.save_dir, STATS_CACHE), log)
    vae = StyleVAE(in_dim=stats.shape[1], latent=args.vae_latent, hidden=args.vae_w, depth=args.vae_d,
                   kl_lambda=args.vae_kl_lambda)
    log(f"VAE training: {len(names)} styles, input {stats.shape[1]} (= 2 x {encoder.deepest_channels} channels), "
        f"latent {args.vae_latent}, up to iteration {args.max_iter}")
    opt = Adam(vae.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    ckpts = CheckpointManager(args.save_dir, "vae_train", keep=args.keep)
    ck, ck_path = _resume(ckpts, ("iter", "vae", "optimizer", "rng", "config"), "VAE training", log)
    start = 0
    if ck is not None:
        if ck["config"] != vae.config:
            raise CheckpointError(f"{ck_path} was made with VAE settings {ck['config']}, now {vae.config}; "
                                  "use the same options or another --save_dir")
        load_module_state(vae, ck["vae"], f"{ck_path} (style VAE)")
        load_adam_state(opt, ck["optimizer"], ck_path)
        rng.bit_generator.state = ck["rng"]
        start = int(ck["iter"])
    batch = min(args.batch_size, len(stats))
    last = {}

    def save(done):
        return ckpts.save(done, {"iter": done, "vae": vae.state_dict(), "config": dict(vae.config),
                                 "optimizer": adam_state(opt), "rng": rng.bit_generator.state,
                                 "recon": last["recon"].item(), "kl": last["kl"].item()})
    loop = TrainLoop("VAE training", start, args.max_iter, save=save, every=args.save_model_interval,
                     desc="vae", bar_kwargs={"mininterval": 1.0})
    for done in loop:
        opt.lr = decayed_lr(args.lr, args.lr_decay, done - 1)
        idx = rng.choice(len(stats), size=batch, replace=False)
        recon, kl, total = vae.loss(jt.array(stats[idx]))
        opt.step(total)
        last.update(recon=recon, kl=kl)
        if loop.due(10):  # .item() waits for the GPU: not every step
            loop.postfix(recon=f"{recon.item():.3f}", kl=f"{kl.item():.3f}")
    final = os.path.join(args.save_dir, VAE_FINAL)
    vae.save(final, extra={"iter": max(start, args.max_iter), "styles": names})
    log(f"VAE weights: {final} (iteration {max(start, args.max_iter)}; load with StyleVAE.load)")
    return final


def stylize_image(args, log=print):
    """--content + --style_image -> --output PNG (AdaIN with the given decoder); returns the path."""
    for name in ("content", "style_image", "output"):
        if not getattr(args, name):
            raise StyleModulesError(f"--task stylize needs --{name}")
    encoder = load_encoder(args.vgg)
    if not args.decoder or args.decoder.lower() == "none":
        raise StyleModulesError("--task stylize needs --decoder weights")
    decoder = Decoder.from_file(resolve_decoder_path(args.decoder, encoder.deepest_channels),
                                encoder.deepest_channels)
    content, style = load_image(args.content), load_image(args.style_image)
    if args.image_size:  # like AdaIN's test: both short sides to the given size
        content, style = resize_short_side(content, args.image_size), resize_short_side(style, args.image_size)
    h, w = content.shape[:2]
    with jt.no_grad():
        out = stylize(encoder, decoder, to_nchw([content]), to_nchw([style]), alpha=args.alpha)
        img = out.numpy()[0].transpose(1, 2, 0)[:h, :w]
    media.write_png(args.output, np.clip(img, 0, 1))
    log(f"stylized {args.content} with {args.style_image} (alpha {args.alpha}): {args.output} ({w}x{h})")
    return args.output


def run(args, log=print):
    check_args(args)
    from models.layers import set_library_switches
    set_library_switches(args.cudnn_search, args.cublaslt_bgrad)
    if args.task == "finetune_decoder":
        from pipeline.preflight import check_decoder_training
        check_decoder_training(args, log)  # every image and weight file, before iteration 1
        return train_decoder(args, log)
    if args.task == "vae":
        return train_vae(args, log)
    return stylize_image(args, log)
