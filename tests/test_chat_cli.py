"The chat CLI as a user runs it: `python -m nanochat.scripts.chat_cli` in a subprocess, on a tiny saved model."
import os, sys, subprocess
from dataclasses import asdict
import torch
from conftest import ROOT


def save_tiny_model(stage="sft", tag="t1"):
    "A perturbed tiny GPT + byte-level tokenizer saved under $NANOCHAT_BASE_DIR; returns (engine, tokenizer)."
    from nanochat.gpt import GPT, config_from_depth
    from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
    from nanochat.checkpoint import save_checkpoint
    from nanochat.engine import Engine
    tok = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)})
    tok.save()
    cfg = config_from_depth(2, vocab_size=tok.vocab_size, sequence_len=256, aspect_ratio=16, head_dim=8)
    model = GPT(cfg)   # from seed 0 in every test (conftest's fixture), whichever tests ran before
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters(): p.add_(torch.randn(p.shape, generator=g) * 0.3)
    save_checkpoint(stage, tag, 3, model.state_dict(), {"config": asdict(cfg)})
    return Engine(model.eval(), tok), tok


def greedy_reply(engine, tok, messages, max_tokens=20, content=False):
    "The reply's text (or, with `content`, the message the CLI keeps in its history)."
    from nanochat.engine import completion_content
    p = tok.render_for_completion({"messages": messages})
    (full,), _ = engine.generate_batch(p, max_tokens=max_tokens, temperature=0)
    return completion_content(tok, full[len(p):]) if content else tok.decode(full[len(p):])


def run_cli(*args, stdin=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "nanochat.scripts.chat_cli", *args], input=None if stdin is None else stdin.encode(),
                       capture_output=True, timeout=120, env=env, cwd=ROOT)
    # decoded by hand: text mode would turn a '\r' the model wrote into '\n'
    p.stdout, p.stderr = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    return p


GREEDY = ["--temperature", "0", "--max-tokens", "20", "--device-type", "cpu"]


def test_one_shot_prints_the_engines_completion():
    engine, tok = save_tiny_model()
    want = greedy_reply(engine, tok, [{"role": "user", "content": "hello"}])
    assert want, "the test model should say something"
    r = run_cli("-p", "hello", "--source", "sft", "--model-tag", "t1", *GREEDY)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want + "\n"


def test_interactive_keeps_history_clear_and_quit():
    engine, tok = save_tiny_model()
    r1 = greedy_reply(engine, tok, [{"role": "user", "content": "hello"}])
    c1 = greedy_reply(engine, tok, [{"role": "user", "content": "hello"}], content=True)
    r2 = greedy_reply(engine, tok, [{"role": "user", "content": "hello"}, {"role": "assistant", "content": c1},
                                    {"role": "user", "content": "and then?"}])
    assert r1 and r1 != r2, "the test model should answer, and answer the second turn otherwise"
    r = run_cli("--model-tag", "t1", *GREEDY, stdin="hello\nand then?\nclear\nhello\nquit\nnever read\n")
    assert r.returncode == 0, r.stderr
    # each reply is followed by a newline and the next "\nUser: " prompt (replies may hold any character)
    replies = [part[:part.index("\n\nUser: ")] for part in r.stdout.split("Assistant: ")[1:]]
    assert replies == [r1, r2, r1], r.stdout         # turn 2 saw the history; after 'clear' it is gone
    assert "(new conversation)" in r.stdout


def test_end_of_input_ends_the_chat():
    save_tiny_model()
    r = run_cli("--model-tag", "t1", *GREEDY, stdin="hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Assistant: ") == 1


def test_missing_checkpoint_names_the_command():
    save_tiny_model(stage="sft")                      # an sft model exists, but no rl model
    r = run_cli("-p", "hi", "--source", "rl")
    assert r.returncode == 1
    assert "python -m nanochat.scripts.chat_rl" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("-p", "hi", "--source", "sft", "--model-tag", "t1", "--step", "99")
    assert r.returncode == 1 and "have steps [3]" in r.stderr and "chat_sft" in r.stderr
