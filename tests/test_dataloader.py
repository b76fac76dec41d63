"The dataloader under real torchrun: two processes read disjoint documents, and each resumes exactly."
import json, textwrap
from conftest import torchrun

WORKER = textwrap.dedent(r'''
    import json, re, sys, random
    from pathlib import Path
    from nanochat.common import compute_init, compute_cleanup
    from nanochat.dataset import write_shard
    from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
    from nanochat.dataloader import data_loader
    out = Path(sys.argv[1])
    ddp, rank, _, world, _ = compute_init()
    rng = random.Random(0)                      # same corpus on both ranks (rank 0 would write it on a shared disk)
    texts = [f"<doc {i}> " + "word " * rng.randint(5, 80) for i in range(600)]
    data = out / f"data{rank}"; data.mkdir()
    write_shard(texts[:500], data / "shard_00000.parquet", row_group_size=25)
    write_shard(texts[500:], data / "shard_00001.parquet", row_group_size=25)
    tok = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)})
    ids = lambda x: sorted({int(m) for r in x.tolist() for m in re.findall(r"<doc (\d+)>", tok.decode(r))})
    run = data_loader(tok, 4, 64, data_dir=data, buffer_docs=20)
    batches = [next(run) for _ in range(6)]
    resumed = data_loader(tok, 4, 64, data_dir=data, buffer_docs=20, state=batches[2][2])
    same = all(next(resumed)[0].tolist() == b[0].tolist() for b in batches[3:])
    docs = sorted(set().union(*(ids(b[0]) for b in batches)))
    (out / f"rank{rank}.json").write_text(json.dumps({"docs": docs, "resumed_same": same, "world": world}))
    compute_cleanup()
''')

def test_two_ranks_disjoint_and_resumable(tmp_path):
    script = tmp_path / "w.py"; script.write_text(WORKER)
    p = torchrun(script, 2, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    r = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert all(x["world"] == 2 and x["resumed_same"] for x in r)
    assert len(r[0]["docs"]) > 20 and len(r[1]["docs"]) > 20
    assert not set(r[0]["docs"]) & set(r[1]["docs"]), "two ranks trained on the same document"
    # each rank reads alternate row groups of 25 documents: rank 0 gets 0-24, 50-74, ...; rank 1 gets 25-49, ...
    assert all((d // 25) % 2 == 0 for d in r[0]["docs"]) and all((d // 25) % 2 == 1 for d in r[1]["docs"])
