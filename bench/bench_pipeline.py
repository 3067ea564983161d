"""Whole-pipeline benchmark on fern for one style (run on the GPU machine).

Runs run_stylenerf.py with configs/fern_quick.txt (or --config), then the stylized
novel-view render (at half size) and evaluate.py, and prints the wall time of every
stage.  Where a job may run 10 minutes at most, the whole run may not fit: use --no_eval, then
run evaluate.py in a second job on the same (warm) machine, whose logs/ folder persists.
Target (issue): stages 2-6 for one style within 3 minutes on one GPU.

The style modules are pre-trained first, as in the original's workflow (train_style_modules.py
trains them once for every scene; the pipeline's stage 3 fine-tunes the decoder, its stage 5
only encodes the styles), each timed on its own as a stage 0 and not counted in stages 2-6:
the AdaIN decoder (--decoder_iters iterations, only where no AdaIN decoder is there: the
relu3_1 inverter alone reconstructs rather than stylizes) and the VAE (--vae_in_pipeline
leaves it to stage 5, which trains one when the file is missing).

--warm_rerun then repeats stages 2-6 in a fresh experiment folder (<expname>_warm) that holds
only a copy of the finished NeRF checkpoint: the same work again with Jittor's kernels compiled,
i.e. what a user's second scene or style costs (a fresh machine compiles every kernel once).

    python bench/bench_pipeline.py [--config configs/fern_quick.txt] [--warm_rerun] [--extra --style sketch]
"""
import argparse
import glob
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backend import runtime  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/fern_quick.txt")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no_eval", action="store_true")
    ap.add_argument("--warm_rerun", action="store_true",
                    help="afterwards, stages 2-6 again in <expname>_warm from the same NeRF checkpoint")
    ap.add_argument("--decoder_iters", type=int, default=3000,
                    help="where no AdaIN decoder is there (only the relu3_1 inverter), train one first for "
                         "this many iterations (train_style_modules.py --task finetune_decoder); 0: none")
    ap.add_argument("--decoder_train_args", default="",
                    help="more train_style_modules.py options for that (e.g. '--content_dir DIR --crop_size 128')")
    ap.add_argument("--vae_in_pipeline", action="store_true",
                    help="no VAE pre-training: stage 5 trains the VAE when --vae_pth_path is missing")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[])
    a = ap.parse_args(argv)
    runtime.setup()
    import evaluate
    import run_stylenerf
    from core import timing
    base = ["--config", a.config] + a.extra
    if a.decoder_iters > 0:
        pretrain_decoder(base, a.decoder_iters, a.decoder_train_args.split())
    if not a.vae_in_pipeline:
        pretrain_vae(base)
    t = time.time()
    assert run_stylenerf.main(base) == 0
    total_train = time.time() - t
    times = dict(timing.STAGE_TIMES)
    report("cold" if a.warm_rerun else "", times, total_train)
    result = {"stages": times, "stylization_2_6_s": stylization_time(times), "train_total_s": total_train}
    if a.warm_rerun:  # before the videos: the figure that matters comes first in a time-limited run
        timing.STAGE_TIMES.clear()
        t = time.time()
        assert run_stylenerf.main(base + ["--expname", warm_copy(base)]) == 0
        warm_total = time.time() - t
        warm = dict(timing.STAGE_TIMES)
        report("warm (kernels compiled)", warm, warm_total)
        result["warm"] = {"stages": warm, "stylization_2_6_s": stylization_time(warm), "train_total_s": warm_total}
    save(a.out, result)
    timing.STAGE_TIMES.clear()
    if videos_rendered(base):  # a rerun after a cut evaluation: the videos are whole already
        print("the novel-view videos of the newest style checkpoint are there already: not rendered again")
    else:
        with timing.stage("render_valid_style"):  # videos at half size keep a run under 10 min on one H200
            assert run_stylenerf.main(base + ["--render_valid_style", "--render_factor", "2"]) == 0
    if not a.no_eval:
        with timing.stage("evaluate"):
            assert evaluate.main(base) == 0
    result["after"] = dict(timing.STAGE_TIMES)
    save(a.out, result)
    print(runtime.summary())


def videos_rendered(base):
    """Whether every video --render_valid_style writes for the newest style checkpoint (and the
    run's --style) is there and newer than that checkpoint.  A video appears under its name only
    when whole (core/media.VideoWriter), so a render cut short is done again."""
    from core.config import parse_args
    from pipeline import render_files
    from pipeline.experiment import experiment_dir
    from pipeline.style_stage import style_checkpoints
    args = parse_args(base)
    expdir = experiment_dir(args, create=False)
    step, path = style_checkpoints(expdir, args).latest()
    if step is None:
        return False
    videos = render_files.valid_videos(render_files.render_dir(expdir, "valid", step), args.style.split(","))
    return all(os.path.isfile(v) and os.path.getmtime(v) >= os.path.getmtime(path) for v in videos)


def pretrain_decoder(base, iters, more_args):
    """train_style_modules.py --task finetune_decoder into --decoder_pth_path's folder when
    neither that file nor a decoder trained there before (decoder_finetuned.pkl) exists: the
    relu3_1 inverter alone reconstructs rather than stylizes (the pipeline then picks the
    trained decoder up, models.decoder.resolve_decoder_path)."""
    import train_style_modules
    from core import timing
    from core.config import parse_args
    from models.decoder import TRAINED_FILE
    from pipeline.latents import vae_style_dir
    args = parse_args(base)
    folder = os.path.dirname(args.decoder_pth_path) or "."
    if os.path.isfile(args.decoder_pth_path) or os.path.isfile(os.path.join(folder, TRAINED_FILE)):
        return
    with timing.stage("0 decoder pre-training (train_style_modules.py --task finetune_decoder)"):
        assert train_style_modules.main([
            "--task", "finetune_decoder", "--vgg", args.vgg_pth_path, "--decoder", args.decoder_pth_path,
            "--style_dir", vae_style_dir(args), "--save_dir", folder, "--max_iter", str(iters),
            "--save_model_interval", str(max(1, iters // 3)), "--seed", str(args.seed)] + more_args) == 0


def pretrain_vae(base):
    """The style VAE trained into --vae_pth_path's folder (train_style_modules.py --task vae's
    trainer, with the options stage 5 would use), unless the file exists."""
    from core import timing
    from core.config import parse_args
    from pipeline.latents import vae_style_dir, vae_training_args
    from pipeline.pretrain_2d import train_vae
    args = parse_args(base)
    if os.path.exists(args.vae_pth_path):
        return
    if os.path.basename(args.vae_pth_path) != "vae.pkl":
        raise SystemExit(f"--vae_pth_path {args.vae_pth_path}: train_style_modules writes vae.pkl; "
                         "name the file so or use --vae_in_pipeline")
    with timing.stage("0 VAE pre-training (train_style_modules.py --task vae)"):
        train_vae(vae_training_args(args, vae_style_dir(args), os.path.dirname(args.vae_pth_path) or "."))


def save(path, result):
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1)


def stylization_time(times):
    return sum(v for k, v in times.items() if k[0] in "23456")


def report(title, times, total_train):
    print(f"\nstage {title:20s} wall s")
    for k, v in times.items():
        print(f"{k:26s} {v:8.1f}")
    print(f"{'stages 2-6 (stylization)':26s} {stylization_time(times):8.1f}")
    print(f"{'run_stylenerf total':26s} {total_train:8.1f}", flush=True)


def warm_copy(base):
    """A new experiment folder <expname>_warm holding only the newest NeRF checkpoint; its name."""
    from core.config import parse_args
    args = parse_args(base)
    src = os.path.join(args.basedir, args.expname)
    name = args.expname + "_warm"
    dst = os.path.join(args.basedir, name)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    newest = sorted(glob.glob(os.path.join(src, "nerf_[0-9]*.pkl")))[-1]
    shutil.copy(newest, dst)
    return name


if __name__ == "__main__":
    main()
