"The distributed helpers of nanochat.common, under real torchrun with two CPU processes."
import json, textwrap
from conftest import torchrun

WORKER = textwrap.dedent('''
    import json, sys, torch, torch.distributed as dist
    from nanochat.common import compute_init, compute_cleanup, print0, get_dist_info
    ddp, rank, local_rank, world, device = compute_init()
    x = torch.tensor([float(rank + 1)])
    dist.all_reduce(x)                       # 1 + 2 on two ranks
    r = torch.rand(1).item()                 # same seed on every rank -> same number
    print0("ONLY-RANK0")
    out = dict(ddp=ddp, rank=rank, world=world, device=str(device), backend=dist.get_backend(), sum=x.item(), r=r)
    with open(sys.argv[1] + f"/rank{rank}.json", "w") as f: json.dump(out, f)
    compute_cleanup()
    assert not dist.is_initialized()
''')

def test_two_cpu_processes(tmp_path):
    script = tmp_path / "worker.py"; script.write_text(WORKER)
    p = torchrun(script, 2, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    res = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in res] == [0, 1]
    for r in res:
        assert r["ddp"] is True and r["world"] == 2 and r["device"] == "cpu"
        assert r["backend"] == "gloo"
        assert r["sum"] == 3.0
    assert res[0]["r"] == res[1]["r"], "compute_init must seed every rank identically"
    assert p.stdout.count("ONLY-RANK0") == 1, p.stdout

def test_single_process_is_not_distributed(tmp_path):
    import subprocess, sys, os
    code = "from nanochat.common import compute_init; import torch.distributed as d; print(compute_init()[:4], d.is_initialized())"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "(False, 0, 0, 1) False"
