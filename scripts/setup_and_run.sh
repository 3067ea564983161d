#!/usr/bin/env bash
# Set up and run the main job:  bash scripts/setup_and_run.sh [config] [more run_stylenerf options]
#   installs the requirements, fills data/ pretrained/ style/ all_styles/ all_contents/ from
#   $STYLENERF_ASSETS (default ../shared/assets) or downloads the official files, installs the
#   project's trained relu3_1 decoder and style VAE (weights/) where none are there, then trains.
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-configs/fern.txt}"; shift || true
python3 -m pip install -q --disable-pip-version-check -r requirements.txt
assets="${STYLENERF_ASSETS:-../shared/assets}"
if [ -d "$assets" ]; then
  python3 scripts/get_assets.py --from "$assets"
else
  python3 scripts/get_assets.py --download
fi
# The original starts from AdaIN's trained decoder (decoder.pth). get_assets.py installs the
# project's relu3_1 decoder (weights/adain_decoder_relu3_1.pkl) as pretrained/decoder_finetuned.pkl;
# should neither be there, train one from the inverter (which alone reconstructs rather than
# stylizes) first on a GPU with the project's recipe.
if [ ! -f pretrained/decoder.pth ] && [ ! -f pretrained/decoder_finetuned.pkl ]; then
  if python3 -c 'import sys; sys.path.insert(0, "."); from backend import runtime; runtime.setup(quiet=True); sys.exit(0 if runtime.use_cuda() else 1)'; then
    python3 train_style_modules.py --task finetune_decoder --config configs/decoder_relu3_1.txt
  else
    echo "no AdaIN decoder (pretrained/decoder.pth): the stylization starts from the relu3_1 inverter (mild);" \
         "on a GPU, python train_style_modules.py --task finetune_decoder trains one"
  fi
fi
python3 run_stylenerf.py --config "$config" "$@"
