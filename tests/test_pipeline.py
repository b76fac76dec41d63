"""The whole pipeline end to end: `speedrun.sh --recipe smoke` runs every stage's script for a few steps, then a
rerun after a lost stage runs only that stage and those after it, and the result can be chatted with."""
import os, re, subprocess, sys
from pathlib import Path
from conftest import ROOT
from nanochat.dataset import data_dir

CORPUS = data_dir()   # read at import, before the tests' temporary base dirs: the corpus dev/setup.sh built

def speedrun(base: Path, timeout=900):
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base), "NANOCHAT_DATA_DIR": str(CORPUS), "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", "speedrun.sh", "--recipe", "smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)

STAGES = ["tok_train", "tok_eval", "base_train", "base_loss", "base_eval", "mid_train", "chat_sft",
          "chat_eval_sft", "chat_rl", "chat_eval_rl"]

def test_smoke_pipeline_then_resume(tmp_path):
    base = tmp_path / "base"
    p = speedrun(base)
    assert p.returncode == 0, (p.stdout[-4000:], p.stderr[-4000:])
    ran = re.findall(r"\[speedrun\]\S* stage (\w+):", p.stdout)
    assert ran == STAGES, ran
    report = (base / "report" / "report.md").read_text()
    for section in STAGES: assert f"## {section}" in report, section
    assert "Stages not run" not in report and (base / "report" / "loss.png").exists() and (base / "report" / "reward.png").exists()
    # an interrupted run: SFT's section (and everything after it) lost -> the rerun starts at SFT
    for s in STAGES[6:]: (base / "report" / f"{s}.json").unlink()
    q = speedrun(base)
    assert q.returncode == 0, (q.stdout[-4000:], q.stderr[-4000:])
    assert re.findall(r"\[speedrun\]\S* stage (\w+):", q.stdout) == STAGES[6:]
    assert all(f"skip {s}: done" in q.stdout for s in STAGES[:6])
    # and the model it made answers in the CLI
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base)}
    r = subprocess.run([sys.executable, "-m", "nanochat.scripts.chat_cli", "-p", "hello", "--source", "rl", "--max-tokens", "8"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-2000:]
