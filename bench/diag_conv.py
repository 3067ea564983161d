"""Bisect a GPU crash in the 2D style path: prints a line before each step."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from core import runtime
jt = runtime.setup()
import numpy as np
def say(m): print("STEP", m, flush=True)
from models.layers import conv2d_im2col, max_pool2d_ceil, upsample_nearest2x, reflect_pad
x = jt.array(np.random.rand(2, 3, 40, 48).astype(np.float32)); w = jt.array(np.random.rand(8, 3, 3, 3).astype(np.float32))
say("reflect_pad"); reflect_pad(x, 1).sync()
say("conv fwd"); y = conv2d_im2col(x, w, None, 1); y.sync()
say("conv bwd"); g = jt.grad(y.sum(), w); g.sync()
say("pool"); p = max_pool2d_ceil(y, 2); p.sync()
say("pool bwd"); jt.grad(p.sum(), w).sync()
say("upsample"); upsample_nearest2x(p).sync()
from models.vgg import VGGEncoder, resolve_vgg_path
enc = VGGEncoder.from_pth(resolve_vgg_path("pretrained/vgg_normalised.pth"))
say("vgg fwd"); f = enc(x); f[-1].sync()
from models.decoder import Decoder, resolve_decoder_path
dec = Decoder.from_file(resolve_decoder_path("pretrained/decoder.pth", 256), 256)
say("dec fwd"); o = dec(f[-1]); o.sync()
say("dec bwd"); jt.grad(o.sum(), dec.parameters()[0]).sync()
from models.adain import style_loss
say("adain+loss"); l = style_loss(enc(o), f); l.sync()
say("opt step"); opt = jt.optim.Adam(dec.parameters(), lr=1e-4); opt.step(l)
say("splat"); from render.splatting import consistency_loss
pts = jt.array(np.random.rand(3, 10, 12, 3).astype(np.float32) - np.array([0.5, 0.5, 3], np.float32))
c2w = np.tile(np.eye(4, dtype=np.float32)[:3], (3, 1, 1))
img = jt.array(np.random.rand(3, 10, 12, 3).astype(np.float32))
cl = consistency_loss(img, pts.numpy(), c2w, 10, 12, 10.0); cl.sync()
say("splat bwd"); jt.grad(cl, img).sync()
say("ALL OK")
