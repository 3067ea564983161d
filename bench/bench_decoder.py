"""Decoder training step benchmark (run on the GPU machine): Jittor vs a PyTorch yardstick.

One AdaIN decoder training step (VGG encoder forward on content, style and output, decoder
forward, content + style loss, backward, Adam) at batch 8, 256x256, for each encoder depth:
relu3_1 (the real vgg_normalised_conv3_1.pth + invertor weights) and relu4_1 (random weights
of AdaIN's full layout; timing does not depend on the values).

If PyTorch is importable (it was on the H200 machine measured; it is never a project dependency) the
same step is built there from the same layout tables and weights, with cuDNN, and timed in
the same run.  Target (issue): Jittor <= 1.5x PyTorch's time.  The Jittor step is timed with
each convolution of --conv (default: cuDNN through backend/cudnn.py where it passes its check,
and the gather + cuBLAS GEMM).

    python bench/bench_decoder.py [--batch 8 --size 256 --steps 20] [--conv cudnn gemm]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backend import runtime  # noqa: E402
from bench.common import profile_ops  # noqa: E402


def random_state(shapes, rng):
    return {k: (rng.standard_normal(s) * (0.05 if k.endswith("weight") else 0.01)).astype(np.float32)
            for k, s in shapes.items()}


def state_dicts(depth, vgg_path, dec_path):
    from core.pth import load_state_dict
    from models import decoder as dec_mod
    from models import vgg as vgg_mod
    rng = np.random.default_rng(0)
    if depth == "relu3_1":
        return load_state_dict(vgg_path), load_state_dict(dec_path)
    return (random_state(vgg_mod.expected_shapes("relu4_1"), rng),
            random_state(dec_mod.expected_shapes(512), rng))


def time_steps(step, sync, steps, warmup=3):
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t = time.time()
        step()
        sync()
        times.append(time.time() - t)
    return float(np.median(times))


def jittor_step(vgg_sd, dec_sd, content_np, style_np):
    import jittor as jt
    from core.optim import Adam
    from models.adain import training_losses
    from models.decoder import Decoder
    from models.vgg import VGGEncoder
    enc = VGGEncoder.from_state_dict(vgg_sd, quiet=True)
    dec = Decoder.from_state_dict(dec_sd)
    opt = Adam(dec.parameters(), lr=1e-4)
    content, style = jt.array(content_np), jt.array(style_np)

    def loss():
        _, lc, ls = training_losses(enc, dec, content, style)
        return lc + 2.0 * ls

    return lambda: opt.step(loss()), lambda: jt.sync_all(True), lambda: float(loss().item())


def torch_step(vgg_sd, dec_sd, depth, content_np, style_np):
    import torch
    import torch.nn.functional as F
    from models import decoder as dec_mod
    from models import vgg as vgg_mod
    dev = "cuda"
    W = {k: torch.tensor(v, device=dev) for k, v in vgg_sd.items()}
    D = {k: torch.tensor(v, device=dev, requires_grad=True) for k, v in dec_sd.items()}

    def conv(x, sd, idx, k):
        if k == 3:
            x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, sd[f"{idx}.weight"], sd[f"{idx}.bias"])

    def encoder(x):
        taps = []
        for tap, stage in vgg_mod.STAGES.items():
            for idx, _, _, k in stage["convs"]:  # conv 0 (1x1, RGB->BGR) has no ReLU
                x = conv(x, W, idx, k)
                if k == 3:
                    x = F.relu(x)
            if stage["pool"]:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            for idx, _, _, k in stage.get("after_pool", []):
                x = F.relu(conv(x, W, idx, k))
            taps.append(x)
            if tap == depth:
                return taps
        return taps

    def decoder(t):
        ops = dec_mod.LAYOUTS[512 if depth == "relu4_1" else 256]
        for i, op in enumerate(ops):
            if op == dec_mod.UP:
                t = F.interpolate(t, scale_factor=2, mode="nearest")
            else:
                t = conv(t, D, op[0], 3)
                if i < len(ops) - 1:
                    t = F.relu(t)
        return t

    def stats(f):
        b, c = f.shape[:2]
        v = f.reshape(b, c, -1)
        return v.mean(2), (v.var(2) + 1e-5).sqrt()

    opt = torch.optim.Adam(list(D.values()), lr=1e-4)
    content, style = torch.tensor(content_np, device=dev), torch.tensor(style_np, device=dev)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # like our TF32

    def loss():
        with torch.no_grad():
            s_taps = encoder(style)
            c = encoder(content)[-1]
            cm, cs = stats(c)
            sm, ss = stats(s_taps[-1])
            t = (c - cm[..., None, None]) / cs[..., None, None] * ss[..., None, None] + sm[..., None, None]
        out = decoder(t)
        o_taps = encoder(out)
        lc = F.mse_loss(o_taps[-1], t)
        ls = sum(F.mse_loss(stats(a)[0], stats(b)[0]) + F.mse_loss(stats(a)[1], stats(b)[1])
                 for a, b in zip(o_taps, s_taps))
        return lc + 2.0 * ls

    def step():
        opt.zero_grad()
        loss().backward()
        opt.step()
    return step, torch.cuda.synchronize, lambda: float(loss().item())


def torch_profile(step, top):
    """The `top` most expensive CUDA kernels of one PyTorch step (the yardstick's breakdown)."""
    import torch
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    print("PyTorch:", flush=True)
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=top, max_name_column_width=90))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--vgg", default="pretrained/vgg_normalised_conv3_1.pth")
    ap.add_argument("--decoder", default="pretrained/feature_invertor_conv3_1.pth")
    ap.add_argument("--out", default=None)
    ap.add_argument("--profile", type=int, default=0,
                    help="also print the N most expensive kernels of one step (Jittor, then PyTorch)")
    ap.add_argument("--conv", nargs="+", default=["cudnn", "gemm"],
                    choices=["cudnn", "cudnn_heuristic", "gemm", "jittor"],
                    help="Jittor convolutions to time (cudnn: algorithms timed per shape; cudnn_heuristic: the "
                         "heuristics' choice; both skipped where cuDNN is not available)")
    a = ap.parse_args()
    runtime.setup()
    from backend import cudnn
    from models import layers
    convs = [c for c in a.conv if not c.startswith("cudnn") or cudnn.available()]
    rows = []
    for depth in ("relu3_1", "relu4_1"):
        vgg_sd, dec_sd = state_dicts(depth, a.vgg, a.decoder)
        rng = np.random.default_rng(1)
        content, style = (rng.random((a.batch, 3, a.size, a.size), np.float32) for _ in range(2))
        row = {"depth": depth}
        for conv in convs:
            # cudnn_heuristic: cuDNN with the heuristics' algorithms instead of timed ones
            layers.set_library_switches(cudnn_search=conv != "cudnn_heuristic")
            layers.set_conv_impl("cudnn" if conv.startswith("cudnn") else conv)
            step, sync, first_loss = jittor_step(vgg_sd, dec_sd, content, style)
            # the same loss from the same weights and images in both frameworks: a correctness check
            row[f"jittor_{conv}_loss"] = first_loss()
            row[f"jittor_{conv}_ms"] = 1e3 * time_steps(step, sync, a.steps)
            if a.profile and conv == convs[0]:
                print(f"{depth}, conv={conv}:", flush=True)
                profile_ops(step, top=a.profile)
        try:
            import torch
            if torch.cuda.is_available():
                step, sync, first_loss = torch_step(vgg_sd, dec_sd, depth, content, style)
                row["torch_loss"] = first_loss()
                row["torch_ms"] = 1e3 * time_steps(step, sync, a.steps)
                if a.profile:
                    torch_profile(step, a.profile)
        except ImportError:
            pass
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\ndecoder training step, batch {a.batch}, {a.size}x{a.size} (median of {a.steps})")
    for r in rows:
        for conv in convs:
            ms, loss = r[f"jittor_{conv}_ms"], r[f"jittor_{conv}_loss"]
            extra = (f"  PyTorch+cuDNN {r['torch_ms']:.1f} ms  ratio {ms / r['torch_ms']:.2f}x;"
                     f" first loss {loss:.5g} vs {r['torch_loss']:.5g}" if "torch_ms" in r else "")
            print(f"{r['depth']}, Jittor with conv={conv}: {ms:.1f} ms{extra}")
    print(runtime.summary())
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
