"""speedrun.sh's stage markers: a stage counts as done only for the same stage of the same run (recipe, data folder,
command line, and the same run of the stage it builds on). The stage scripts are stood in for by a fake `python` and
`torchrun` on PATH that only write what each stage leaves behind (its report section, a tokenizer, a checkpoint), so
these runs take seconds; everything else (the base dir, `list_steps`, ...) is the real package. The scripts themselves
are tested in test_pipeline.py and test_rehearsal.py."""
import json, os, re, shlex, subprocess, sys
from pathlib import Path
from conftest import ROOT

FAKE = r'''#!{python}
"A stand-in for `python` / `torchrun`: `-m nanochat.*` only leaves the stage's traces; anything else is the real python."
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
if os.path.basename(sys.argv[0]) == "torchrun": args = args[args.index("-m"):]
if args[:1] != ["-m"] or not args[1].startswith("nanochat."): os.execv({python!r}, [{python!r}, *args])
mod, flags = args[1].rsplit(".", 1)[-1], args[2:]
opt = lambda f, d=None: flags[flags.index(f) + 1] if f in flags else d
with open(os.environ["FAKE_LOG"], "a") as f: f.write(json.dumps([mod, *flags]) + "\n")
if mod in ("dataset", "report"): sys.exit(0)
base = Path(os.environ["NANOCHAT_BASE_DIR"])
section = f"chat_eval_{{opt('--source')}}" if mod == "chat_eval" else mod
if mod == "tok_train":   # a tokenizer of the asked size: 256 byte ranks + the rest, and 9 special tokens
    t = base / "tokenizer"; t.mkdir(parents=True, exist_ok=True)
    (t / "tokenizer.json").write_text(json.dumps({{"special_tokens": ["s"] * 9}}))
    (t / "ranks.tiktoken").write_text("x\n" * (int(opt("--vocab-size")) - 9))
stage = {{"base_train": "base", "mid_train": "mid", "chat_sft": "sft", "chat_rl": "rl"}}.get(mod)
if stage:
    tag = opt("--model-tag") or opt("--source-tag")
    step = int(opt("--resume-from-step", 0)) + 4
    (base / "checkpoints" / stage / tag / f"step_{{step:06d}}").mkdir(parents=True)
    if os.environ.get("FAKE_FAIL") == section: sys.exit(1)   # interrupted after a checkpoint
(base / "report").mkdir(exist_ok=True)
(base / "report" / f"{{section}}.json").write_text(json.dumps({{"section": section}}))
'''

STAGES = ["tok_train", "tok_eval", "base_train", "base_loss", "base_eval", "mid_train", "chat_sft", "chat_eval_sft", "chat_rl", "chat_eval_rl"]

def fakes(tmp: Path) -> Path:
    b = tmp / "fakebin"; b.mkdir(exist_ok=True)
    for name in ("python", "torchrun"):
        (b / name).write_text(FAKE.format(python=sys.executable)); (b / name).chmod(0o755)
    (b / "nbdev-export").write_text("#!/bin/sh\n"); (b / "nbdev-export").chmod(0o755)
    return b

def speedrun(tmp: Path, *args, **env):
    "Run speedrun.sh with the fakes in a base dir under `tmp`: (returncode, stdout+stderr, the stage calls the fakes saw)."
    log = tmp / "calls.jsonl"; log.unlink(missing_ok=True)
    e = {k: v for k, v in os.environ.items() if not k.startswith("NANOCHAT_")}
    e.update(PATH=f"{fakes(tmp)}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}", NANOCHAT_BASE_DIR=str(tmp / "base"),
             FAKE_LOG=str(log), **env)
    p = subprocess.run(["bash", "speedrun.sh", "--no-setup", *args], cwd=ROOT, env=e, capture_output=True, text=True, timeout=120)
    calls = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
    return p.returncode, p.stdout + p.stderr, calls

started = lambda out: re.findall(r"\[speedrun\]\S* stage (\w+):", out)
skipped = lambda out: re.findall(r"\[speedrun\]\S* skip (\w+): done", out)

def test_cpu_then_gpu_in_one_base_dir(tmp_path):
    rc, out, calls = speedrun(tmp_path, "--recipe", "cpu")
    assert rc == 0 and started(out) == STAGES, out
    rc, out, calls = speedrun(tmp_path, "--recipe", "cpu")        # the same run again: everything is done
    print(out)
    assert rc == 0 and started(out) == [] and skipped(out) == STAGES, out
    # the gpu recipe after it: its tokenizer would replace the CPU run's 8,192-token one -> refused, clearly, nothing run
    rc, out, _ = speedrun(tmp_path, "--recipe", "gpu", "--dry-run")
    print(out)
    assert rc == 1 and skipped(out) == [] and started(out) == [], out
    assert "holds a tokenizer of 8192 tokens, made by [recipe cpu, data default] python -m nanochat.scripts.tok_train" in out, out
    assert "trains one of 32768 tokens" in out, out
    assert "NANOCHAT_BASE_DIR=" in out and f"rm -r {tmp_path / 'base' / 'tokenizer'}" in out, out
    rc, out, calls = speedrun(tmp_path, "--recipe", "gpu", NPROC="1")    # the real run stops at the same place
    assert rc == 1 and "REFUSED" in out and [c[0] for c in calls] == ["dataset", "dataset"], (out, calls)
    assert (tmp_path / "base" / "tokenizer" / "ranks.tiktoken").read_text().count("\n") == 8192 - 9   # untouched
    # with the tokenizer deleted (as the message says), the dry run lists every stage of the gpu run: nothing is "done"
    import shutil; shutil.rmtree(tmp_path / "base" / "tokenizer")
    rc, out, _ = speedrun(tmp_path, "--recipe", "gpu", "--dry-run")
    print(out)
    assert rc == 0 and started(out) == STAGES and skipped(out) == [], out
    assert "redo tok_train: the tok_train report there came from another command: [recipe cpu, data default]" in out
    assert "redo base_train: tok_train runs again, so this stage is redone on its output" in out

def test_depth_change_trains_the_new_depth_and_reuses_the_tokenizer(tmp_path):
    rc, out, calls = speedrun(tmp_path, "--recipe", "gpu", NPROC="1", DEPTH="20")
    assert rc == 0 and started(out) == STAGES, out
    assert ["base_train", "--depth", "20", "--target-param-data-ratio", "8", "--device-batch-size", "16", "--fp8", "--model-tag", "d20"] in calls
    rc, out, _ = speedrun(tmp_path, "--recipe", "gpu", "--dry-run", NPROC="1", DEPTH="26")
    print(out)
    assert rc == 0 and skipped(out) == ["tok_train", "tok_eval"] and started(out) == STAGES[2:], out
    assert re.search(r"stage base_train: .* --depth 26 .* --model-tag d26", out), out
    # a change to the evaluation alone reruns the evaluations, not the trainings they evaluate
    rc, out, calls = speedrun(tmp_path, "--recipe", "gpu", NPROC="1", DEPTH="20", EVAL_ARGS="--max-problems 100")
    assert rc == 0 and started(out) == ["chat_eval_sft", "chat_eval_rl"], out
    assert [c[0] for c in calls] == ["dataset", "dataset", "chat_eval", "chat_eval", "report"], calls

def test_a_rerun_stage_reruns_what_is_built_on_it_and_old_checkpoints_are_moved_aside(tmp_path):
    rc, out, _ = speedrun(tmp_path, "--recipe", "gpu", NPROC="1", DEPTH="4")
    assert rc == 0
    ckpt = tmp_path / "base" / "checkpoints" / "base" / "d4"
    # another ratio, same model tag: base_train runs afresh (its old checkpoints kept aside), and so does every stage after it
    rc, out, calls = speedrun(tmp_path, "--recipe", "gpu", NPROC="1", DEPTH="4", RATIO="12")
    print(out)
    assert rc == 0 and started(out) == STAGES[2:], out
    aside = [p.name for p in ckpt.parent.iterdir() if p.name.startswith("d4.replaced-")]
    assert len(aside) == 1 and (ckpt.parent / aside[0] / "step_000004").is_dir(), aside
    train = next(c for c in calls if c[0] == "base_train")
    assert "--resume-from-step" not in train and train[train.index("--target-param-data-ratio") + 1] == "12", train
    assert "redo base_train: the base_train report there came from another command" in out
    assert "redo mid_train: base_train runs again, so this stage is redone on its output" in out
    assert any(p.name.startswith("d4.replaced-") for p in (tmp_path / "base" / "checkpoints" / "mid").iterdir())

def test_an_interrupted_stage_resumes_its_own_checkpoint(tmp_path):
    rc, out, calls = speedrun(tmp_path, "--recipe", "cpu", FAKE_FAIL="chat_sft")
    assert rc == 1 and "FAILED at stage chat_sft" in out and started(out)[-1] == "chat_sft", out
    rc, out, calls = speedrun(tmp_path, "--recipe", "cpu")
    assert rc == 0 and started(out) == STAGES[6:] and skipped(out) == STAGES[:6], out
    sft = next(c for c in calls if c[0] == "chat_sft")
    assert sft[-2:] == ["--resume-from-step", "4"], sft
    # a lost report section (and those after it) is run again, on the same model: test_pipeline's resume, here in seconds
    for s in STAGES[8:]: (tmp_path / "base" / "report" / f"{s}.json").unlink()
    rc, out, calls = speedrun(tmp_path, "--recipe", "cpu")
    assert rc == 0 and started(out) == STAGES[8:], out
    assert next(c for c in calls if c[0] == "chat_rl")[-2:] == ["--resume-from-step", "4"]

def test_a_multi_node_run_is_the_same_run_at_another_address(tmp_path):
    "Node 0 keeps the stamps; where the nodes meet (MASTER_ADDR) is not part of a stage's key, the node count is."
    two = dict(NNODES="2", NPROC="1")
    rc, out, calls = speedrun(tmp_path, "--recipe", "gpu", NODE_RANK="0", MASTER_ADDR="10.0.0.1", **two)
    assert rc == 0 and started(out) == STAGES, out
    rc, out, calls = speedrun(tmp_path, "--recipe", "gpu", NODE_RANK="0", MASTER_ADDR="10.0.0.2", **two)
    assert rc == 0 and skipped(out) == STAGES, out
    rc, out, calls = speedrun(tmp_path, "--recipe", "gpu", NODE_RANK="1", MASTER_ADDR="10.0.0.2", **two)
    assert rc == 0 and skipped(out) == STAGES and calls == [], (out, calls)   # node 1 downloads nothing, writes no report
    assert "node 1: all torchrun stages done; node 0 writes the report" in out
    rc, out, _ = speedrun(tmp_path, "--recipe", "gpu", "--dry-run", NODE_RANK="0", MASTER_ADDR="10.0.0.2", NNODES="3", NPROC="1")
    assert rc == 0 and skipped(out) == ["tok_train", "tok_eval"] and started(out) == STAGES[2:], out   # 3 nodes: another run
