#!/usr/bin/env bash
# Did the tidy-up keep behaviour? The code before it (commit 1427bdb) and this tree run the same
# stages from the same inputs with the same options (this tree's later levers at the original's
# values), then every checkpoint, cache and stylized path frame is compared
# (bench/compare_runs.py).
#
#   bash bench/tidycheck.sh export DIR
#       1427bdb's files into DIR (needs git; results, checkpoints and pictures left out).
#   bash bench/tidycheck.sh run DIR BASEDIR [run_stylenerf options for both]
#       installs the assets into DIR ($STYLENERF_ASSETS, default ../shared/assets), copies this
#       tree's pretrained/ decoder and VAE there so both start from the same files, runs stages
#       1-6 and the stylized path (--render_valid_style) in DIR (experiment BASEDIR/ref) and here
#       (BASEDIR/new), then compares the two. Run it again to resume after a cut.
#   environment: FT_STEPS (decoder fine-tune iterations, 300), RENDER_FACTOR (path frames, 2),
#       COMPARE_ARGS (bench/compare_runs.py's limits, e.g. "--atol inf" where the device's kernels
#       are not bit-reproducible and only the frames' PSNR should decide).
#
# Tiny on the CPU (2026-12-06): identical to the last bit (docs/MEASUREMENTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
REF_COMMIT=1427bdb
cmd=${1:-}; shift || true
case "$cmd" in
  export)
    dir=${1:?usage: tidycheck.sh export DIR}
    mkdir -p "$dir"
    git archive "$REF_COMMIT" $(git ls-tree -r --name-only "$REF_COMMIT" \
      | grep -v '^bench/results/\|^bench/checkpoints/\|^bench/carry/\|\.jpg$\|\.png$\|\.gif$\|\.mp4$') \
      | tar x -C "$dir"
    echo "$REF_COMMIT's code in $dir ($(find "$dir" -type f | wc -l) files)" ;;
  run)
    dir=${1:?usage: tidycheck.sh run DIR BASEDIR [options]}; base=${2:?usage: tidycheck.sh run DIR BASEDIR [options]}
    shift 2
    [ -f "$dir/run_stylenerf.py" ] || { echo "tidycheck: $dir holds no code (bash bench/tidycheck.sh export $dir)" >&2; exit 2; }
    mkdir -p "$base"; base=$(cd "$base" && pwd)
    assets=${STYLENERF_ASSETS:-../shared/assets}
    python3 scripts/get_assets.py --from "$assets" >/dev/null
    (cd "$dir" && python3 scripts/get_assets.py --from "$assets" >/dev/null)
    for f in decoder_finetuned.pkl vae.pkl; do
      [ -f "pretrained/$f" ] && cp "pretrained/$f" "$dir/pretrained/$f"
    done
    ft=${FT_STEPS:-300}; rf=${RENDER_FACTOR:-2}
    # 1427bdb's option for the fine-tune's length was --decoder_step; this tree's levers at the
    # original's values (fern_quick.txt turns several on)
    ref_opts=(--basedir "$base" --expname ref --decoder_step "$ft")
    new_opts=(--basedir "$base" --expname new --finetune_decoder_steps "$ft" --no-target_propagation
              --propagation_edge_thresh 0 --target_factor 1 --style_samples 0 --style_render_samples 0
              --style_point heaviest --style_encoding pe --style_patch_weight 0 --render_mode exact)
    here=$(pwd)
    for pass in train render; do
      extra=(); [ $pass = render ] && extra=(--render_valid_style --render_factor "$rf")
      echo "== $REF_COMMIT: $pass"
      (cd "$dir" && python3 run_stylenerf.py --config configs/fern_quick.txt "${ref_opts[@]}" "$@" "${extra[@]}")
      echo "== this tree: $pass"
      (cd "$here" && python3 run_stylenerf.py --config configs/fern_quick.txt "${new_opts[@]}" "$@" "${extra[@]}")
    done
    python3 bench/compare_runs.py "$base/ref" "$base/new" ${COMPARE_ARGS:-} ;;
  *) echo "usage: bash bench/tidycheck.sh export DIR | run DIR BASEDIR [options]" >&2; exit 2 ;;
esac
