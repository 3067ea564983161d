"""Stage 3: fine-tune the AdaIN decoder with a 3D consistency loss (2D <- 3D).

Each iteration takes a batch of 4 geometry views and one style image; the
decoder's stylization of view 0 is splatted (with its 3D point map) into the
other 3 cameras, and the squared difference to their own stylizations is
penalised where the warped point is visible and within --geo_thresh of the
view's own surface point:

    loss = content + style + 50 * mean(vis * geo * (I_k - warp_0->k(I_0))^2)

Frames are used whole at a working size (longer side <= --finetune_size), so
small images work too (the original cropped 512x512 and crashed below that).
Checkpoints `decoder_ft_<iter>.pkl` allow resuming; the result is
`<expdir>/decoder.pkl`, rebuilt when its inputs change (new geometry, another starting
decoder, other styles or options: the key in `decoder.key.json`).
"""
import os

import cv2
import jittor as jt
import numpy as np

from core.cache_key import array_digest, file_stamp, matches, refresh, weights_stamps
from core.checkpoint import (CheckpointManager, CorruptCheckpoint, adam_state, load, load_adam_state,
                             load_module_state, save_atomic)
from core.oserrors import remove_quietly
from core.optim import Adam
from core.train_loop import TrainLoop, resume
from models.adain import adain, content_loss, style_loss
from models.decoder import DECODER_FILES, TRAINED_FILE
from models.layers import transpose
from models.vgg import VGG_FILES
from render.splatting import consistency_loss

# every decoder file the lookup may take in place of --decoder_pth_path (resolve_decoder_path)
DECODER_ALTERNATIVES = (TRAINED_FILE,) + tuple(n for names in DECODER_FILES.values() for n in names)

CONSISTENCY_WEIGHT = 50.0
BATCH_VIEWS = 4


def working_size(H, W, max_side):
    s = min(1.0, max_side / max(H, W))
    return max(8, int(round(H * s))), max(8, int(round(W * s))), s


def resize_views(geo, view_ids, h, w):
    """RGB (area) and point maps (nearest: points must stay on the surface) at the working size."""
    rgb = np.stack([cv2.resize(geo.rgb[v], (w, h), interpolation=cv2.INTER_AREA) for v in view_ids])
    pts = np.stack([cv2.resize(geo.points[v], (w, h), interpolation=cv2.INTER_NEAREST) for v in view_ids])
    return rgb.astype(np.float32), pts.astype(np.float32)


def finetune_inputs(args, expdir, style_images):
    """What decoder.pkl is made from (its cache key): the geometry, the starting weights, the
    styles and the fine-tune's options."""
    return {"geometry": file_stamp(os.path.join(expdir, "geometry", "meta.json")),
            # the files the lookups may take (models/decoder.py, models/vgg.py), not only those asked for
            "decoder": weights_stamps(args.decoder_pth_path, DECODER_ALTERNATIVES),
            "vgg": weights_stamps(args.vgg_pth_path, VGG_FILES),
            "styles": array_digest(style_images),
            "options": [args.finetune_decoder_steps, args.finetune_size, args.decoder_lrate, args.geo_thresh,
                        args.content_loss_lambda, args.style_loss_lambda, args.seed]}


def is_current(args, expdir, style_images):
    """True when decoder.pkl exists and was made from these inputs."""
    return (os.path.exists(os.path.join(expdir, "decoder.pkl"))
            and matches(os.path.join(expdir, "decoder.key.json"), finetune_inputs(args, expdir, style_images)))


def finetune_decoder(args, geo, encoder, decoder, style_images, expdir, log=print):
    """Fine-tune `decoder` in place (or load the finished result); returns it.  decoder.pkl is
    reused while its inputs (finetune_inputs, key in decoder.key.json) are unchanged."""
    final = os.path.join(expdir, "decoder.pkl")
    ckpts = CheckpointManager(expdir, "decoder_ft", keep=2)

    def clear():  # the result and checkpoints of other inputs (e.g. an older geometry)
        remove_quietly(final)
        for step in ckpts.steps():
            remove_quietly(ckpts.path(step))
    refresh(os.path.join(expdir, "decoder.key.json"), finetune_inputs(args, expdir, style_images), clear,
            "decoder fine-tune", log)
    if os.path.exists(final):
        try:
            load_module_state(decoder, load(final, required_keys=("decoder",))["decoder"], final)
            return decoder
        except CorruptCheckpoint as e:  # cut short: fine-tune again from the last checkpoint
            os.replace(final, final + ".corrupt")
            log(f"warning: {e}; kept it as {final}.corrupt; running the fine-tune again")
    if args.finetune_decoder_steps == 0:  # nothing to learn: the given decoder is the result
        log("decoder fine-tune: 0 iterations, the decoder as given")
        save_atomic({"decoder": decoder.state_dict(), "iter": 0}, final)
        return decoder
    if geo.n_views < 2:
        raise ValueError(f"the decoder fine-tune needs at least 2 geometry views, got {geo.n_views} "
                         f"(lower --gen_factor)")
    H, W, focal = geo.hwf
    h, w, s = working_size(H, W, args.finetune_size)
    opt = Adam(decoder.parameters(), lr=args.decoder_lrate)
    start, path, ck = resume(ckpts, ("decoder", "optimizer", "iter"), "decoder fine-tune", log,
                             no_reload=args.no_reload, unit="iteration", key="iter")
    if path is not None:
        load_module_state(decoder, ck["decoder"], path)
        load_adam_state(opt, ck["optimizer"], path)
    style_feats = [[f.stop_grad() for f in encoder(jt.array(img.transpose(2, 0, 1)[None]))]
                   for img in style_images]
    # every view at the working size once (not 4 OpenCV resizes per iteration on the host)
    all_rgb, all_pts = resize_views(geo, range(geo.n_views), h, w)
    n_batch = min(BATCH_VIEWS, geo.n_views)
    log(f"decoder fine-tune: {args.finetune_decoder_steps} iterations at {w}x{h}, {n_batch} views, "
        f"{len(style_images)} styles")
    loop = TrainLoop("decoder fine-tune", start, args.finetune_decoder_steps, every=args.i_weights_decoder,
                     save_last=False, desc="decoder",
                     save=lambda it: ckpts.save(it, {"iter": it, "decoder": decoder.state_dict(),
                                                     "optimizer": adam_state(opt)}))
    for it in loop:
        rng = np.random.default_rng([args.seed, 3, it])
        views = rng.choice(geo.n_views, n_batch, replace=False)
        si = int(rng.integers(len(style_images)))
        rgb, pts = all_rgb[views], all_pts[views]
        content = jt.array(rgb.transpose(0, 3, 1, 2))
        c_feats = encoder(content)
        s_feats = [f.broadcast((n_batch,) + tuple(f.shape[1:])) for f in style_feats[si]]
        t = adain(c_feats[-1], s_feats[-1]).stop_grad()
        out = decoder(t)[:, :, :h, :w]
        o_feats = encoder(out)
        l_content = content_loss(o_feats[-1], t)
        l_style = style_loss(o_feats, s_feats)
        l_cons = consistency_loss(transpose(out, 0, 2, 3, 1), pts, geo.c2ws[views], h, w, focal * s,
                                  geo_thresh=args.geo_thresh)
        loss = (args.content_loss_lambda * l_content + args.style_loss_lambda * l_style
                + CONSISTENCY_WEIGHT * l_cons)
        opt.lr = args.decoder_lrate / (1.0 + 5e-5 * it)
        opt.step(loss)
        if loop.due(10):
            loop.postfix(content=f"{l_content.item():.3f}", style=f"{l_style.item():.3f}",
                         cons=f"{l_cons.item():.5f}")
    save_atomic({"decoder": decoder.state_dict(), "iter": args.finetune_decoder_steps}, final)
    return decoder
