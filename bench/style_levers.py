"""How closely the stylized NeRF follows its targets, for several style-stage settings side by
side on one trained NeRF: style loss against per-frame AdaIN's, sharpness, consistency.

    python bench/style_levers.py --config configs/fern_quick.txt \
        --common "--expname fern_quick_nerf120k --origin_step 120001" \
        --variant base="--total_step 123001" \
        --variant f2="--target_factor 2 --total_step 123001" \
        --variant f2_long="--target_factor 2 --total_step 150001" \
        [--eval "--eval_frames 30"] [--parallel 2] [--out levers.json] [--no_eval | --eval_only]

1. The base experiment (--common's --expname) runs stages 1-5 (run_stylenerf.py with one style
   step), or finds them done.
2. Each variant gets a folder of its own, <expname>_<variant>, that shares the base's NeRF,
   geometry, fine-tuned decoder and VAE (links; its targets are its own, as --target_factor may
   change them) and starts from the base's style sample cache where its options match (on a
   2-core CPU that cache is most of 20 minutes at 252x189), and runs stage 6 with the variant's options; --parallel of them at a time
   (small style batches leave most of a GPU idle).
3. evaluate.py measures each (its --eval options too), and the table gives per variant and style:
   the stylized NeRF's style loss over per-frame AdaIN's (issue target <= 1.25x), the
   sharpness of both relative to the photoreal frames (target: the NeRF within 20% of 1), the
   content distance of both to the photoreal frames (a texture bought by losing the scene
   shows there - and in the picture strips, eval/strip_<style>.png, which are worth a look),
   the consistency ratios (target k=7 <= 0.5), and the style stage's steps and wall time (summed
   over the runs that trained steps; variants trained side by side share the GPU).
"""
import argparse
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from pipeline.experiment import is_partial  # noqa: E402
from evaluation.tables import ADAIN, ADAIN_3D, CARRIED, NERF  # noqa: E402  (the report's method names)
SHARED_DIRS = ("geometry",)
# Folders whose files each variant gets as hard links, not the folder: the style sample cache
# built by the base's one style step serves every variant with the same sampling options (its
# key matches), and a variant with other options clears its links and builds its own without
# touching the base's files (keys are replaced, not rewritten: core/cache_key.write_key).
LINKED_DIRS = ("style_samples",)
SKIPPED = ("args.txt", "config.txt")
TIME_LIMIT_EXIT = 75  # run_stylenerf.py stopped by --time_limit, its steps saved


def parse_variant(spec):
    name, sep, opts = spec.partition("=")
    if not sep or not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"error: --variant takes name=\"options\" (name: letters, digits, _), got {spec!r}")
    return name, shlex.split(opts)


def experiment_dir(config, common):
    """<basedir>/<expname> as run_stylenerf.py resolves them for these options."""
    from core.config import parse_args
    args = parse_args(["--config", config] + common)
    return os.path.join(args.basedir, args.expname), args


def share(base, dst):
    """dst gets links to base's stages 1-5 outputs: top-level files but style checkpoints and
    run records, the geometry folder, and the files of the base's style sample cache (LINKED_DIRS)
    unless dst has a cache of its own; its own targets/ and style_*.pkl stay its own."""
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(base):
        src, out = os.path.join(base, f), os.path.join(dst, f)
        if os.path.lexists(out) or f.startswith("style_") or f in SKIPPED or f.endswith(".log"):
            continue
        if f in SHARED_DIRS:
            os.symlink(os.path.abspath(src), out)
        elif os.path.isfile(src):
            os.link(src, out)
    for d in LINKED_DIRS:
        src_dir, out_dir = os.path.join(base, d), os.path.join(dst, d)
        if not os.path.isdir(src_dir) or os.path.exists(os.path.join(out_dir, "meta.json")):
            continue  # none to share, or the variant's own cache (kept, whatever its key)
        os.makedirs(out_dir, exist_ok=True)
        for f in os.listdir(src_dir):
            if not is_partial(f) and not os.path.lexists(os.path.join(out_dir, f)):
                os.link(os.path.join(src_dir, f), os.path.join(out_dir, f))


def run_logged(cmd, log_path):
    log = open(log_path, "a")
    log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
    log.flush()
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log


def run_all(jobs, parallel, on_done=None):
    """jobs: [(name, cmd, log)] run at most `parallel` at a time; returns {name: (rc, seconds)}.
    SIGTERM or Ctrl-C (a job scheduler's time limit) passes SIGTERM on to the running jobs,
    which save their step and stop (a rerun resumes them), and starts no more. on_done(name, rc,
    seconds) is called as each job ends, those stopped by a signal too."""
    pending, running, done = list(jobs), {}, {}
    stop = []

    def on_signal(signum, frame):
        stop.append(signum)
        pending.clear()
        for proc, _, _ in running.values():
            proc.send_signal(signal.SIGTERM)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        _run(pending, running, done, parallel, on_done)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if stop:
        raise SystemExit(f"stopped by signal {stop[0]}: the jobs saved their steps; run the same command again "
                         "to continue")
    return done


def _run(pending, running, done, parallel, on_done=None):
    while pending or running:
        while pending and len(running) < parallel:
            name, cmd, log = pending.pop(0)
            running[name] = (*run_logged(cmd, log), time.time())
        time.sleep(1)
        for name, (proc, log, t0) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                done[name] = (proc.returncode, time.time() - t0)
                print(f"  {name}: exit {proc.returncode} after {done[name][1]:.0f} s", flush=True)
                del running[name]
                if on_done:
                    on_done(name, *done[name])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def clear_base_style_step(base, origin_step):
    """Remove the base's own one-step style checkpoint (and its record of inputs), when that is
    all the style stage holds there: it is only there to finish stages 1-5, and a base whose
    targets were remade since (a new decoder) would otherwise refuse it (pipeline/style_inputs.py).
    A real style training in the base folder (later steps) is left as it is."""
    if style_checkpoint_steps(base) == [origin_step + 1]:
        for f in (f"style_{origin_step + 1:06d}.pkl", "style_inputs.json"):
            if os.path.exists(os.path.join(base, f)):
                os.remove(os.path.join(base, f))


def style_checkpoint_steps(folder):
    """The steps of the style_<step>.pkl files in folder."""
    return sorted(int(f[6:-4]) for f in os.listdir(folder) if f.startswith("style_") and f.endswith(".pkl")
                  and f[6:-4].isdigit())


def style_steps(expdir, origin_step):
    """Style steps trained: the newest style_<step>.pkl's step past origin_step."""
    steps = style_checkpoint_steps(expdir)
    return steps[-1] - origin_step if steps else 0


SECONDS_FILE = "levers_style_seconds.txt"


def recorded_seconds(expdir, default=0.0):
    """The style-stage seconds recorded in <expdir>/levers_style_seconds.txt (default: none yet)."""
    path = os.path.join(expdir, SECONDS_FILE)
    return float(open(path).read()) if os.path.exists(path) else default


def stage_time(seconds):
    """A variant's style-stage time for the table: "N s", or "time not recorded" (a variant trained
    before its seconds were kept)."""
    return "time not recorded" if seconds is None or seconds != seconds else f"{seconds:.0f} s"


def add_training_time(expdir, steps_before, seconds):
    """The style stage's wall time over all the runs that trained it (a time limit may cut it into
    several): a run's seconds count only if it trained steps (a rerun that finds the steps done
    adds none). Kept in <expdir>/levers_style_seconds.txt; returns the total."""
    total = recorded_seconds(expdir)
    if style_steps(expdir, 0) != steps_before:
        total += seconds
        with open(os.path.join(expdir, SECONDS_FILE), "w") as f:
            f.write(f"{total:.1f}\n")
    return total


def variant_rows(name, expdir, eval_name="eval"):
    """Per style: style-loss ratio, sharpness (NeRF, AdaIN), consistency ratios, from the report's
    folder (evaluate.py's --eval_name)."""
    strength = read_csv(os.path.join(expdir, eval_name, "style_strength.csv"))
    summary = {r["style"]: r for r in read_csv(os.path.join(expdir, eval_name, "summary.csv"))}
    rows = []
    for s in sorted({r["style"] for r in strength if r["method"] == NERF}):
        get = {r["method"]: r for r in strength if r["style"] == s}
        key = os.path.splitext(s)[0]
        nerf, adain = float(get[NERF]["style_loss"]), float(get[ADAIN]["style_loss"])
        cons = {k: float(v) for k, v in summary.get(key, {}).items() if k.startswith("consistency_ratio")}
        # AdaIN's texture carried in 3D from one frame (a pessimistic reference for style)
        carried = {"carried_style_loss_ratio": float(get[CARRIED]["style_loss"]) / adain} if CARRIED in get else {}
        # per-frame AdaIN with the decoder fine-tuned in 3D (the targets' decoder), where there is one
        tuned = {"style_loss_ratio_3d": nerf / float(get[ADAIN_3D]["style_loss"])} if ADAIN_3D in get else {}
        rows.append({"variant": name, "style": key, "style_loss_nerf": nerf, "style_loss_adain": adain,
                     "style_loss_ratio": nerf / adain, "sharpness_nerf": float(get[NERF]["sharpness"]),
                     "sharpness_adain": float(get[ADAIN]["sharpness"]),
                     "content_distance_nerf": float(get[NERF]["content_distance"]),
                     "content_distance_adain": float(get[ADAIN]["content_distance"]), **cons, **carried,
                     **tuned})
    return rows


def table(rows, seconds):
    ratios = sorted({k for r in rows for k in r if k.startswith("consistency_ratio")})
    titles = [k.replace("consistency_ratio_", "consistency ") for k in ratios]
    if any("carried_style_loss_ratio" in r for r in rows):
        ratios.append("carried_style_loss_ratio")
        titles.append("AdaIN carried in 3D: ratio")
    if any("style_loss_ratio_3d" in r for r in rows):
        ratios.append("style_loss_ratio_3d")
        titles.append("ratio to AdaIN with the 3D-tuned decoder")
    lines = ["| variant | style | style loss NeRF / AdaIN | ratio | sharpness NeRF / AdaIN | content distance NeRF / AdaIN | "
             + " | ".join(titles) + " | style stage |",
             "|---" * (7 + len(ratios)) + "|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['style']} | {r['style_loss_nerf']:.3f} / {r['style_loss_adain']:.3f} | "
                     f"{r['style_loss_ratio']:.2f}x | {r['sharpness_nerf']:.2f} / {r['sharpness_adain']:.2f} | "
                     f"{r['content_distance_nerf']:.2f} / {r['content_distance_adain']:.2f} | "
                     + " | ".join(f"{r.get(k, float('nan')):.2f}" for k in ratios)
                     + f" | {r.get('style_steps', 0)} steps, {stage_time(seconds.get(r['variant']))} |")
    return lines


def train_variants(jobs, dirs, parallel):
    """Stage 6 of each variant, `parallel` at a time: {name: style-stage seconds} of those that
    trained to the end or to their own --time_limit (exit 75, saved: equal-time comparisons),
    summed over the runs that trained them, this one and earlier ones."""
    print(f"style stage of {len(jobs)} variants, {parallel} at a time", flush=True)
    before = {n: style_steps(d, 0) for n, d in dirs.items()}
    total = {}

    def on_done(name, rc, seconds):  # also for a run the time limit stopped: its steps are saved
        total[name] = add_training_time(dirs[name], before[name], seconds)
    trained = run_all(jobs, parallel, on_done=on_done)
    return {n: total[n] for n, (rc, s) in trained.items() if rc in (0, TIME_LIMIT_EXIT)}


def trained_so_far(dirs):
    """--eval_only: {name: style-stage seconds recorded so far} of every variant; an error line if
    one has no style checkpoint."""
    missing = [n for n, d in dirs.items() if style_steps(d, 0) == 0]
    if missing:
        raise SystemExit(f"error: --eval_only: no style checkpoint (style_*.pkl) for {', '.join(missing)}: "
                         f"train {'it' if len(missing) == 1 else 'them'} first (without --eval_only)")
    print(f"evaluating {len(dirs)} variants as trained so far (--eval_only)", flush=True)
    return {n: recorded_seconds(d, default=float("nan")) for n, d in dirs.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/fern_quick.txt")
    ap.add_argument("--common", default="", help="options of every run and evaluation (e.g. --expname, --origin_step)")
    ap.add_argument("--variant", action="append", required=True, help='name="run_stylenerf.py options"')
    ap.add_argument("--eval", default="", help="more evaluate.py options (e.g. --eval_frames 30)")
    ap.add_argument("--parallel", type=int, default=1, help="variants trained at the same time")
    ap.add_argument("--no_eval", action="store_true", help="train only (evaluate in a later run)")
    ap.add_argument("--eval_only", action="store_true",
                    help="evaluate the variants as trained so far, training nothing (e.g. after a run whose "
                         "evaluation was cut: running it again would train --time_limit variants once more)")
    ap.add_argument("--out", default=None, help="JSON of the rows")
    a = ap.parse_args(argv)
    if a.eval_only and a.no_eval:
        raise SystemExit("error: --eval_only and --no_eval leave nothing to do; give one of them")
    common = shlex.split(a.common)
    variants = [parse_variant(v) for v in a.variant]
    base, args = experiment_dir(a.config, common)
    _, eval_args = experiment_dir(a.config, common + shlex.split(a.eval))
    eval_name = eval_args.eval_name  # where evaluate.py writes each variant's report
    py = [sys.executable]
    t0 = time.time()
    if a.eval_only and not os.path.isdir(base):
        raise SystemExit(f"error: --eval_only: no experiment folder {base}: train the variants first")
    if not a.eval_only:
        print(f"base experiment {base}: stages 1-5", flush=True)
        prep = py + ["run_stylenerf.py", "--config", a.config] + common + ["--total_step", str(args.origin_step + 1)]
        os.makedirs(base, exist_ok=True)
        clear_base_style_step(base, args.origin_step)
        rc = run_all([("stages 1-5", prep, os.path.join(base, "levers_prepare.log"))], 1)["stages 1-5"][0]
        if rc != 0:
            raise SystemExit(f"error: stages 1-5 failed (exit {rc}): see {base}/levers_prepare.log")
    jobs, evals, dirs = [], [], {}
    for name, opts in variants:
        exp = f"{args.expname}_{name}"
        dirs[name] = os.path.join(args.basedir, exp)
        share(base, dirs[name])
        run = common + ["--expname", exp] + opts
        jobs.append((name, py + ["run_stylenerf.py", "--config", a.config] + run,
                     os.path.join(dirs[name], "levers_train.log")))
        evals.append((name, py + ["evaluate.py", "--config", a.config] + run + shlex.split(a.eval),
                      os.path.join(dirs[name], "levers_eval.log")))
    if a.eval_only:
        seconds = trained_so_far(dirs)
    else:
        seconds = train_variants(jobs, dirs, a.parallel)
    if a.no_eval:
        return 0
    print("evaluation", flush=True)
    evaluated = run_all([e for e in evals if e[0] in seconds], a.parallel)
    rows = [{**r, "style_steps": style_steps(dirs[name], args.origin_step)}
            for name, _ in variants if evaluated.get(name, (1,))[0] == 0 for r in variant_rows(name, dirs[name], eval_name)]
    print("\n".join(table(rows, seconds)))
    print(f"{time.time() - t0:.0f} s in all", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"config": a.config, "common": common, "variants": dict(variants), "eval": a.eval,
                       "style_stage_s": seconds, "rows": rows}, f, indent=1)
    failed = [n for n, _ in variants if n not in seconds or evaluated.get(n, (1,))[0] != 0]
    if failed:
        print(f"failed: {', '.join(failed)} (logs: {', '.join(dirs[n] + '/levers_*.log' for n in failed)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
