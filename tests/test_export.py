"""The Hugging Face export, checked with the real `transformers` and `safetensors` from PyPI on CPU: a folder that
`transformers` loads with trust_remote_code computes our logits, tokenizes to our ids, renders our chat format,
generates our greedy replies (with and without the KV cache) and runs in a pipeline; `load_model(folder)` reads it
back bit for bit. The model is a tiny GPT with random weights of a trained model's scale; the tokenizer is trained
here in a fraction of a second."""
import contextlib, io, json, subprocess, sys
from dataclasses import asdict
from pathlib import Path
import pytest, torch

try:
    import transformers, safetensors  # noqa: F401  (the `export` extra; dev/setup.sh installs it)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, pipeline
except ImportError as e:
    raise ImportError(f"tests/test_export.py needs the export extra ({e}): run `bash dev/setup.sh` or pip install -e '.[export]'") from e

import nanochat
from nanochat.checkpoint import save_checkpoint, load_model, EXPORT_MODEL_TYPE
from nanochat.engine import Engine, turn_end_ids
from nanochat.gpt import GPT, GPTConfig
from nanochat.tokenizer import Tokenizer, SPECIAL_TOKENS
from nanochat.scripts import export

PKG = Path(nanochat.__file__).parent
PROSE = ["The quick brown fox jumps over the lazy dog. It's a pangram, isn't it?", "  Leading spaces, trailing ones  \n",
         "Line one\nLine two\r\nLine three\n\n\n", "Don't, won't, y'all've; I'LL SHOUT"]
CODE = ["def f(x):\n    return [i ** 2 for i in range(x) if i % 2]\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
        "\tif x == None:\n\t\tpass  # tabs\n", '{"key": [1, 2.5, null], "ok": true}']
NUMBERS = ["3.14159265358979", "1234567890 + 987654321 = 2222222211", "-42, 1e-10, 0x1F, 1,000,000", "2026-12-07 04:15:00"]
FOREIGN = ["Ça coûte 3,50 € — très cher !", "東京は日本の首都です。", "Привет, как дела?", "مرحبا بالعالم", "Γειά σου κόσμε",
           "नमस्ते दुनिया", "emoji 🙂🚀👩‍💻 and ZWJ", "Straße, naïve, coöperate, Ångström", "\x00\x01 control \x7f bytes \ufeff"]
TEXTS = PROSE + CODE + NUMBERS + FOREIGN

MULTI = [{"role": "system", "content": "You are terse.\nVery terse."},
         {"role": "user", "content": "Hi there  \n"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "What is 12*7?"},
         {"role": "assistant", "content": [{"type": "text", "text": "Let me compute. "}, {"type": "python", "text": "12*7"},
                                           {"type": "python_output", "text": "84"}, {"type": "text", "text": "It is 84."}]},
         {"role": "user", "content": "Et en français ? 東京?"}]
CONVERSATIONS = [MULTI, MULTI[1:2], MULTI[:2], MULTI[1:4], MULTI[1:], [{"role": "user", "content": ""}]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A trained tokenizer and a tiny sft checkpoint in a base dir of their own, exported by the script to a folder."
    base = tmp_path_factory.mktemp("base")
    corpus = [p.read_text() for p in sorted(PKG.glob("*.py"))[:6]] + TEXTS * 10
    tok = Tokenizer.train_from_iterator(corpus, 1200)
    tok.save(base/"tokenizer")
    torch.manual_seed(0)
    cfg = GPTConfig(sequence_len=64, vocab_size=tok.vocab_size, n_layer=3, n_head=2, n_kv_head=1, n_embd=32)  # short window 16
    model = GPT(cfg)
    with torch.no_grad():  # weights of a trained model's scale: a fresh GPT has zero projections and gates (flat logits, ties)
        for p in model.parameters(): p.copy_(torch.randn_like(p) * (p.size(-1) ** -0.5 if p.ndim == 2 else 0.5))
    save_checkpoint("sft", "d3", 7, model.state_dict(), {"config": asdict(cfg)}, base_dir=base)
    out = tmp_path_factory.mktemp("export")/"tiny"
    with contextlib.redirect_stdout(io.StringIO()):
        export.main(["--source", "sft", "--out", str(out), "--base-dir", str(base)])
    model.eval()
    hf = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True).eval()
    hf_tok = AutoTokenizer.from_pretrained(out, trust_remote_code=True)
    return dict(base=base, tok=tok, model=model, out=out, hf=hf, hf_tok=hf_tok)


def test_folder_files_and_metadata(world):
    out = world["out"]
    assert sorted(p.name for p in out.iterdir()) == sorted(["model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                                                            "tokenizer_config.json", "hf.py", "gpt.py", "kernels.py", "common.py", "README.md"])
    for name in ("gpt.py", "kernels.py", "common.py", "hf.py"):   # the modelling code is this package's own files, byte for byte
        assert (out/name).read_bytes() == (PKG/name).read_bytes(), name
    cfg = json.loads((out/"config.json").read_text())
    assert cfg["model_type"] == EXPORT_MODEL_TYPE == "nanochat_course" and cfg["nanochat"]["step"] == 7
    assert cfg["model_type"] != "nanochat" and "nanochat" in transformers.CONFIG_MAPPING   # transformers' own class keeps its name
    assert AutoConfig.from_pretrained(out, trust_remote_code=True).hidden_size == 32
    assert type(world["hf"]).__name__ == "NanoChatCourseForCausalLM" and world["hf"].dtype == torch.float32
    gen = json.loads((out/"generation_config.json").read_text())
    assert set(gen["eos_token_id"]) == turn_end_ids(world["tok"]) and gen["eos_token_id"][0] == world["tok"].encode_special("<|assistant_end|>")
    card = (out/"README.md").read_text()
    assert "step 7" in card and "trust_remote_code=True" in card and card.startswith("---\nlicense: mit")


def test_logits_match_ours(world):
    "fp32 logits of transformers' model equal ours on varied inputs, including ones past the short window and the context."
    torch.manual_seed(1)
    V, worst = world["tok"].vocab_size, 0.0
    inputs = [torch.randint(0, V, (1, 1)), torch.randint(0, V, (2, 7)), torch.randint(0, V, (3, 16)), torch.randint(0, V, (2, 17)),
              torch.randint(0, V, (1, 64)), torch.randint(0, V, (2, 150)),
              torch.tensor([world["tok"].render_for_completion(MULTI)])]
    for x in inputs:
        with torch.no_grad(): d = (world["hf"](x).logits - world["model"](x)).abs().max().item()
        worst = max(worst, d)
    print(f"max |logits_hf - logits_ours| over {len(inputs)} inputs: {worst:.2e}")
    assert worst <= 1e-5


def test_loss_with_labels(world):
    x = torch.randint(0, world["tok"].vocab_size, (2, 40), generator=torch.Generator().manual_seed(2))
    with torch.no_grad(): hf_loss, ours = world["hf"](x, labels=x).loss, world["model"](x[:, :-1], x[:, 1:])
    assert abs(hf_loss.item() - ours.item()) < 1e-5, (hf_loss.item(), ours.item())


def test_tokenizer_ids_and_decoding(world):
    tok, hf_tok = world["tok"], world["hf_tok"]
    for t in TEXTS:
        assert hf_tok.encode(t) == tok.encode(t), t
        assert hf_tok.decode(hf_tok.encode(t)) == tok.decode(tok.encode(t)) == t, t
    for s in SPECIAL_TOKENS:   # each special token: its id, its text, both ways
        i = tok.encode_special(s)
        assert hf_tok.convert_tokens_to_ids(s) == i and hf_tok.encode(s) == [i] and hf_tok.decode([i]) == s == tok.decode([i])
    mixed = "<|bos|>" + "".join(f"{s} {t}" for s, t in zip(SPECIAL_TOKENS, TEXTS))
    assert hf_tok.encode(mixed) == tok.enc.encode(mixed, allowed_special="all")
    # every vocabulary entry alone, and a cut UTF-8 character (decoded to U+FFFD by both)
    assert all(hf_tok.decode([i]) == tok.decode([i]) for i in range(tok.vocab_size))
    cut = tok.encode("é")[:1] if len(tok.encode("é")) > 1 else [0xC3]
    assert hf_tok.decode(cut) == tok.decode(cut)


def test_chat_template_equals_render_for_completion(world):
    tok, hf_tok = world["tok"], world["hf_tok"]
    for conv in CONVERSATIONS:
        got = hf_tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        assert list(got) == tok.render_for_completion(conv), hf_tok.decode(got)
    full = hf_tok.apply_chat_template(MULTI[:5], tokenize=True, return_dict=True)["input_ids"]   # no prompt: the training rendering
    assert list(full) == tok.render_conversation(MULTI[:5])[0]
    for bad, why in [([{"role": "assistant", "content": "x"}], "has role assistant"),
                     ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "messages alternate"),
                     ([{"role": "system", "content": "x"}], "system message must be followed by a user message")]:
        with pytest.raises(Exception, match=why): hf_tok.apply_chat_template(bad, tokenize=False)
        with pytest.raises(ValueError): tok.render_for_completion(bad)


def test_greedy_generate_equals_engine(world):
    """32 greedy tokens from transformers' generate, with and without the KV cache, equal ours (fp32): all 32 against
    GPT.generate (no stop tokens), and against the Engine up to where it stops (a turn-ending token) or runs its tool."""
    tok, hf, model = world["tok"], world["hf"], world["model"]
    eng = Engine(model, tok, dtype=torch.float32)
    tool = {tok.encode_special("<|python_start|>")}
    for q in ["Hello!", "What is 12*7? Explain.", "東京?"]:
        prompt = tok.render_for_completion([{"role": "user", "content": q}])
        ours = list(model.generate(prompt, 32, temperature=0, dtype=torch.float32))
        engine = eng.generate_batch(prompt, max_tokens=32, temperature=0)[0][0][len(prompt):]
        cut = next((i for i, t in enumerate(ours) if t in eng.stop_ids | tool), 32)
        assert engine[:cut] == ours[:cut] and (cut < 32 or len(engine) == 32), (q, engine, ours)
        for use_cache in (True, False):
            full = hf.generate(torch.tensor([prompt]), max_new_tokens=32, do_sample=False, use_cache=use_cache, eos_token_id=None)
            assert full[0, len(prompt):].tolist() == ours, (q, use_cache)
            stopping = hf.generate(torch.tensor([prompt]), max_new_tokens=32, do_sample=False, use_cache=use_cache)  # generation_config's stops
            n = next((i + 1 for i, t in enumerate(ours) if t in eng.stop_ids), 32)
            assert stopping[0, len(prompt):].tolist() == ours[:n], (q, use_cache)


def test_generate_past_the_context_grows_the_cache(world):
    "A prompt of 50 + 40 new tokens runs past the context (64): the cached and uncached runs still equal our GPT.generate."
    hf, model = world["hf"], world["model"]
    prompt = torch.randint(0, 256, (1, 50), generator=torch.Generator().manual_seed(3))
    ours = list(model.generate(prompt[0].tolist(), 40, temperature=0, dtype=torch.float32))
    for use_cache in (True, False):
        assert hf.generate(prompt, max_new_tokens=40, do_sample=False, use_cache=use_cache, eos_token_id=None)[0, 50:].tolist() == ours


def test_pipeline_chats(world):
    chat = pipeline("text-generation", model=str(world["out"]), trust_remote_code=True, device="cpu")
    msgs = [{"role": "user", "content": "Hello!"}]
    reply = chat(msgs, do_sample=False, max_new_tokens=12)[0]["generated_text"]
    assert reply[:1] == msgs and reply[-1]["role"] == "assistant"
    prompt = world["tok"].render_for_completion(msgs)
    ids = Engine(world["model"], world["tok"], dtype=torch.float32).generate_batch(prompt, max_tokens=12, temperature=0)[0][0][len(prompt):]
    assert reply[-1]["content"] == world["tok"].decode(ids)
    assert isinstance(chat("Once upon a time", max_new_tokens=5)[0]["generated_text"], str)   # plain text, sampled


def test_load_model_from_folder_round_trips(world):
    model, tok, meta = load_model(world["out"])
    ref = world["model"].state_dict()
    assert list(model.state_dict()) == list(ref)
    assert all(torch.equal(v, ref[k]) and v.dtype == ref[k].dtype for k, v in model.state_dict().items())
    assert (tok.ranks, tok.pattern) == (world["tok"].ranks, world["tok"].pattern) and meta["step"] == 7 and meta["source"] == "sft"
    assert asdict(model.config) == asdict(world["model"].config) and not model.training


def test_bfloat16_export(world, tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        out = export.main(["--source", "sft", "--out", str(tmp_path/"bf16"), "--base-dir", str(world["base"]), "--dtype", "bfloat16"])
    ratio = (out/"model.safetensors").stat().st_size / (world["out"]/"model.safetensors").stat().st_size
    assert 0.45 < ratio < 0.55, ratio
    hf = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)
    assert hf.dtype == torch.bfloat16
    x = torch.randint(0, world["tok"].vocab_size, (1, 20), generator=torch.Generator().manual_seed(4))
    with torch.no_grad(): d = (hf(x).logits.float() - world["model"](x)).abs().max().item()
    assert d < 0.5, d   # bf16 weights and compute: close, not equal


def _run(argv):
    "export.main's exit code and stderr."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try: export.main(argv); return 0, err.getvalue()
        except SystemExit as e: return e.code, err.getvalue()


def test_bad_input_gets_a_clear_error_and_loses_nothing(world, tmp_path, monkeypatch):
    base = ["--base-dir", str(world["base"])]
    keep = tmp_path/"mine"; keep.mkdir(); (keep/"notes.txt").write_text("precious")
    code, err = _run(["--out", str(keep), *base])
    assert code == 1 and "pass --force" in err and (keep/"notes.txt").read_text() == "precious"
    code, err = _run(["--source", "rl", "--out", str(tmp_path/"x"), *base])
    assert code == 1 and "python -m nanochat.scripts.chat_rl" in err and not (tmp_path/"x").exists()
    code, err = _run(["--out", str(tmp_path/"y"), "--push-to-hub", "no-owner", *base])
    assert code == 1 and "OWNER/NAME" in err and not (tmp_path/"y").exists()
    # no token: refused before anything is exported
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)   # as on a machine never logged in (HF_TOKEN unset, no stored token)
    code, err = _run(["--out", str(tmp_path/"z"), "--push-to-hub", "you/tiny", *base])
    assert code == 1 and "hf auth login" in err and not (tmp_path/"z").exists()
    # no huggingface_hub at all
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    code, err = _run(["--out", str(tmp_path/"z"), "--push-to-hub", "you/tiny", *base])
    assert code == 1 and "pip install huggingface_hub" in err and not (tmp_path/"z").exists()


def test_push_dry_run_lists_the_upload(world, tmp_path, monkeypatch):
    "Uploading needs the network and a token, neither of which a test has: the dry run exports and lists, uploads nothing."
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        export.main(["--out", str(tmp_path/"dry"), "--base-dir", str(world["base"]), "--push-to-hub", "you/tiny", "--dry-run"])
    text = out.getvalue()
    assert "would upload 10 files" in text and "https://huggingface.co/you/tiny" in text and "model.safetensors" in text
    assert "model='you/tiny'" in (tmp_path/"dry"/"README.md").read_text()


def test_force_replaces_an_export(world, tmp_path):
    out = tmp_path/"again"
    for _ in range(2):
        assert _run(["--out", str(out), "--base-dir", str(world["base"]), "--force"])[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]   # no temporary or old folder left behind


def test_the_command_line(world, tmp_path):
    "The command a user runs after speedrun.sh, as a process."
    r = subprocess.run([sys.executable, "-m", "nanochat.scripts.export", "--source", "sft", "--out", str(tmp_path/"cli"), "--base-dir", str(world["base"])],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "exported sft model d3 (step 7)" in r.stdout, r.stdout + r.stderr
    assert (tmp_path/"cli"/"model.safetensors").read_bytes() == (world["out"]/"model.safetensors").read_bytes()
