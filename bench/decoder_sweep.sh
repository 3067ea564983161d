#!/usr/bin/env bash
# Decoder recipe sweep on one GPU: relu3_1 AdaIN decoders trained with several recipes side by
# side (one process each, all inside one time budget, a checkpoint every 1,000 iterations), then
# every checkpoint measured against the inverter by bench/decoder_recipe.py.
#   bash bench/decoder_sweep.sh <training seconds> <output folder> [recipe names...]
# Writes to the output folder: decoder_sweep.json (figures), decoder_sweep.jpg (a view per style:
# content | style | inverter | each recipe's newest decoder), decoder_sweep.log, and
# decoders.tgz (each recipe's newest decoder, weights only).
set -uo pipefail
cd "$(dirname "$0")/.."
budget=$1 out=$2; shift 2
mkdir -p "$out"
inverter=pretrained/feature_invertor_conv3_1.pth
declare -A recipe=(
  [today]="--content_dir all_contents --style_weight 2"
  [sw10]="--content_dir all_contents,all_styles --style_weight 10"
  [sw20]="--content_dir all_contents,all_styles --style_weight 20"
  [sw10gram]="--content_dir all_contents,all_styles --style_weight 10 --gram_weight 1000"
  [sw10lr3]="--content_dir all_contents,all_styles --style_weight 10 --lr 3e-4"
  [scratch]="--content_dir all_contents,all_styles --style_weight 10 --lr 3e-4 --decoder none"
  [sw20s256]="--content_dir all_contents,all_styles --style_weight 20 --image_size 256"
  [sw40]="--content_dir all_contents,all_styles --style_weight 40"
  [sw20gram]="--content_dir all_contents,all_styles --style_weight 20 --gram_weight 1000"
)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(today sw10 sw20 sw10gram sw10lr3 scratch)
for r in "${names[@]}"; do
  # shellcheck disable=SC2086  # a recipe is a list of options
  timeout "$budget" python3 train_style_modules.py --task finetune_decoder --decoder "$inverter" \
    --vgg pretrained/vgg_normalised_conv3_1.pth --style_dir all_styles --max_iter 100000 \
    --save_model_interval 1000 --keep 1000 --save_dir "/tmp/decoder_sweep/$r" ${recipe[$r]} \
    > "$out/train_$r.log" 2>&1 &
done
wait
specs=(inverter=$inverter)
for r in "${names[@]}"; do
  if ls /tmp/decoder_sweep/$r/decoder_train_*.pkl >/dev/null 2>&1; then specs+=("$r=/tmp/decoder_sweep/$r")
  else echo "$r: no checkpoint (see train_$r.log)"; fi
done
python3 bench/decoder_recipe.py --decoders "${specs[@]}" --out "$out/decoder_sweep.json" \
  --grid "$out/decoder_sweep.jpg" 2>&1 | tr '\r' '\n' | grep -v "^Compiling" | tee "$out/decoder_sweep.log"
# each recipe's newest checkpoint as decoder weights alone
python3 - "${names[@]}" <<'PY'
import glob, os, sys
sys.path.insert(0, ".")
from backend import runtime; runtime.setup(quiet=True)
from core.checkpoint import load
from models.decoder import Decoder
for r in sys.argv[1:]:
    files = sorted(glob.glob(f"/tmp/decoder_sweep/{r}/decoder_train_*.pkl"))
    if files:
        ck = load(files[-1]); d = Decoder(ck["deepest_channels"]); d.load_weights(ck["decoder"], files[-1])
        d.save(f"/tmp/decoder_sweep/{r}.pkl", extra={"iter": ck["iter"]})
PY
for r in "${names[@]}"; do tail -c 300 "$out/train_$r.log" | tr '\r' '\n' | tail -1; done
tar czf "$out/decoders.tgz" -C /tmp/decoder_sweep $(cd /tmp/decoder_sweep && ls *.pkl)
ls -la "$out"
