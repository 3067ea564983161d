"""Time the pieces of one GPU convolution layer (pad, window gather, GEMM, whole forward,
forward + backward) and compare wall time with the profiler's kernel time: a large gap means
host work (allocation, synchronisation) rather than kernels.  Where cuDNN passes its check
(backend/cudnn.py), also the same layer through cuDNN, and how far its output and gradients are
from the gather + GEMM convolution's (both TF32 unless --matmul fp32).

    python bench/diag/diag_conv.py [--reps 10]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from backend import runtime  # noqa: E402
from bench.common import profile_ops  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--layers", nargs="+", default=["8,64,64,256", "4,128,128,128", "4,256,256,64"],
                    help="batch,in,out,size of each layer to time")
    ap.add_argument("--matmul", default="tf32", choices=["fp32", "tf32"])
    a = ap.parse_args()
    jt = runtime.setup()
    from backend import cudnn
    from backend.blas import gemm
    from backend.conv import window_columns
    from models.layers import conv2d_cudnn, conv2d_gemm, reflect_pad
    runtime.set_matmul(a.matmul)
    cudnn.set_math(a.matmul)
    with_cudnn = cudnn.available()

    def timed(name, fn, gflop=None):
        fn()
        jt.sync_all(True)  # compile and warm up
        t = time.time()
        for _ in range(a.reps):
            fn()
        jt.sync_all(True)
        wall = (time.time() - t) / a.reps * 1e3
        _, kern, _ = profile_ops(fn, top=0, log=lambda *_: None)
        rate = f"  {gflop / wall:7.1f} TFLOP/s" if gflop else ""
        print(f"  {name:22s} wall {wall:8.2f} ms  kernels {kern:8.2f} ms{rate}", flush=True)

    for spec in a.layers:
        b, c, o, s = (int(v) for v in spec.split(","))
        print(f"layer: batch {b}, {c}->{o} channels, {s}x{s}, 3x3, reflect padding", flush=True)
        rng = np.random.default_rng(0)
        x = jt.array(rng.standard_normal((b, c, s, s), np.float32))
        w = jt.array(rng.standard_normal((o, c, 3, 3), np.float32) * 0.05)
        bias = jt.zeros((o,))
        gflop = 2 * b * s * s * c * 9 * o / 1e9
        xp = reflect_pad(x, 1).sync()
        cols = window_columns(xp, 3, s, s).sync()
        timed("reflect pad", lambda: reflect_pad(x, 1).sync())
        timed("window gather", lambda: window_columns(xp, 3, s, s).sync())
        timed("GEMM", lambda: gemm(w.reshape([o, c * 9]), cols).sync(), gflop)
        timed("conv forward", lambda: conv2d_gemm(x, w, bias, 1).sync(), gflop)

        def fwd_bwd(conv=conv2d_gemm):
            out = conv(x, w, bias, 1)
            gx, gw = jt.grad((out * out).sum(), [x, w])
            jt.sync([gx, gw])
            return out, gx, gw
        timed("conv forward+backward", fwd_bwd, 3 * gflop)
        del xp, cols
        if with_cudnn:
            timed("cuDNN forward", lambda: conv2d_cudnn(x, w, bias, 1).sync(), gflop)
            timed("cuDNN forward+backward", lambda: fwd_bwd(conv2d_cudnn), 3 * gflop)
            ref, got = fwd_bwd(conv2d_gemm), fwd_bwd(conv2d_cudnn)
            errs = [float(np.abs(g.numpy() - r.numpy()).max() / max(np.abs(r.numpy()).max(), 1e-12))
                    for g, r in zip(got, ref)]
            print("  cuDNN vs gather+GEMM, max relative difference: output {:.2e}, input gradient {:.2e}, "
                  "weight gradient {:.2e}".format(*errs), flush=True)
    print(runtime.summary())


if __name__ == "__main__":
    main()
