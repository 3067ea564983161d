"""The 2D <- 3D mimic step of style training: the decoder learns from the style NeRF.

From style step --decoder_step on (steps count on from --origin_step, as the style stage's
do), every --mimic_every steps: --mimic_views geometry views and one style are drawn (seeded
by the step); each view is rendered by the style NeRF with that (style, view)'s latent code at
the fine-tune's working size (longer side <= --finetune_size), and the decoder takes one Adam
step (its own optimizer, --decoder_lrate) on

    rgb_loss_lambda_2d * MSE(decoder(AdaIN(VGG(view), style)), render.stop_grad())
    + content_loss_lambda * content + style_loss_lambda * style      (AdaIN's losses)

Then those views' stylized targets are made again, for every style, with the updated decoder,
in place in the target arrays the style stage samples from (the memory-mapped cache files on
disk), so only one view at a time is ever on the GPU.

Resuming: the decoder and its Adam state go into the style checkpoints (state, resume).
`targets/mimic.json` holds the last mimic step written into the cache: a resume from an
earlier checkpoint makes the views of the steps after it again with the restored decoder
(a run killed between checkpoints: those views then hold the checkpoint's decoder's
stylization, where an uninterrupted run held that of their last mimic before it),
and a fresh start (no style checkpoint, or --no_reload) makes every view again from decoder.pkl
(in the targets stage: stale_targets; here too when the style stage is called directly).
"""
import json
import os

import cv2
import jittor as jt
import numpy as np

from core.checkpoint import adam_state, load_adam_state, load_module_state
from core.media import to8b
from core.optim import Adam
from models.adain import adain, content_loss, mse, style_loss
from pipeline.decoder_finetune import working_size
from pipeline.targets import stylize_view, target_content


def enabled(args):
    return args.mimic_every > 0 and args.decoder_step <= args.total_step


def is_mimic_step(args, step):
    return (args.mimic_every > 0 and step >= args.decoder_step
            and (step - args.decoder_step) % args.mimic_every == 0)


def marker_path(expdir):
    return os.path.join(expdir, "targets", "mimic.json")


def stale_targets(args, expdir):
    """True when the cached targets were changed by mimic steps of a style training that this
    run does not continue (--no_reload, or no style checkpoint left): the targets stage then
    makes them again from decoder.pkl."""
    if not os.path.exists(marker_path(expdir)):
        return False
    from pipeline.style_stage import style_checkpoints
    return args.no_reload or style_checkpoints(expdir, args).latest()[0] is None


def discard_stale_targets(args, expdir):
    """Remove stale targets (stale_targets) so that the targets stage makes them again."""
    if stale_targets(args, expdir):
        folder = os.path.dirname(marker_path(expdir))
        for f in os.listdir(folder):
            if f.endswith(".npy") or f == "mimic.json":
                os.remove(os.path.join(folder, f))


def _writable(arr):
    """The same target array, writable: a read-only memory map is opened again read-write."""
    if arr.flags.writeable:
        return arr
    if isinstance(arr, np.memmap) and arr.filename:
        return np.load(arr.filename, mmap_mode="r+")
    return np.array(arr)


class Mimic:
    """The mimic step's state: the decoder (trained in place), its optimizer, the style features.

    loss_styles: style images [h,w,3] for AdaIN's style loss (the fine-tune's size);
    target_styles: the images the targets are stylized with (--style_size); targets: the
    style stage's list of uint8 [V,H,W,3] arrays, updated in place."""

    def __init__(self, args, system, geo, encoder, decoder, loss_styles, target_styles, targets, opts,
                 expdir):
        self.args, self.system, self.geo, self.opts = args, system, geo, opts
        self.encoder, self.decoder, self.targets = encoder, decoder, targets
        self.marker = marker_path(expdir)
        for k in range(len(targets)):
            targets[k] = _writable(targets[k])
        self.opt = Adam(decoder.parameters(), lr=args.decoder_lrate)
        with jt.no_grad():
            self.loss_feats = [[f.stop_grad() for f in encoder(_chw(img))] for img in loss_styles]
            self.target_feats = [encoder.encode(_chw(img)).stop_grad() for img in target_styles]
        H, W, focal = geo.hwf
        self.h, self.w, s = working_size(H, W, args.finetune_size)
        self.focal = focal * s

    def due(self, step):
        return is_mimic_step(self.args, step)

    def draw(self, step):
        """(views, style) of the mimic step at `step`."""
        rng = np.random.default_rng([self.args.seed, 7, step])
        views = rng.choice(self.geo.n_views, min(self.args.mimic_views, self.geo.n_views), replace=False)
        return sorted(int(v) for v in views), int(rng.integers(len(self.targets)))

    def step(self, step, model):
        """One decoder step towards the style NeRF's renders, then the drawn views' targets again;
        returns the loss terms (2D mimic MSE, content, style) as floats."""
        from pipeline.stylized_render import render_with_latent
        args, h, w = self.args, self.h, self.w
        views, si = self.draw(step)
        renders, content = [], []
        for v in views:
            with jt.no_grad():
                latent = model.latents.lookup(np.int32([si]), np.int32([v])).reshape(-1).stop_grad()
                out = render_with_latent(self.system, model, latent, args, self.opts, h, w, self.focal,
                                         self.geo.c2ws[v], style=si)
            renders.append(np.asarray(out["fine" if "fine" in out else "coarse"]["rgb"], np.float32))
            content.append(cv2.resize(np.float32(self.geo.rgb[v]), (w, h), interpolation=cv2.INTER_AREA))
        render = jt.array(np.stack(renders).transpose(0, 3, 1, 2)).stop_grad()
        c_feat = self.encoder.encode(jt.array(np.stack(content).transpose(0, 3, 1, 2)))
        s_feats = self.loss_feats[si]
        t = adain(c_feat, s_feats[-1]).stop_grad()
        out = self.decoder(t)[:, :, :h, :w]
        o_feats = self.encoder(out)
        l_2d, l_content, l_style = mse(out, render), content_loss(o_feats[-1], t), style_loss(o_feats, s_feats)
        loss = (args.rgb_loss_lambda_2d * l_2d + args.content_loss_lambda * l_content
                + args.style_loss_lambda * l_style)
        self.opt.step(loss)
        self.regenerate(views)
        self._mark(step)
        return l_2d.item(), l_content.item(), l_style.item()

    def regenerate(self, views):
        """The targets of `views` for every style, from the current decoder (one view on the GPU)."""
        for k, feat in enumerate(self.target_feats):
            for v in views:
                self.targets[k][v] = to8b(stylize_view(self.encoder, self.decoder,
                                                        target_content(self.args, self.geo, v), feat))
            if isinstance(self.targets[k], np.memmap):
                self.targets[k].flush()

    def _mark(self, step):
        if os.path.isdir(os.path.dirname(self.marker)):
            with open(self.marker + ".tmp", "w") as f:
                json.dump({"step": int(step)}, f)
            os.replace(self.marker + ".tmp", self.marker)

    def last_marked(self):
        try:
            with open(self.marker) as f:
                return int(json.load(f)["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def state(self):
        return {"decoder": self.decoder.state_dict(), "decoder_optimizer": adam_state(self.opt)}

    def resume(self, ck, source, step):
        """After the style model is loaded from checkpoint `ck` of `step` (ck None: a fresh start):
        restore the decoder and make the targets agree with it."""
        last = self.last_marked()
        if ck is not None and "decoder" in ck:
            load_module_state(self.decoder, ck["decoder"], source + " (decoder)")
            load_adam_state(self.opt, ck["decoder_optimizer"], source + " (decoder)")
        if last is None or (ck is not None and last <= step):
            return  # the cache holds what this decoder's run wrote up to `step`
        if ck is None:  # a fresh start from decoder.pkl: every view as the targets stage made it
            self.regenerate(range(self.geo.n_views))
            os.remove(self.marker)
            return
        # written after the checkpoint by a run that did not reach the next one
        views = sorted({v for s in range(step + 1, last + 1) if is_mimic_step(self.args, s)
                        for v in self.draw(s)[0]})
        self.regenerate(views)
        self._mark(step)


def _chw(img):
    return jt.array(np.float32(img).transpose(2, 0, 1)[None])
