"""The convolution's `jt.code` kernels (models/layers.py builds convolutions from them).

- window_columns(x, k, ho, wo, off)  the k x k windows of an image batch as GEMM columns
- reflect_pad2d(x, p)                torch's ReflectionPad2d, differentiable, one compiled kernel
                                     for all sizes
"""
import jittor as jt

from backend.kernels import elementwise_kernel

# ---------------------------------------------------------------- window columns
# One thread per output element, sizes read at run time from the shapes: one compiled kernel
# per (k, offset) for every layer size.  Measured on the H200: a 6-D reindex [C,k,k,B,Ho,Wo]
# got only its outer loops spread over threads (171 ms for 1.2 GB of columns); a 2-D reindex
# was fast (0.9 ms) but baked each layer's sizes into its index expressions, so every layer
# shape compiled its own kernels (minutes of nvcc before the first fine-tune iteration).
_WINDOWS_BODY = """
    const int K = KSIZE, OFF = OFFSET;
    const long long B = out0_shape1, HO = out0_shape2, WO = out0_shape3;
    const long long C = in0_shape1, H = in0_shape2, W = in0_shape3;
    long long xo = i % WO, t = i / WO;
    long long yo = t % HO; t /= HO;
    long long b = t % B, r = t / B;
    long long c = r / (K * K), y = yo + (r / K) % K - OFF, x = xo + r % K - OFF;
    out0_p[i] = (y >= 0 && y < H && x >= 0 && x < W) ? in0_p[((b * C + c) * H + y) * W + x] : 0;
"""
_WINDOWS_SRC = elementwise_kernel(_WINDOWS_BODY, "window_columns")


def window_columns(x, k, ho, wo, offset=0):
    """x [B,C,H,W] -> columns [C*k*k, B*Ho*Wo]: column (b, y, x), row (c, i, j) holds
    x[b, c, y+i-offset, x+j-offset], 0 outside the image.  Not differentiable."""
    if x.ndim != 4:
        raise ValueError(f"window_columns takes [B,C,H,W], got {tuple(x.shape)}")
    b, c = x.shape[:2]
    cpu, cuda = ((src.replace("KSIZE", str(int(k))).replace("OFFSET", str(int(offset))))
                 for src in _WINDOWS_SRC)
    out = jt.code([c * k * k, b, ho, wo], x.dtype, [x], cpu_src=cpu, cuda_src=cuda)
    return out.reshape([c * k * k, b * ho * wo])


# ---------------------------------------------------------------- reflection padding
# Sizes and the padding come from the shapes at run time (p = (padded - input) / 2), so one
# kernel serves every image size: a reindex bakes them into its index expressions, and on the
# GPU each new style-image size then cost seconds of nvcc (measured: 20 style images of
# different sizes took 236 s of VGG statistics, almost all compile).
_REFLECT_HELPERS = """
#define reflect_index(i, n) ((i) < 0 ? -(i) : ((i) > (n) - 1 ? 2 * ((n) - 1) - (i) : (i)))
"""
_PAD_BODY = """
    const long long H = in0_shape2, W = in0_shape3, HP = out0_shape2, WP = out0_shape3;
    const long long p = (HP - H) / 2;
    long long X = i % WP, t = i / WP;
    long long Y = t % HP, bc = t / HP;
    out0_p[i] = in0_p[(bc * H + reflect_index(Y - p, H)) * W + reflect_index(X - p, W)];
"""
# gradient: each input pixel sums the padded pixels that copied it (itself, and its mirror
# images above/below and left/right when it lies within p of an edge)
_UNPAD_BODY = """
    const long long H = out0_shape2, W = out0_shape3, HP = in0_shape2, WP = in0_shape3;
    const long long p = (HP - H) / 2;
    long long x = i % W, t = i / W;
    long long y = t % H, bc = t / H;
    long long ys[3] = {y + p, p - y, 2 * (H - 1) - y + p};
    bool yok[3] = {true, y >= 1 && y <= p, y < H - 1 && y >= H - 1 - p};
    long long xs[3] = {x + p, p - x, 2 * (W - 1) - x + p};
    bool xok[3] = {true, x >= 1 && x <= p, x < W - 1 && x >= W - 1 - p};
    out0_type acc = 0;
    for (int a = 0; a < 3; a++) if (yok[a])
        for (int b = 0; b < 3; b++) if (xok[b])
            acc += in0_p[(bc * HP + ys[a]) * WP + xs[b]];
    out0_p[i] = acc;
"""
_PAD_SRC = elementwise_kernel(_PAD_BODY, "reflect_pad")
_UNPAD_SRC = elementwise_kernel(_UNPAD_BODY, "reflect_pad_grad")


class _ReflectPad2d(jt.Function):
    def execute(self, x, p):
        b, c, h, w = x.shape
        self.in_shape = x.shape
        cpu, cuda = _PAD_SRC
        return jt.code([b, c, h + 2 * p, w + 2 * p], x.dtype, [x], cpu_header=_REFLECT_HELPERS,
                       cuda_header=_REFLECT_HELPERS, cpu_src=cpu, cuda_src=cuda)

    def grad(self, g):
        cpu, cuda = _UNPAD_SRC
        return jt.code(self.in_shape, g.dtype, [g], cpu_src=cpu, cuda_src=cuda), None


def reflect_pad2d(x, p):
    """[B,C,H,W] -> [B,C,H+2p,W+2p], mirrored at the borders without repeating the edge
    (torch's ReflectionPad2d; needs p < H and p < W)."""
    if x.ndim != 4:
        raise ValueError(f"reflect_pad2d takes [B,C,H,W], got {tuple(x.shape)}")
    if p == 0:
        return x
    if not 0 < p < min(x.shape[2], x.shape[3]):
        raise ValueError(f"reflection padding {p} needs an input larger than that, got "
                         f"{x.shape[2]}x{x.shape[3]}")
    return _ReflectPad2d.apply(x, int(p))
