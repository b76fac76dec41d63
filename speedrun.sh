#!/usr/bin/env bash
# The main job: set everything up, regenerate the package from the notebooks, then run the whole
# pipeline stage by stage: tokenizer -> base model -> base evaluation -> midtraining -> SFT -> RL ->
# chat evaluation -> report card.
#
#   bash speedrun.sh                     # the recipe for this machine: GPUs if any, else the CPU recipe
#   bash speedrun.sh --recipe cpu        # force the CPU recipe (the embedded corpus, a d4 model, minutes)
#   bash speedrun.sh --recipe gpu        # nanochat-scale: web data, d20 (DEPTH=26 or 32 for bigger), torchrun on all GPUs
#   bash speedrun.sh --recipe smoke      # every stage for a few steps on a tiny model (the end-to-end test runs this)
#   bash speedrun.sh --recipe rehearsal  # the gpu recipe's stages and flags, scaled down, 2 CPU processes (tests/test_rehearsal.py)
#   bash speedrun.sh --dry-run ...       # print every command the recipe would run, in order, and exit (no set-up, no training)
#   bash speedrun.sh --no-setup ...      # skip dev/setup.sh: the environment is ready (CI, a prepared GPU image)
#
# A stage whose report section exists is skipped, so a rerun after an interruption resumes at the
# interrupted stage (training stages resume from their last checkpoint). Delete $NANOCHAT_BASE_DIR/report
# (or one section in it) to run stages again.
set -euo pipefail
cd "$(dirname "$0")"
RECIPE=auto; DRY=0; SETUP=1
while [ $# -gt 0 ]; do
  case "$1" in
    --recipe) RECIPE="$2"; shift 2;;
    --recipe=*) RECIPE="${1#*=}"; shift;;
    --dry-run) DRY=1; SETUP=0; shift;;
    --no-setup) SETUP=0; shift;;
    -h|--help) sed -n '2,16p' "$0"; exit 0;;
    *) echo "unknown argument $1 (see --help)"; exit 2;;
  esac
done
case "$RECIPE" in auto|cpu|gpu|smoke|rehearsal) ;; *) echo "--recipe must be cpu, gpu, smoke or rehearsal, got $RECIPE"; exit 2;; esac
t_start=$SECONDS
[ $SETUP = 1 ] && bash dev/setup.sh
[ $SETUP = 1 ] && source .venv/bin/activate
source dev/malloc.sh   # tcmalloc for every stage: glibc's malloc page-faults the big CPU tensors in again and again
# a dry run prints the commands on stdout and its messages on stderr
say() { if [ $DRY = 1 ]; then printf '[speedrun] %s\n' "$*" >&2; else printf '\033[1m[speedrun]\033[0m %s\n' "$*"; fi; }
# run COMMAND...: run it, or in a dry run print it (shell-quoted, so it can be pasted)
run() { if [ $DRY = 1 ]; then printf '%q ' "$@" | sed 's/ $//'; echo; else "$@"; fi; }

say "nbdev-export: notebooks -> nanochat/"
run nbdev-export

# without a working environment (a dry run before set-up) fall back to the defaults these would print
BASE=$(python -c "from nanochat.common import get_base_dir; print(get_base_dir())" 2>/dev/null || echo "${NANOCHAT_BASE_DIR:-$HOME/.cache/nanochat}")
NGPU=$(python -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
[ "$RECIPE" = auto ] && { [ "$NGPU" -gt 0 ] && RECIPE=gpu || RECIPE=cpu; }
say "recipe: $RECIPE ($NGPU GPUs); artifacts in $BASE"

# stage NAME SECTION COMMAND...: skip when the report section exists, stop the pipeline when it fails
stage() {
  local name=$1 section=$2; shift 2
  if [ -f "$BASE/report/$section.json" ]; then say "skip $name: done ($BASE/report/$section.json)"; return; fi
  say "stage $name: $*"
  local t0=$SECONDS
  if ! run "$@"; then
    say "FAILED at stage $name. Fix the cause and rerun: finished stages are skipped, training resumes from its last checkpoint."
    exit 1
  fi
  [ $DRY = 1 ] || say "$name done in $((SECONDS - t0)) s"
}
# resume flags for a training stage interrupted after a checkpoint
resume() { python -c "
from nanochat.checkpoint import list_steps
s = list_steps('$1', '$2'); print(f'--resume-from-step {s[-1]}' if s else '')" 2>/dev/null || true; }

if [ "$RECIPE" = rehearsal ]; then
  # the gpu recipe below, its stages and flags unchanged, scaled down by its knobs to run in minutes under 2 CPU
  # processes (gloo). The data comes from wherever the environment points: SHARD_URL (shards), NANOCHAT_EVAL_BUNDLE_URL
  # (the CORE bundle) and HF_ENDPOINT (the Hugging Face hub); tests/test_rehearsal.py serves small fixtures on loopback.
  NPROC=${NPROC:-2}; DEPTH=${DEPTH:-2}; VOCAB=${VOCAB:-512}; TOK_CHARS=${TOK_CHARS:-200000}; TOK_SHARDS=${TOK_SHARDS:-1}
  SHARDS=${SHARDS:-2}; RL_TASK=${RL_TASK:-gsm8k}
  BASE_ARGS=${BASE_ARGS:-"--max-seq-len 64 --device-batch-size 2 --total-batch-size 256 --num-iterations 4 --eval-every 2 --eval-tokens 512 --save-every 2"}
  LOSS_ARGS=${LOSS_ARGS:-"--split-tokens 512 --device-batch-size 2"}
  CORE_ARGS=${CORE_ARGS:-"--max-per-task 4"}
  MID_ARGS=${MID_ARGS:-"--device-batch-size 2 --total-batch-size 256 --num-iterations 2 --mixture-size 20 --val-conversations 16 --eval-steps 1 --eval-every 2"}
  SFT_ARGS=${SFT_ARGS:-"--device-batch-size 2 --examples-per-step 4 --num-iterations 2 --mixture-size 20 --val-conversations 8 --eval-steps 1 --eval-every 2"}
  EVAL_ARGS=${EVAL_ARGS:-"--max-problems 4 --max-new-tokens 8"}
  RL_ARGS=${RL_ARGS:-"--num-steps 2 --prompts-per-step 2 --num-samples 2 --max-new-tokens 8 --eval-every 2 --eval-problems 2 --eval-samples 2"}
  RECIPE=gpu
fi

if [ "$RECIPE" = gpu ]; then
  # knobs (the rehearsal above sets them; on GPUs they default to the d20 speedrun): the *_ARGS are appended to a stage's flags
  NPROC=${NPROC:-$NGPU}; DEPTH=${DEPTH:-20}; TAG=d$DEPTH; VOCAB=${VOCAB:-65536}; TOK_CHARS=${TOK_CHARS:-2000000000}
  if [ "$NPROC" -lt 1 ]; then [ $DRY = 1 ] && { NPROC=8; say "no GPU here: showing the commands for NPROC=8"; } || { say "no GPU: use --recipe cpu (or rehearsal)"; exit 1; }; fi
  RUN="torchrun --standalone --nproc_per_node=$NPROC -m"
  export NANOCHAT_DATA_DIR=$BASE/web_data/fineweb-edu
  URL=${SHARD_URL:+--base-url $SHARD_URL}   # a mirror of the shards (default: the Hugging Face dataset)
  # the tokenizer needs ~8 shards (2B characters); the rest download while it trains (nanochat: 240 shards for d20)
  run python -m nanochat.dataset download -n ${TOK_SHARDS:-8} $URL
  [ $DRY = 1 ] && echo "python -m nanochat.dataset download -n ${SHARDS:-240}${URL:+ $URL} > $BASE/download.log 2>&1 &" || {
    mkdir -p "$BASE"; python -m nanochat.dataset download -n ${SHARDS:-240} $URL > "$BASE/download.log" 2>&1 & DL=$!; }
  stage tok_train tok_train python -m nanochat.scripts.tok_train --vocab-size $VOCAB --max-chars $TOK_CHARS
  stage tok_eval tok_eval python -m nanochat.scripts.tok_eval
  [ $DRY = 1 ] || wait $DL || { say "shard download failed (see $BASE/download.log)"; exit 1; }
  stage base_train base_train $RUN nanochat.scripts.base_train --depth $DEPTH --model-tag $TAG ${BASE_ARGS:-} $(resume base $TAG)
  stage base_loss base_loss $RUN nanochat.scripts.base_loss --model-tag $TAG ${LOSS_ARGS:-}
  stage base_eval base_eval $RUN nanochat.scripts.base_eval --model-tag $TAG --bundle dclm ${CORE_ARGS:-}
  # the chat and task data from the Hugging Face hub (SmolTalk, MMLU, ARC, GSM8K, HumanEval), as nanochat does
  stage mid_train mid_train $RUN nanochat.scripts.mid_train --source-tag $TAG --data-source hf ${MID_ARGS:-} $(resume mid $TAG)
  stage chat_sft chat_sft $RUN nanochat.scripts.chat_sft --source-tag $TAG --data-source hf ${SFT_ARGS:-} $(resume sft $TAG)
  stage chat_eval_sft chat_eval_sft $RUN nanochat.scripts.chat_eval --source sft --model-tag $TAG --data-source hf ${EVAL_ARGS:-}
  stage chat_rl chat_rl $RUN nanochat.scripts.chat_rl --source sft --model-tag $TAG --task ${RL_TASK:-gsm8k} --data-source hf \
    ${RL_ARGS:-} $(resume rl $TAG)
  stage chat_eval_rl chat_eval_rl $RUN nanochat.scripts.chat_eval --source rl --model-tag $TAG --task-name GSM8K --data-source hf ${EVAL_ARGS:-}
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
  # 120 steps (the fp32 recipe had 90): bf16 matmuls (auto dtype, on CPUs with AMX or AVX512-BF16), tcmalloc and the
  # lighter loss make a step ~2x faster here; the rest of the gain keeps the whole job under 15 minutes
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
  stage chat_eval_sft chat_eval_sft python -m nanochat.scripts.chat_eval --source sft --model-tag $TAG --max-problems 32 \
    --max-new-tokens 128 --task-name "ARC-Easy|ARC-Challenge|MMLU|GSM8K|HumanEval|SpellingBee|Arithmetic|Arithmetic-2digit"
  # RL on the two-digit arithmetic the SFT model partly solves (the README has the reward and held-out pass@1 before and after);
  # 10% of the SFT learning rates: with only 64 replies per step, a larger step than GPU-scale RL's 5%
  stage chat_rl chat_rl python -m nanochat.scripts.chat_rl --source sft --model-tag $TAG --task arithmetic --max-digits 2 \
    --num-steps 30 --prompts-per-step 8 --num-samples 8 --max-new-tokens 48 --init-lr-frac 0.1 --eval-every 15 \
    --eval-problems 40 --eval-samples 4 --save-every 15 $(resume rl $TAG)
  stage chat_eval_rl chat_eval_rl python -m nanochat.scripts.chat_eval --source rl --model-tag $TAG --max-problems 32 \
    --max-new-tokens 128 --task-name "ARC-Easy|ARC-Challenge|MMLU|GSM8K|HumanEval|SpellingBee|Arithmetic|Arithmetic-2digit"
fi

say "report card"
run python -m nanochat.report --wall-time $((SECONDS - t_start))
[ $DRY = 1 ] && exit 0
say "all stages done in $(( (SECONDS - t_start) / 60 )) min; chat with the model: python -m nanochat.scripts.chat_cli"
