"""Tokenizer training and encoding: ours (nanochat_rustbpe + tiktoken) vs PyPI `rustbpe` vs HF `tokenizers`.

    python bench/tokenizer.py                 # 50 MB of the train shards, vocab 32768
    python bench/tokenizer.py --mb 5 --vocab-size 4096

All three train byte-level BPE with the same split pattern on the same documents to the same
vocabulary size, one after the other on the same machine; the figures are wall-clock seconds of
the training call alone (texts already in memory). Encoding throughput is measured on the
validation shard (repeated to `--encode-mb`), and bytes/token on the validation shard once.

The peers are never our dependencies: they live in their own venv (`bench/.venv-peers`, git-ignored,
created on first use with pip) and run in a subprocess, since PyPI's `rustbpe` is a different
module from ours (`nanochat_rustbpe`). This file imports nothing but the standard library at the
top, so the same file serves as the peer worker (`--peer rustbpe|hf`) inside that venv.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".venv-peers"
PEER_PACKAGES = ["rustbpe==0.1.0", "tokenizers"]

def load(path):
    with open(path) as f: return [json.loads(line) for line in f]

def peer(kind, corpus, val, vocab_size, pattern, encode_reps):
    "Runs inside the peers' venv: train, encode, report one JSON line."
    texts, val = load(corpus), load(val)
    if kind == "rustbpe":
        import rustbpe
        tok = rustbpe.Tokenizer()
        t0 = time.perf_counter(); tok.train_from_iterator(iter(texts), vocab_size, pattern=pattern); train_s = time.perf_counter() - t0
        n_vocab = len(dict(tok.get_mergeable_ranks()))
        encode = tok.batch_encode
    else:
        from tokenizers import Tokenizer, Regex, models, pre_tokenizers, trainers
        tok = Tokenizer(models.BPE(byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(pattern=Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=0, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
        t0 = time.perf_counter(); tok.train_from_iterator(texts, trainer); train_s = time.perf_counter() - t0
        n_vocab = tok.get_vocab_size()
        encode = lambda docs: [e.ids for e in tok.encode_batch(docs, add_special_tokens=False)]
    tokens = sum(map(len, encode(val)))
    t0 = time.perf_counter(); encode(val * encode_reps); enc_s = time.perf_counter() - t0
    print(json.dumps({"train_s": train_s, "encode_s": enc_s, "val_tokens": tokens, "vocab": n_vocab}))

def ensure_peers_venv():
    py = PEERS_VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {PEERS_VENV} with {PEER_PACKAGES} (benchmark peers only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_PACKAGES], check=True)
    return py

def corpus_slice(data_dir, mb):
    "The first `mb` MB (UTF-8) of documents of the train shards, and the validation shard's documents."
    import pyarrow.parquet as pq
    files = sorted(p for p in Path(data_dir).glob("*.parquet") if not p.name.startswith("."))
    if len(files) < 2: raise SystemExit(f"no shards in {data_dir}: run `python -m nanochat.dataset build` first")
    texts, n = [], 0
    for f in files[:-1]:
        for doc in pq.read_table(f, columns=["text"]).column("text").to_pylist():
            texts.append(doc); n += len(doc.encode())
            if n >= mb * 1e6: break
        if n >= mb * 1e6: break
    val = pq.read_table(files[-1], columns=["text"]).column("text").to_pylist()
    return texts, n, val

def ours(texts, val, vocab_size, pattern, encode_reps):
    import nanochat_rustbpe, tiktoken
    t0 = time.perf_counter(); _, ranks, _ = nanochat_rustbpe.train_from_iterator(iter(texts), vocab_size, pattern); train_s = time.perf_counter() - t0
    enc = tiktoken.Encoding("bench", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    encode = lambda docs: enc.encode_ordinary_batch(docs, num_threads=os.cpu_count())
    tokens = sum(map(len, encode(val)))
    t0 = time.perf_counter(); encode(val * encode_reps); enc_s = time.perf_counter() - t0
    return {"train_s": train_s, "encode_s": enc_s, "val_tokens": tokens, "vocab": len(ranks)}

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=50, help="training text, MB of UTF-8")
    p.add_argument("--vocab-size", type=int, default=32768)
    p.add_argument("--encode-mb", type=float, default=10, help="text to encode for the throughput figure (the val shard, repeated)")
    p.add_argument("--data-dir", help="shard folder (default: get_base_dir()/'base_data', the embedded corpus)")
    p.add_argument("--peer", choices=["rustbpe", "hf"], help=argparse.SUPPRESS)
    p.add_argument("--corpus", help=argparse.SUPPRESS); p.add_argument("--val", help=argparse.SUPPRESS)
    p.add_argument("--pattern", help=argparse.SUPPRESS); p.add_argument("--encode-reps", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.peer: return peer(a.peer, a.corpus, a.val, a.vocab_size, a.pattern, a.encode_reps)

    sys.path.insert(0, str(HERE.parent))
    from nanochat.common import get_base_dir
    from nanochat.tokenizer import SPLIT_PATTERN
    data_dir = a.data_dir or get_base_dir() / "base_data"
    texts, nbytes, val = corpus_slice(data_dir, a.mb)
    val_bytes = sum(len(d.encode()) for d in val)
    reps = max(1, round(a.encode_mb * 1e6 / val_bytes))
    print(f"corpus: {len(texts):,} documents, {nbytes / 1e6:.1f} MB from {data_dir}; vocab {a.vocab_size:,}; "
          f"val: {len(val):,} documents, {val_bytes / 1e6:.1f} MB (encoded x{reps}); {os.cpu_count()} CPUs", flush=True)
    py = ensure_peers_venv()
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, docs in (("corpus", texts), ("val", val)):
            with open(f"{tmp}/{name}.jsonl", "w") as f: f.writelines(json.dumps(d) + "\n" for d in docs)
        res["ours (nanochat_rustbpe)"] = ours(texts, val, a.vocab_size, SPLIT_PATTERN, reps)
        print("ours done", flush=True)
        for kind, label in (("rustbpe", "PyPI rustbpe 0.1.0"), ("hf", "HF tokenizers")):
            out = subprocess.run([str(py), __file__, "--peer", kind, "--corpus", f"{tmp}/corpus.jsonl", "--val", f"{tmp}/val.jsonl",
                                  "--vocab-size", str(a.vocab_size), "--pattern", SPLIT_PATTERN, "--encode-reps", str(reps)],
                                 capture_output=True, text=True)
            if out.returncode: raise SystemExit(f"{label} failed:\n{out.stderr[-2000:]}")
            res[label] = json.loads(out.stdout.strip().splitlines()[-1]); print(f"{label} done", flush=True)

    print(f"\n{'tokenizer':<26} {'vocab':>7} {'train s':>8} {'encode MB/s':>12} {'val bytes/token':>16}")
    for k, r in res.items():
        print(f"{k:<26} {r['vocab']:>7,} {r['train_s']:>8.2f} {val_bytes * reps / 1e6 / r['encode_s']:>12.1f} {val_bytes / r['val_tokens']:>16.4f}")
    o, rb, hf = res.values()
    print(f"\ntraining speed-up, ours vs PyPI rustbpe: {rb['train_s'] / o['train_s']:.2f}x; ours vs HF tokenizers: {hf['train_s'] / o['train_s']:.2f}x")
    print(f"encoding speed-up, ours vs PyPI rustbpe: {rb['encode_s'] / o['encode_s']:.2f}x; ours vs HF tokenizers: {hf['encode_s'] / o['encode_s']:.2f}x")
    print(f"bytes/token, ours vs PyPI rustbpe: {100 * (rb['val_tokens'] / o['val_tokens'] - 1):+.3f}% "
          f"(vs HF tokenizers: {100 * (hf['val_tokens'] / o['val_tokens'] - 1):+.3f}%)")

if __name__ == "__main__":
    main()
