#!/usr/bin/env bash
# Runs the benchmarks and diagnostics on a GPU machine without internet access (e.g. a cluster
# node): installs the wheels from a folder, takes the assets from a folder (.offline/wheels and
# .offline/assets, filled by scripts/prepare_offline.sh on a machine with a network), then runs
# the step named as first argument, writing its logs and archives to $OUT (default /tmp/out):
#   probe | tests [files] | nerf <eval steps...> | decoder | pipeline <seconds> [bench_pipeline args]
#   | diag <seconds> [diag_finetune args] | nerfdiag <seconds> [diag_nerf args]
#   | conv <seconds> [diag_conv args]
#   | cudnn (diag_cudnn, its tests, the decoder step)
#   | check (nerfdiag with each Linear product, the decoder benchmark, GPU tests)
#   | cublaslt (the stand-alone cuBLASLt check)
#   | fernlong <seconds> [bench_nerf args] (fern.txt's NeRF stage over several runs, resumed)
#   | fernstyle <seconds> [run_stylenerf options] (fern_quick's stylization on fernlong's NeRF)
#   | render <seconds> [bench_render args] (fast against exact renderer on fern.txt's NeRF)
#   | levers <seconds> [style_levers args] (style-stage variants on fern.txt's NeRF, evaluated)
#   | leversown <seconds> [style_levers args] (the same on fern_quick's own NeRF and decoder)
#   | tidycheck <seconds> (1427bdb's code and this tree, the same inputs, frames compared)
#   | gridbench [bench_hash_grid args] (the hash-grid step: one table, a table per style)
# <seconds> is a time limit (a job scheduler's, say): the long steps save their newest
# checkpoints into $OUT as archives, and with those archives in .offline/resume/ the same step
# continues on a fresh machine where the last run stopped.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_env.sh || exit 1
# progress bars at most every 20 s (tqdm >= 4.66 reads TQDM_* defaults), one line each
export TQDM_MININTERVAL=20 STYLENERF_ASSETS=${STYLENERF_ASSETS:-$STYLENERF_OFFLINE/assets}
python3 scripts/get_assets.py --from "$STYLENERF_ASSETS" >/dev/null || exit 1
resume=$STYLENERF_OFFLINE/resume  # archives an earlier run wrote to its $OUT
# style modules pre-trained by an earlier run (run_pipeline's pretrained.tgz), if there
[ -f "$resume/pretrained.tgz" ] && tar xzf "$resume/pretrained.tgz"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"

# stdin -> one line per progress update, without Jittor's compile progress, echoed and kept in $OUT/$1
logged() { tr '\r' '\n' | grep --line-buffered -v "^Compiling\|^ *$" | tee -a "$OUT/$1"; }
# boxed <script> <log> <seconds> [args]: run bench/<script> inside a time budget, logged
boxed() { local script=$1 log=$2 budget=$3; shift 3
          timeout "$budget" python3 "bench/$script" "$@" 2>&1 | logged "$log"; }

# newest <folder> <prefix>: the newest <prefix>_<step>.pkl there (steps are zero-padded), or nothing
newest() { ls $1/${2}_[0-9]*.pkl 2>/dev/null | sort | tail -1; }

# run_pipeline <experiment folder> <seconds> <pack the NeRF: 1|0> [bench_pipeline args]:
# restores $resume/exp_*.tgz, runs bench_pipeline.py inside the time limit and, whatever
# happens, packs into $OUT the experiment's newest checkpoints (exp_<name>_nerf.tgz,
# exp_<name>_rest.tgz: put into $resume, each restores its own folder), its results
# (results.tgz) and the pre-trained style modules (pretrained.tgz: put into $resume, a fresh
# machine skips their 4 minutes)
run_pipeline() { local exp=$1 budget=$2 pack_nerf=$3 name; shift 3; name=$(basename "$exp")
    for f in "$resume"/exp_*.tgz; do [ -f "$f" ] && tar xzf "$f"; done  # each restores its own folder
    timeout "$budget" python3 bench/bench_pipeline.py --out "$OUT/bench_pipeline.json" "$@" 2>&1 \
      | logged pipeline.log
    # newest checkpoint of each kind only, to keep the archives small;
    # the fine-tune's checkpoint only while its result decoder.pkl is missing
    pack() { local out=$1; shift; [ $# -gt 0 ] && tar czf "$OUT/$out" "$@"; }
    [ "$pack_nerf" = 1 ] && pack exp_${name}_nerf.tgz $(newest $exp nerf)
    pack exp_${name}_rest.tgz $([ -f $exp/decoder.pkl ] || newest $exp decoder_ft) $(newest $exp style) \
      $(ls $exp/*.txt $exp/decoder.pkl $exp/vae.pkl $exp/vae_style_stats.npz 2>/dev/null)
    pack pretrained.tgz $(ls pretrained/decoder_finetuned.pkl pretrained/vae.pkl 2>/dev/null)
    # videos, two frames of each kind, the evaluation report, the pre-trained decoder's last
    # sample grid (content | style | output)
    pack results.tgz $(find $exp/render_valid_* $exp/eval -type f \( -name '*.mp4' \
      -o -name '*fine_000[03]0.png' -o -path '*/eval/*' \) ! -path '*/eval/frames/*' 2>/dev/null) \
      $(ls pretrained/decoder_samples/*.png 2>/dev/null | tail -1)
    ls -la "$OUT"; du -sh $exp/*
}

# levers <seconds> <base experiment folder> <its --common options> [style_levers args]: the
# variants trained and evaluated inside the time limit, logged line by line into $OUT/levers.log
# (a cut run loses no line), and their reports packed (without eval/frames/: a cut evaluation's
# rendered frames, hundreds of MB, stay for its rerun here)
levers() { local budget=$1 exp=$2 common=$3; shift 3
    timeout -k 20 "$budget" python3 bench/style_levers.py --config configs/fern_quick.txt \
      --common "$common" --out "$OUT/style_levers.json" "$@" 2>&1 | logged levers.log
    tar czf "$OUT/levers_eval.tgz" --exclude='*/eval/frames' \
      $(ls -d ${exp}_*/eval ${exp}_*/levers_*.log $exp/levers_prepare.log 2>/dev/null)
}

step=$1; shift
case "$step" in
  probe)   # what the machine has: GPU, CUDA, cuDNN files (for the runtime's library search)
    { nvidia-smi -L; nvcc --version | tail -1; python3 -c 'import numpy; print("numpy", numpy.__version__)'
      ls /usr/include/x86_64-linux-gnu/cudnn* /usr/include/cudnn* /usr/local/cuda/include/cudnn* 2>&1 | head -20
      ls -la /usr/lib/x86_64-linux-gnu/libcudnn* /usr/local/cuda/lib64/libcudnn* 2>&1 | head -30
      python3 -c 'import nvidia.cudnn, os; d=os.path.dirname(nvidia.cudnn.__file__) if nvidia.cudnn.__file__ else list(nvidia.cudnn.__path__)[0]; print(d); [print(r, f) for r, _, f in os.walk(d)]' 2>&1 | head -30
    } 2>&1 | tee "$OUT/probe.txt" ;;
  gridbench)  # the hash-grid step alone, one table against a table per style (about a minute)
    python3 bench/bench_hash_grid.py "$@" 2>&1 | logged grid_bench.log ;;
  tests)   # the CPU suite's kernel tests, on the GPU (jt.code CUDA paths, the GPU convolution)
    python3 -m pytest -q -p no:cacheprovider "$@" 2>&1 | logged tests.log | tail -80 ;;
  nerf)    # NeRF stage benchmark
    python3 bench/bench_nerf.py --out "$OUT/bench_nerf.json" --eval_at "$@" 2>&1 | logged nerf.log ;;
  decoder) # decoder training step, Jittor vs PyTorch+cuDNN (yardstick only)
    python3 bench/bench_decoder.py --out "$OUT/bench_decoder.json" "$@" 2>&1 | logged decoder.log ;;
  diag)    # where one decoder fine-tune iteration spends its time: diag <seconds> [diag_finetune args]
    boxed diag/diag_finetune.py diag.log "$@" ;;
  nerfdiag) # ms per NeRF step at fern's workload and a profile of one step: nerfdiag <seconds> [args]
    boxed diag/diag_nerf.py nerfdiag.log "$@" ;;
  conv)    # the pieces of one convolution layer: wall vs kernel time
    boxed diag/diag_conv.py conv.log "$@" ;;
  check)   # the GPU checks in one go (about 9 min, each part time-limited): the NeRF step with
           # each Linear product, the decoder step with cuDNN's timed and heuristic algorithms
           # next to PyTorch (with both profiles; gather + GEMM measured 63.4 / 84.6 ms on
           # 2026-12-02), then the GPU tests of the fused kernels, cuDNN and cuBLASLt, one line
           # per test (on a fresh machine the first diag_nerf needs more than 80 s to compile;
           # the stand-alone cuBLASLt check has a step of its own)
    # the Linear products, each in a process of its own (a crash, like --gemm cublas's segfault
    # on 2026-12-02, costs only its own row): cuBLASLt with the bias sums in ReLU's mask pass
    # (the default), cuBLASLt with BGRADB, cuBLAS with the mask-pass sums, Jittor's matmul (one
    # H200, 2026-12-03: 17.0, 19.9, 19.9, 22.2 ms).  (The row statistics and sums kernels passed
    # their in-process GPU self-check on 2026-12-02: no fallback line.)
    boxed diag/diag_nerf.py nerfdiag.log 300 --profile 12 --gemms cublaslt cublaslt:epilogue cublas jittor
    boxed bench_decoder.py decoder.log 130 --steps 10 --profile 20 --conv cudnn cudnn_heuristic \
      --out "$OUT/bench_decoder.json"
    # (the renderer's and the reductions' tests too: a Jittor op that builds on the CPU can fail
    # to build on the GPU, as jt.argmax's cub kernel did in the one-point render until fd2d5e3)
    timeout 170 python3 -m pytest -v -p no:cacheprovider tests/test_ops.py tests/test_cublaslt.py \
      tests/test_cudnn.py tests/test_optim.py tests/test_compositing.py tests/test_embedder.py \
      tests/test_reductions.py tests/test_renderer.py tests/test_cached_samples.py \
      2>&1 | logged tests.log | grep -c PASSED ;;
  fernlong) # fern.txt's whole NeRF stage (120,001 steps, about 34 GPU minutes at 59 it/s) over
            # several time-limited runs: resumes from $resume/<run>.tgz (the <run>.tgz an earlier
            # run wrote), else from bench/checkpoints/<run>.tgz; the time limit's SIGTERM makes
            # bench_nerf save the step reached.  <run> is $FERN_LONG_RUN, default fern_long, whose
            # checkpoint in git is the finished stage (a run evaluates it; a larger --eval_at
            # trains on).  Another name starts a run of its own from step 0, e.g.
            #   FERN_LONG_RUN=fern_random ... fernlong 560 --extra --fine_sampling random
            # The log and figures are named after the run (<run>.log, bench_<run>.json), so runs
            # on one machine keep theirs apart.  Run them one after the other: two sharing one
            # H200 (2026-12-03) ran at 20.5 and 12.5 it/s, against 58 it/s for one alone.
    budget=$1; shift
    run=${FERN_LONG_RUN:-fern_long}
    for f in "$resume/$run.tgz" bench/checkpoints/$run.tgz; do
      [ -f "$f" ] && { tar xzf "$f" && echo "resuming from $f"; break; }
    done
    # (an archive holds logs/<run>/bench/nerf_<step>.pkl)
    timeout "$budget" python3 bench/bench_nerf.py --basedir logs/$run \
      --eval_at 5000 30000 60000 90000 120001 --out "$OUT/bench_$run.json" "$@" 2>&1 | logged $run.log
    last=$(newest logs/$run/bench nerf)
    [ -n "$last" ] && tar czf "$OUT/$run.tgz" "$last" ;;
  cublaslt) # the stand-alone cuBLASLt program and its timings
    boxed diag/diag_cublaslt.py cublaslt.log 120 ;;
  cudnn)   # why cuDNN fails its check (stand-alone program and the Jittor op), then its GPU tests
           # and the decoder step with cuDNN where it passes
    boxed diag/diag_cudnn.py cudnn.log 120
    timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cudnn.py 2>&1 | logged tests.log | tail -30
    boxed bench_decoder.py decoder.log 150 --steps 10 --out "$OUT/bench_decoder.json" ;;
  pipeline) # the whole fern_quick pipeline (bench_pipeline.py: per-stage wall times) inside a time
            # limit: resumes from $resume/exp_*.tgz (an earlier run's checkpoints), and whatever
            # happens packs the experiment's checkpoints and results into $OUT (run_pipeline).
            # Packing takes about 40 s once a style checkpoint (0.8 GB with the hash grid) is there:
            # under an outer limit of 600 s give at most 540 (560 was cut on 2026-12-05)
    budget=$1; shift
    run_pipeline logs/fern_quick "$budget" 1 "$@" ;;
  fernstyle) # stages 2-6 of fern_quick on fern.txt's fully trained NeRF (the step-120,001
             # checkpoint in bench/checkpoints/fern_long.tgz) instead of its own 5,000-step one, with
             # fern_quick's 17,000 style steps (style steps count on from origin_step):
             # fernstyle <seconds> [run_stylenerf options, e.g. --style la_muse,sketch]
    budget=$1; shift
    exp=logs/fern_quick_nerf120k
    mkdir -p $exp
    [ -f $exp/nerf_120001.pkl ] || tar xzf bench/checkpoints/fern_long.tgz -O > $exp/nerf_120001.pkl
    run_pipeline $exp "$budget" 0 --extra --expname "$(basename $exp)" --origin_step 120001 --total_step 137001 "$@" ;;
  levers)  # style-stage variants side by side on fern.txt's trained NeRF (bench/style_levers.py:
           # stages 2-5 once, each variant's stage 6, evaluate.py of each, one table):
           # levers <seconds> --variant name="options" ... [--parallel N] [--eval "--eval_frames 30"]
           # A run cut by the time limit is continued by the same command on the same (warm)
           # machine: finished stages and style steps are found, evaluate.py runs again.  Variants
           # boxed by their own --time_limit would train once more: add --eval_only to evaluate
           # them as they stand.
    # (a folder of its own: fernstyle's and tidycheck's style trainings have other options, and a
    # style stage trained on other inputs is refused, pipeline/style_inputs.py)
    budget=$1; shift
    exp=logs/levers_nerf120k
    mkdir -p $exp
    [ -f $exp/nerf_120001.pkl ] || tar xzf bench/checkpoints/fern_long.tgz -O > $exp/nerf_120001.pkl
    levers "$budget" $exp "--expname $(basename $exp) --origin_step 120001" "$@" ;;
  leversown)  # the same on fern_quick's own 5,000-step NeRF, from logs/fq_inputs/ (a fern_quick
              # run's nerf_005000.pkl, and its decoder.pkl if that run fine-tuned one; the base
              # experiment logs/fq starts from a copy, so refreshing the inputs folder leaves the
              # stages built in logs/fq as they are): stages 2-5 in about 4 minutes on a fresh machine.
              # Without that folder the base experiment logs/fq_fresh runs stages 1-5 as fern_quick's
              # config says (its own NeRF; about 9 minutes on a fresh machine, run the same command
              # again to go on), and its NeRF comes back as $OUT/fq_inputs.tgz: put into
              # .offline/resume/ (or committed as bench/checkpoints/fq_inputs.tgz), it gives a later
              # fresh machine logs/fq_inputs/ (the same NeRF, a NeRF stage fewer).
              # leversown <seconds> --variant name="options" ... [--eval "--eval_frames 30"]
    budget=$1; shift
    src=logs/fq_inputs
    for f in "$resume/fq_inputs.tgz" bench/checkpoints/fq_inputs.tgz; do  # the first one there
      [ -d $src ] || [ ! -f "$f" ] || tar xzf "$f"
    done
    if [ ! -d $src ]; then
      levers "$budget" logs/fq_fresh "--expname fq_fresh" "$@"; rc=$?
      [ -f logs/fq_fresh/nerf_005000.pkl ] && tar czf "$OUT/fq_inputs.tgz" \
        --transform 's,^logs/fq_fresh/,logs/fq_inputs/,' logs/fq_fresh/nerf_005000.pkl
      exit $rc
    fi
    [ -f $src/nerf_005000.pkl ] || { echo "error: $src/nerf_005000.pkl not found: expected fern_quick's NeRF there"; exit 1; }
    decoder=""  # the config's decoder (the shipped one) unless the inputs carry a fine-tuned one
    [ -f $src/decoder.pkl ] && decoder="--decoder_pth_path $src/decoder.pkl"
    mkdir -p logs/fq && { [ -f logs/fq/nerf_005000.pkl ] || cp $src/nerf_005000.pkl logs/fq/; }
    levers "$budget" logs/fq "--expname fq --finetune_decoder_steps 0 $decoder" "$@" ;;
  tidycheck) # did the tidy-up keep behaviour: the code before it (1427bdb, exported beforehand
            # with `bash bench/tidycheck.sh export .tidy_ref`, an ignored folder to bring along) and
            # this tree run fern_quick's stages 2-6 as 1427bdb had them (3,000 renderer style steps
            # at full target size, the path at half size) on fern.txt's NeRF from the same decoder
            # and VAE; every frame compared, >= 40 dB (checkpoints listed: GPU kernels are not
            # bit-reproducible). Run it again to resume.  tidycheck <seconds>
            # (the frames 1427bdb itself rendered, bench/checkpoints/fern_quick_nerf120k_1427bdb_frames.tgz,
            # came from a decoder pre-trained on that machine and so cannot be matched now.)
    budget=$1; shift
    for e in ref new; do
      mkdir -p logs/tidy/$e
      [ -f logs/tidy/$e/nerf_120001.pkl ] || tar xzf bench/checkpoints/fern_long.tgz -O > logs/tidy/$e/nerf_120001.pkl
    done
    COMPARE_ARGS="--atol inf" timeout "$budget" bash bench/tidycheck.sh run .tidy_ref logs/tidy \
      --origin_step 120001 --total_step 123001 "$@" 2>&1 | logged tidycheck.log
    tar czf "$OUT/tidy_frames.tgz" $(ls -d logs/tidy/*/render_valid_* 2>/dev/null) 2>/dev/null ;;
  render)  # the fast renderer against the exact one (bench_render.py, default every 2nd pixel:
           # 504x378) on fern.txt's trained NeRF, with fernstyle's style model when an archive of
           # it is in $resume (exp_fern_quick_nerf120k_rest.tgz), else a random style MLP:
           # render <seconds> [bench_render args, e.g. --styles 3 --path_frames 10 --extra --matmul fp16]
    budget=$1; shift
    for f in "$resume"/exp_*.tgz; do [ -f "$f" ] && tar xzf "$f"; done
    exp=logs/fern_quick_nerf120k
    [ -n "$(newest $exp style)" ] || exp=logs/fern_long/bench
    mkdir -p $exp
    [ -f $exp/nerf_120001.pkl ] || tar xzf bench/checkpoints/fern_long.tgz -O > $exp/nerf_120001.pkl
    boxed bench_render.py render.log "$budget" --expdir $exp "$@" ;;
  *) echo "device_run.sh: unknown step '$step' (probe | tests | nerf | decoder | diag | nerfdiag | conv | cudnn | check | cublaslt | fernlong | pipeline | fernstyle | render | levers | leversown | tidycheck | gridbench)" >&2; exit 2 ;;
esac
