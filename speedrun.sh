#!/usr/bin/env bash
# The main job: set everything up, regenerate the package from the notebooks, then run the whole
# pipeline stage by stage: tokenizer -> base model -> base evaluation -> midtraining -> SFT -> RL ->
# chat evaluation -> report card.
#
#   bash speedrun.sh                 # the recipe for this machine: GPUs if any, else the CPU recipe
#   bash speedrun.sh --recipe cpu    # force the CPU recipe (the embedded corpus, a d4 model, minutes)
#   bash speedrun.sh --recipe gpu    # nanochat-scale: web data, d20 (DEPTH=26 or 32 for bigger), torchrun on all GPUs
#   bash speedrun.sh --recipe smoke  # every stage for a few steps on a tiny model (the end-to-end test runs this)
#
# A stage whose report section exists is skipped, so a rerun after an interruption resumes at the
# interrupted stage (training stages resume from their last checkpoint). Delete $NANOCHAT_BASE_DIR/report
# (or one section in it) to run stages again.
set -euo pipefail
cd "$(dirname "$0")"
RECIPE=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --recipe) RECIPE="$2"; shift 2;;
    --recipe=*) RECIPE="${1#*=}"; shift;;
    -h|--help) sed -n '2,14p' "$0"; exit 0;;
    *) echo "unknown argument $1 (see --help)"; exit 2;;
  esac
done
t_start=$SECONDS
bash dev/setup.sh
source .venv/bin/activate
say() { printf '\033[1m[speedrun]\033[0m %s\n' "$*"; }

say "nbdev-export: notebooks -> nanochat/"
nbdev-export

BASE=$(python -c "from nanochat.common import get_base_dir; print(get_base_dir())")
NGPU=$(python -c "import torch; print(torch.cuda.device_count())")
[ "$RECIPE" = auto ] && { [ "$NGPU" -gt 0 ] && RECIPE=gpu || RECIPE=cpu; }
case "$RECIPE" in cpu|gpu|smoke) ;; *) echo "--recipe must be cpu, gpu or smoke, got $RECIPE"; exit 2;; esac
say "recipe: $RECIPE ($NGPU GPUs); artifacts in $BASE"

# stage NAME SECTION COMMAND...: skip when the report section exists, stop the pipeline when it fails
stage() {
  local name=$1 section=$2; shift 2
  if [ -f "$BASE/report/$section.json" ]; then say "skip $name: done ($BASE/report/$section.json)"; return; fi
  say "stage $name: $*"
  local t0=$SECONDS
  if ! "$@"; then
    say "FAILED at stage $name. Fix the cause and rerun: finished stages are skipped, training resumes from its last checkpoint."
    exit 1
  fi
  say "$name done in $((SECONDS - t0)) s"
}
# resume flags for a training stage interrupted after a checkpoint
resume() { python -c "
from nanochat.checkpoint import list_steps
s = list_steps('$1', '$2'); print(f'--resume-from-step {s[-1]}' if s else '')"; }

if [ "$RECIPE" = gpu ]; then
  DEPTH=${DEPTH:-20}; TAG=d$DEPTH
  RUN="torchrun --standalone --nproc_per_node=$NGPU -m"
  export NANOCHAT_DATA_DIR=$BASE/web_data/fineweb-edu
  # the tokenizer needs ~8 shards; the rest download while it trains (nanochat: 240 shards for d20)
  python -m nanochat.dataset download -n 8
  python -m nanochat.dataset download -n ${SHARDS:-240} > "$BASE/download.log" 2>&1 &
  DL=$!
  stage tok_train tok_train python -m nanochat.scripts.tok_train --vocab-size 65536 --max-chars 2000000000
  stage tok_eval tok_eval python -m nanochat.scripts.tok_eval
  wait $DL || { say "shard download failed (see $BASE/download.log)"; exit 1; }
  stage base_train base_train $RUN nanochat.scripts.base_train --depth $DEPTH --model-tag $TAG $(resume base $TAG)
  stage base_loss base_loss $RUN nanochat.scripts.base_loss --model-tag $TAG
  stage base_eval base_eval $RUN nanochat.scripts.base_eval --model-tag $TAG --bundle dclm
  stage mid_train mid_train $RUN nanochat.scripts.mid_train --source-tag $TAG $(resume mid $TAG)
  stage chat_sft chat_sft $RUN nanochat.scripts.chat_sft --source-tag $TAG $(resume sft $TAG)
  stage chat_eval_sft chat_eval_sft $RUN nanochat.scripts.chat_eval --source sft --model-tag $TAG
  stage chat_rl chat_rl $RUN nanochat.scripts.chat_rl --source sft --model-tag $TAG --task gsm8k $(resume rl $TAG)
  stage chat_eval_rl chat_eval_rl $RUN nanochat.scripts.chat_eval --source rl --model-tag $TAG --task-name GSM8K
elif [ "$RECIPE" = smoke ]; then
  # every script of the pipeline, each for a few steps on a tiny model: a test of the plumbing, not of learning
  TAG=d2; EVAL="--max-problems 2 --max-new-tokens 16 --task-name ARC-Easy|MMLU|GSM8K|SpellingBee|Arithmetic"
  stage tok_train tok_train python -m nanochat.scripts.tok_train --vocab-size 512 --max-chars 1000000
  stage tok_eval tok_eval python -m nanochat.scripts.tok_eval --val-chars 2000
  stage base_train base_train python -m nanochat.scripts.base_train --depth 2 --model-tag $TAG --max-seq-len 128 \
    --device-batch-size 2 --total-batch-size 512 --num-iterations 6 --eval-every 3 --eval-tokens 1024 --save-every 3 $(resume base $TAG)
  stage base_loss base_loss python -m nanochat.scripts.base_loss --model-tag $TAG --split-tokens 1024 --device-batch-size 2
  stage base_eval base_eval python -m nanochat.scripts.base_eval --model-tag $TAG --max-per-task 2 --tasks copa,lambada_openai
  stage mid_train mid_train python -m nanochat.scripts.mid_train --source-tag $TAG --device-batch-size 2 --total-batch-size 512 \
    --num-iterations 4 --mixture-size 50 --val-conversations 32 --eval-steps 2 --eval-every 2 $(resume mid $TAG)
  stage chat_sft chat_sft python -m nanochat.scripts.chat_sft --source-tag $TAG --device-batch-size 2 --examples-per-step 4 \
    --num-iterations 4 --mixture-size 50 --val-conversations 32 --eval-steps 2 --eval-every 2 $(resume sft $TAG)
  stage chat_eval_sft chat_eval_sft python -m nanochat.scripts.chat_eval --source sft --model-tag $TAG $EVAL
  stage chat_rl chat_rl python -m nanochat.scripts.chat_rl --source sft --model-tag $TAG --task arithmetic --num-steps 2 \
    --prompts-per-step 2 --num-samples 2 --max-new-tokens 8 --eval-every 2 --eval-problems 2 --eval-samples 2 $(resume rl $TAG)
  stage chat_eval_rl chat_eval_rl python -m nanochat.scripts.chat_eval --source rl --model-tag $TAG $EVAL
else
  # the CPU recipe on the embedded corpus: every stage in minutes on 2 cores (times in the README)
  TAG=d4
  stage tok_train tok_train python -m nanochat.scripts.tok_train --vocab-size 8192
  stage tok_eval tok_eval python -m nanochat.scripts.tok_eval
  # 120 steps: bf16 matmuls (auto dtype, on CPUs with AMX or AVX512-BF16) make a step ~1.3x faster here, spent on more tokens
  stage base_train base_train python -m nanochat.scripts.base_train --depth 4 --model-tag $TAG --max-seq-len 256 \
    --device-batch-size 16 --total-batch-size 8192 --num-iterations 120 --eval-every 40 --eval-tokens 32768 \
    --save-every 60 --sample-every 60 --log-every 10 $(resume base $TAG)
  stage base_loss base_loss python -m nanochat.scripts.base_loss --model-tag $TAG --split-tokens 65536 --device-batch-size 16
  stage base_eval base_eval python -m nanochat.scripts.base_eval --model-tag $TAG --max-per-task 50
  # 30,000 two-digit Arithmetic problems in the mix: a model this small learns to copy numbers into the calculator only from
  # many examples, and RL below needs a model that partly solves its task
  stage mid_train mid_train python -m nanochat.scripts.mid_train --source-tag $TAG --max-seq-len 256 --device-batch-size 16 \
    --total-batch-size 8192 --num-iterations 30 --mixture-size 1000 --arithmetic-size 30000 --arithmetic-digits 2 \
    --eval-every 10 --save-every 15 --log-every 10 $(resume mid $TAG)
  stage chat_sft chat_sft python -m nanochat.scripts.chat_sft --source-tag $TAG --device-batch-size 8 --examples-per-step 16 \
    --num-iterations 30 --mixture-size 1000 --eval-every 10 --save-every 15 --log-every 10 $(resume sft $TAG)
  stage chat_eval_sft chat_eval_sft python -m nanochat.scripts.chat_eval --source sft --model-tag $TAG --max-problems 40 \
    --max-new-tokens 128 --task-name "ARC-Easy|ARC-Challenge|MMLU|GSM8K|HumanEval|SpellingBee|Arithmetic|Arithmetic-2digit"
  # RL on the two-digit arithmetic the SFT model partly solves (the README has the reward and held-out pass@1 before and after);
  # 10% of the SFT learning rates: with only 64 replies per step, a larger step than GPU-scale RL's 5%
  stage chat_rl chat_rl python -m nanochat.scripts.chat_rl --source sft --model-tag $TAG --task arithmetic --max-digits 2 \
    --num-steps 30 --prompts-per-step 8 --num-samples 8 --max-new-tokens 48 --init-lr-frac 0.1 --eval-every 10 \
    --eval-problems 40 --eval-samples 4 --save-every 10 $(resume rl $TAG)
  stage chat_eval_rl chat_eval_rl python -m nanochat.scripts.chat_eval --source rl --model-tag $TAG --max-problems 40 \
    --max-new-tokens 128 --task-name "ARC-Easy|ARC-Challenge|MMLU|GSM8K|HumanEval|SpellingBee|Arithmetic|Arithmetic-2digit"
fi

say "report card"
python -m nanochat.report --wall-time $((SECONDS - t_start))
say "all stages done in $(( (SECONDS - t_start) / 60 )) min; chat with the model: python -m nanochat.scripts.chat_cli"
