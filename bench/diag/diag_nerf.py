"""Where one NeRF training step spends its time at the fern config's workload (factor 4, 2048
rays, 64+64 samples, view directions): ms/step after the JIT compile, then a profile of one
step (the most expensive Jittor ops; a warning for any op that ran on the CPU).

    python bench/diag/diag_nerf.py [--steps 50 --profile 25] [--extra --gemm cublas]
    python bench/diag/diag_nerf.py --gemms cublaslt cublaslt:epilogue cublas jittor --profile 12

--gemms times several Linear products one after another, each in a process of its own (one
that crashes - `--gemm cublas` segfaulted on one H200 on 2026-12-02 - costs only its own row;
the kernels they share compile once, into Jittor's cache); "cublaslt:epilogue" is cuBLASLt with
the bias gradients in the weight-gradient GEMM's BGRADB epilogue
(--cublaslt_bgrad epilogue) instead of the ReLU-gradient pass (the default, "kernel").
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from backend import runtime  # noqa: E402
from bench.common import nerf_train_step, profile_ops  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datadir", default=os.path.join(ROOT, "data", "nerf_llff_data", "fern"))
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "fern.txt"))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--profile", type=int, default=25, help="print the N most expensive ops of one step")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more run_stylenerf options")
    ap.add_argument("--gemms", nargs="+", default=None, metavar="GEMM[:BGRAD]",
                    help="time these Linear products in turn: cublaslt, cublaslt:epilogue, cublas, jittor")
    ap.add_argument("--ms_out", default=None, help=argparse.SUPPRESS)  # a child's ms/step, as JSON
    a = ap.parse_args()
    if a.gemms and len(a.gemms) > 1:
        compare_in_children(a)
        return
    jt = runtime.setup()
    from core.config import parse_args
    from pipeline.stages import load_scene
    scene = load_scene(parse_args(["--config", a.config, "--datadir", a.datadir] + a.extra))
    options = []
    if a.gemms:
        gemm, _, bgrad = a.gemms[0].partition(":")
        options = ["--gemm", gemm] + (["--cublaslt_bgrad", bgrad] if bgrad else [])
    ms = time_variant(jt, a, scene, options)
    if a.ms_out:
        with open(a.ms_out, "w") as f:
            json.dump({"ms": ms}, f)


def compare_in_children(a):
    """Each --gemms variant in a child process (its output streams through), then one table.
    This process must not import Jittor: Jittor's SIGCHLD handler ends a process whose child
    died of a signal, so a crashing variant would end the comparison too."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, variant in enumerate(a.gemms):
            gemm, _, bgrad = variant.partition(":")
            print(f"\n==== --gemm {gemm}" + (f", bias gradients: {bgrad}" if bgrad else ""), flush=True)
            ms_out = os.path.join(tmp, f"{k}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--datadir", a.datadir, "--config", a.config,
                   "--steps", str(a.steps), "--profile", str(a.profile), "--gemms", variant, "--ms_out", ms_out]
            rc = subprocess.call(cmd + (["--extra"] + a.extra if a.extra else []))
            ms = json.load(open(ms_out))["ms"] if rc == 0 and os.path.exists(ms_out) else None
            rows.append((variant, ms, rc))
    print("\nms/step by Linear product (same workload, one process each):")
    for variant, ms, rc in rows:
        print(f"  {variant:18s} " + (f"{ms:6.1f} ms = {1e3 / ms:5.1f} it/s" if ms else f"failed (exit code {rc})"))


def time_variant(jt, a, scene, options):
    """ms per training step with these run_stylenerf options (after 3 compile steps), then the profile."""
    from core.config import parse_args
    from core.optim import Adam
    from pipeline.stages import apply_compute_options
    args = parse_args(["--config", a.config, "--datadir", a.datadir] + a.extra + options)
    apply_compute_options(args)
    step, _ = nerf_train_step(args, scene, Adam, n_rays=args.batch_size)
    t = time.time()
    for k in range(3):
        step(k)
    jt.sync_all(True)
    print(f"first 3 steps (JIT compile): {time.time() - t:.1f} s", flush=True)
    t = time.time()
    for k in range(a.steps):
        step(k)
    jt.sync_all(True)
    ms = (time.time() - t) / a.steps * 1e3
    print(f"{ms:.1f} ms/step = {1e3 / ms:.1f} it/s over {a.steps} steps "
          f"({args.batch_size} rays, {args.N_samples}+{args.N_samples_fine} samples); {runtime.summary()}",
          flush=True)
    if a.profile:
        profile_ops(lambda: step(0), top=a.profile)
    return ms


if __name__ == "__main__":
    main()
