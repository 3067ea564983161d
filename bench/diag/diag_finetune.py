"""Where the time of one decoder fine-tune iteration goes (first iterations include Jittor's
JIT compile).  Each piece is synchronised and timed on its own, on a synthetic plane scene at
the working size of the fine-tune, with the real relu3_1 VGG and invertor weights.

    python bench/diag/diag_finetune.py [--h 192 --w 256 --iters 3] [--skip cons] [--conv im2col]
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from backend import runtime  # noqa: E402
from bench.common import profile_ops  # noqa: E402


def plane_views(n, H, W, focal, depth=3.0):
    c2ws, rgbs, pts = [], [], []
    for k in range(n):
        c2w = np.eye(4)[:3]
        c2w[:, 3] = [0.15 * k, 0.05 * k, 0.0]
        j, i = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
        dirs = np.stack([(i - W / 2) / focal, -(j - H / 2) / focal, -np.ones((H, W))], -1)
        p = c2w[:, 3] + depth * dirs
        rgbs.append(0.5 + 0.4 * np.sin(3 * p))
        c2ws.append(c2w)
        pts.append(p)
    return np.float32(rgbs), np.float32(pts), np.float32(c2ws)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--h", type=int, default=192)
    ap.add_argument("--w", type=int, default=256)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], help="pieces to leave out: style cons")
    ap.add_argument("--conv", default="auto", help="models.layers.CONV_IMPL: auto cudnn gemm im2col jittor")
    ap.add_argument("--profile", type=int, default=25, help="after the timed iterations, profile one "
                    "more and print its N most expensive Jittor ops (0: no profile)")
    a = ap.parse_args()
    jt = runtime.setup()
    from models import layers
    layers.set_conv_impl(a.conv)
    from core.optim import Adam
    from models.adain import adain, content_loss, style_loss
    from models.decoder import Decoder, resolve_decoder_path
    from models.vgg import VGGEncoder, resolve_vgg_path
    from render.splatting import consistency_loss
    enc = VGGEncoder.from_pth(resolve_vgg_path("./pretrained/vgg_normalised.pth"), quiet=True)
    dec = Decoder.from_file(resolve_decoder_path("./pretrained/decoder.pth", enc.deepest_channels),
                            enc.deepest_channels)
    opt = Adam(dec.parameters(), lr=1e-4)
    h, w, focal = a.h, a.w, 0.8 * a.w
    rgb, pts, c2ws = plane_views(4, h, w, focal)
    style = np.random.default_rng(0).random((1, 3, h // 2, w // 2), np.float32)
    t_all = time.time()

    def timed(name, fn):
        jt.sync_all(True)
        t = time.time()
        out = fn()
        if isinstance(out, jt.Var):
            out.sync()
        jt.sync_all(True)
        print(f"  {name:24s} {time.time() - t:8.2f} s", flush=True)
        return out

    def untimed(name, fn):
        return fn()

    def iteration(piece):
        """One fine-tune iteration; piece(name, fn) runs each piece (timed, or plainly)."""
        content = jt.array(rgb.transpose(0, 3, 1, 2))
        c_feats = piece("encoder(content)", lambda: enc(content))
        sf = [f.broadcast((4,) + tuple(f.shape[1:])) for f in s_feats]
        t = piece("adain", lambda: adain(c_feats[-1], sf[-1]).stop_grad())
        out = piece("decoder fwd", lambda: dec(t)[:, :, :h, :w])
        o_feats = piece("encoder(output)", lambda: enc(out))
        loss = piece("content loss", lambda: content_loss(o_feats[-1], t))
        if "style" not in a.skip:
            loss = loss + 2.0 * piece("style loss", lambda: style_loss(o_feats, sf))
        if "cons" not in a.skip:
            loss = loss + 50.0 * piece("consistency loss", lambda: consistency_loss(
                layers.transpose(out, 0, 2, 3, 1), pts, c2ws, h, w, focal, geo_thresh=0.1))
        piece("backward + Adam", lambda: opt.step(loss))
        jt.sync_all(True)

    s_feats = timed("style features", lambda: [f.stop_grad() for f in enc(jt.array(style))])
    for it in range(a.iters):
        print(f"iteration {it}", flush=True)
        t0 = time.time()
        iteration(timed)
        print(f"  {'iteration total':24s} {time.time() - t0:8.2f} s", flush=True)
    print(f"all: {time.time() - t_all:.1f} s")
    if a.profile:
        iteration(untimed)  # same graph without the per-piece syncs: compile it outside the profile
        t = time.time()
        iteration(untimed)
        print(f"one iteration, no per-piece syncs: {time.time() - t:.3f} s")
        profile_ops(lambda: iteration(untimed), top=a.profile)


if __name__ == "__main__":
    main()
