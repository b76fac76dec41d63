"""Distributed optimizers: 2 CPU processes under real torchrun (gloo), each with half of the batch, must end
with the same parameters as 1 process (no process group at all) with the whole batch, after N steps of the
real `setup_optimizers()` (AdamW for embeddings/head/scalars, Muon for the block matrices).

Tolerance: max |difference| < 1e-3 * lr * N for AdamW parameters and 1e-4 * lr * N for Muon's, i.e. 0.1% and
0.01% of the largest distance the optimizer could have moved them (a step moves an element by about lr). The two runs differ only in the
order in which gradient contributions are summed (~1e-7 relative), but Adam normalises each element by its
own gradient size, so elements whose gradient nearly cancels turn that rounding into visible differences
(measured: up to ~1e-4 * lr * N on the embeddings, whose lr is 0.7 at this width; ~3e-6 * lr * N for Muon).
A wrong shard, a missing average or a missing gather moves parameters by O(lr) per step and fails by orders
of magnitude."""
import os, sys, subprocess, textwrap
import torch
from conftest import torchrun, ROOT

STEPS, BATCH, SEQ = 6, 4, 16
WORKER = textwrap.dedent(f'''
    import sys, torch, torch.distributed as dist
    from nanochat.common import compute_init, compute_cleanup
    from nanochat.gpt import GPT, GPTConfig
    import nanochat.optim  # adds GPT.setup_optimizers
    torch.set_num_threads(1)
    ddp, rank, _, world, device = compute_init("cpu")
    assert dist.is_initialized() == (world > 1 or ddp)
    # 3 layers: 3 MLP matrices of one shape (an odd count: Muon pads the last chunk), resid_lambdas of
    # length 3 (does not split over 2 ranks: all-reduced), head and embeddings sharded by rows
    cfg = GPTConfig(sequence_len={SEQ}, vocab_size=100, n_layer=3, n_head=2, n_kv_head=1, n_embd=64, window_pattern="SL")
    torch.manual_seed(0)
    model = GPT(cfg)
    with torch.no_grad():  # leave the init: there zero projections make many gradients exactly 0 in exact
        for p in model.parameters(): p.add_(0.3 * torch.randn_like(p))  # math, and Adam blows their rounding noise up to full steps
    init = {{k: v.detach().clone() for k, v in model.named_parameters()}}
    opts = model.setup_optimizers(dtype=torch.float32)   # fp32 throughout: this checks the distributed step, not bf16 rounding
    g = torch.Generator().manual_seed(1)
    for step in range({STEPS}):
        x = torch.randint(0, 100, ({BATCH}, {SEQ} + 1), generator=g)   # every rank draws the same global batch
        rows = slice(rank * {BATCH} // world, (rank + 1) * {BATCH} // world)  # and trains on its share
        loss = model(x[rows, :-1], x[rows, 1:])
        loss.backward()
        for opt in opts: opt.step()
        model.zero_grad(set_to_none=True)
    muon_ids = {{id(p) for grp in opts[1].param_groups for p in grp["params"]}}
    out = {{k: v.detach() for k, v in model.named_parameters()}}
    out["__muon__"] = [k for k, v in model.named_parameters() if id(v) in muon_ids]
    lr = {{id(p): grp["lr"] for opt in opts for grp in opt.param_groups for p in grp["params"]}}
    out["__lr__"] = {{k: lr[id(v)] for k, v in model.named_parameters()}}
    out["__moved__"] = min((v - init[k]).abs().max().item() for k, v in model.named_parameters())
    torch.save(out, sys.argv[1] + f"/world{{world}}_rank{{rank}}.pt")
    compute_cleanup()
''')

def test_two_processes_match_one(tmp_path):
    script = tmp_path / "worker.py"; script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    one = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun(script, 2, tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    ref, r0, r1 = (torch.load(tmp_path / f, weights_only=False) for f in ("world1_rank0.pt", "world2_rank0.pt", "world2_rank1.pt"))
    assert ref["__moved__"] > 1e-4, "every parameter must have been updated"
    muon = set(ref.pop("__muon__")); r0.pop("__muon__"); r1.pop("__muon__")
    lrs = ref.pop("__lr__")
    for d in (ref, r0, r1): d.pop("__moved__"); d.pop("__lr__", None)
    assert muon and len(muon) < len(ref), "both optimizers must be in play"
    for name in ref:
        assert torch.equal(r0[name], r1[name]), f"{name}: the two ranks disagree"
        diff = (r0[name] - ref[name]).abs().max().item()
        tol = (1e-4 if name in muon else 1e-3) * lrs[name] * STEPS
        assert diff < tol, f"{name} ({'Muon' if name in muon else 'AdamW'}): 2 processes differ from 1 by {diff:.2e} > {tol:.2e}"
