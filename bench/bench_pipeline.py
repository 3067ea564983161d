"""Whole-pipeline benchmark on fern for one style (run on the GPU machine).

Runs run_stylenerf.py with configs/fern_quick.txt (or --config), then the stylized
novel-view render (at half size) and evaluate.py, and prints the wall time of every
stage.  On one GPU the whole run may exceed one device call (10 min): use --no_eval, then
run evaluate.py in a second call on the same (warm) machine, whose logs/ folder persists.
Target (issue): stages 2-6 for one style within 3 minutes on one GPU.

    python bench/bench_pipeline.py [--config configs/fern_quick.txt] [--extra --style sketch]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from core import runtime  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/fern_quick.txt")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no_eval", action="store_true")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[])
    a = ap.parse_args()
    runtime.setup()
    import evaluate
    import run_stylenerf
    from core import timing
    base = ["--config", a.config] + a.extra
    t = time.time()
    assert run_stylenerf.main(base) == 0
    total_train = time.time() - t
    with timing.stage("render_valid_style"):  # videos at half size keep one device call under 10 min
        assert run_stylenerf.main(base + ["--render_valid_style", "--render_factor", "2"]) == 0
    if not a.no_eval:
        with timing.stage("evaluate"):
            assert evaluate.main(base) == 0
    times = dict(timing.STAGE_TIMES)
    stylization = sum(v for k, v in times.items() if k[0] in "23456")
    print("\nstage                      wall s")
    for k, v in times.items():
        print(f"{k:26s} {v:8.1f}")
    print(f"{'stages 2-6 (stylization)':26s} {stylization:8.1f}")
    print(f"{'run_stylenerf total':26s} {total_train:8.1f}")
    print(runtime.summary())
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"stages": times, "stylization_2_6_s": stylization, "train_total_s": total_train}, f, indent=1)


if __name__ == "__main__":
    main()
