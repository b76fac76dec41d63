"base_train as users run it: under torchrun with two processes, killed with -9 and resumed, and with bad flags."
import os, re, sys, signal, subprocess, textwrap
from pathlib import Path
import pytest
from conftest import torchrun, ROOT

T = 32   # sequence length of these runs

def make_base(base: Path, rows_per_group: int = 4, groups: int = 40):
    "A base dir with a byte-level tokenizer and shards of documents exactly T tokens long (+ <|bos|> = one row each)."
    from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
    from nanochat.dataset import write_shard
    os.environ["NANOCHAT_BASE_DIR"] = str(base)
    Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)}).save()
    from pydoc_data.topics import topics            # real English prose from the standard library
    text = " ".join(topics[k] for k in sorted(topics)).encode("ascii", "ignore").decode()
    docs = [text[i * T:(i + 1) * T] for i in range(rows_per_group * groups)]
    d = base / "base_data"; d.mkdir(parents=True)
    write_shard(docs, d / "shard_00000.parquet", row_group_size=rows_per_group)
    write_shard(docs[:rows_per_group * 4], d / "shard_00001.parquet", row_group_size=rows_per_group)
    return base

FLAGS = ["--depth", "2", "--max-seq-len", str(T), "--device-batch-size", "4", "--total-batch-size", str(2 * 4 * T),
         "--num-iterations", "8", "--eval-every", "-1", "--eval-tokens", str(4 * T * 2), "--model-tag", "t"]

def losses(out: str) -> dict:
    return {int(m[1]): m[2] for m in re.finditer(r"step\s+(\d+)/\d+ \| loss (\d+\.\d+)", out)}

def run(base, *args, timeout=300):
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nanochat.scripts.base_train", *FLAGS, *args],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)

def test_two_processes_train_like_one(tmp_path):
    """One process with 2 micro-batches per step == two processes with one each: rank r reads row group r,
    and with one-row documents and buffer_docs=1 (the default packing still applies) both see the same rows."""
    base = make_base(tmp_path / "base")
    one = run(base, "--buffer-docs", "1")
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun("nanochat.scripts.base_train", 2, *FLAGS, "--buffer-docs", "1", "--model-tag", "t2",
                   env={"NANOCHAT_BASE_DIR": str(base)})
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = losses(one.stdout), losses(two.stdout)
    assert len(a) == 8 and a.keys() == b.keys()
    for k in a:   # the progress line prints 4 decimals; float summation order may differ in the last one
        assert abs(float(a[k]) - float(b[k])) <= 2e-4, (k, a[k], b[k])

def test_kill_9_then_resume_continues_exactly(tmp_path):
    base = make_base(tmp_path / "base")
    full = run(base, "--num-iterations", "16", "--save-every", "4", "--model-tag", "full")
    assert full.returncode == 0, full.stderr[-3000:]
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "nanochat.scripts.base_train", *FLAGS, "--num-iterations", "16", "--save-every", "4", "--model-tag", "k"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    for line in p.stdout:                       # kill it in the middle of training, after a checkpoint was written
        if re.search(r"step\s+10/16", line): break
    p.send_signal(signal.SIGKILL); p.wait()
    from nanochat.checkpoint import list_steps
    steps = list_steps("base", "k")
    assert steps and steps[-1] == 8, steps
    resumed = run(base, "--num-iterations", "16", "--save-every", "4", "--model-tag", "k", "--resume-from-step", "8")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = losses(full.stdout), losses(resumed.stdout)
    assert sorted(b) == list(range(9, 17))
    assert all(a[k] == b[k] for k in b), [(k, a[k], b[k]) for k in b]

@pytest.mark.parametrize("args,message", [
    (["--depth", "0"], "--depth must be at least 1, got 0"),
    (["--total-batch-size", "1000"], "not a multiple of device_batch_size x max_seq_len x world_size"),
    (["--total-batch-size", "0"], "--total-batch-size must be positive, or -1 to derive it from the depth"),
    (["--total-batch-size", "-1", "--device-batch-size", "3"], "base_train: --total-batch-size"),   # the derived batch does not split
    (["--device-batch-size", "-2"], "--device-batch-size must be at least 1"),
    (["--resume-from-step", "3"], "make one with: python -m nanochat.scripts.base_train"),
])
def test_nonsense_flags_fail_at_start(tmp_path, args, message):
    base = make_base(tmp_path / "base", groups=8)
    p = run(base, *args, timeout=120)
    assert p.returncode != 0 and message in p.stderr, p.stderr[-2000:]
