#!/usr/bin/env bash
# The main job: set everything up, regenerate the package from the notebooks, then run the
# pipeline stage by stage. On a machine without a GPU this is the CPU recipe on the embedded
# default; stages land in the course in dependency order and are added here as they do.
set -euo pipefail
cd "$(dirname "$0")"
bash dev/setup.sh
source .venv/bin/activate
say() { printf '\033[1m[speedrun]\033[0m %s\n' "$*"; }
t0=$SECONDS

say "nbdev-export: notebooks -> nanochat/"
nbdev-export

say "the pretraining corpus (built by dev/setup.sh; web shards: python -m nanochat.dataset download)"
python -m nanochat.dataset info

say "done in $((SECONDS - t0)) s"
