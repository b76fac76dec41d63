"Checkpoints under real conditions: two torchrun processes writing shards, and kill -9 in the middle of saving."
import os, sys, json, time, signal, subprocess, textwrap
import pytest, torch
from conftest import torchrun, ROOT

SHARDS = textwrap.dedent('''
    import sys, torch
    from nanochat.common import compute_init, compute_cleanup
    from nanochat.checkpoint import save_checkpoint, load_checkpoint, list_steps
    ddp, rank, _, world, _ = compute_init()
    model = {"w": torch.arange(6.0)}
    for step in (1, 2, 3):
        save_checkpoint("base", "d2", step, model, {"config": {}}, optim_state={"mine": torch.full((3,), float(rank * 10 + step))}, keep=2)
    assert list_steps("base", "d2") == [2, 3], list_steps("base", "d2")
    sd, meta, rs = load_checkpoint("base", "d2", load_optimizer=True)
    assert meta["world_size"] == 2 and meta["step"] == 3
    assert torch.equal(rs["optimizer"]["mine"], torch.full((3,), float(rank * 10 + 3))), rs
    compute_cleanup()
    print("RANK-OK", rank)
''')

def test_two_ranks_write_and_read_their_own_shards(tmp_path):
    script = tmp_path / "w.py"; script.write_text(SHARDS)
    p = torchrun(script, 2, env={"NANOCHAT_BASE_DIR": str(tmp_path / "base")})
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("RANK-OK") == 2
    d = tmp_path / "base/checkpoints/base/d2"
    assert sorted(x.name for x in d.iterdir()) == ["step_000002", "step_000003"]
    assert sorted(x.name for x in (d / "step_000003").iterdir()) == ["meta.json", "model.pt", "rank_00.pt", "rank_01.pt"]
    # a single process may read the model for inference, but not resume a 2-process run's optimizer
    os.environ["NANOCHAT_BASE_DIR"] = str(tmp_path / "base")
    from nanochat.checkpoint import load_checkpoint
    assert torch.equal(load_checkpoint("base", "d2")[0]["w"], torch.arange(6.0))
    with pytest.raises(ValueError, match="written by 2 processes"): load_checkpoint("base", "d2", load_optimizer=True)

SAVER = textwrap.dedent('''
    import torch
    from nanochat.checkpoint import save_checkpoint
    big = {"w": torch.zeros(4_000_000)}                      # 16 MB: saving takes long enough to be interrupted
    step = 0
    while True:
        step += 1
        big["w"].fill_(step)
        save_checkpoint("base", "k9", step, big, {"config": {}}, optim_state={"m": torch.ones(1_000_000) * step}, keep=3)
        print(step, flush=True)
''')

def test_kill_minus_nine_never_leaves_a_partial_checkpoint(tmp_path):
    script = tmp_path / "saver.py"; script.write_text(SAVER)
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(tmp_path / "base"), "OMP_NUM_THREADS": "1"}
    from nanochat.checkpoint import load_checkpoint, list_steps
    os.environ["NANOCHAT_BASE_DIR"] = env["NANOCHAT_BASE_DIR"]
    seen = 0
    for after, delay in ((1, 0.0), (2, 0.01), (2, 0.03), (3, 0.06), (3, 0.1)):   # kills at different moments of a save
        p = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
        while int(p.stdout.readline() or after) < after: pass   # wait until `after` saves completed
        time.sleep(delay)
        p.send_signal(signal.SIGKILL); p.wait()
        steps = list_steps("base", "k9")
        assert not list((tmp_path / "base/checkpoints/base/k9").glob("step_*/*.tmp*"))
        for s in steps:                                       # every visible checkpoint is complete and right
            sd, meta, rs = load_checkpoint("base", "k9", step=s, load_optimizer=True)
            assert meta["step"] == s and sd["w"][0].item() == s and rs["optimizer"]["m"][-1].item() == s
        seen += len(steps)
    assert seen > 0, "the saver never completed a checkpoint; raise the delays"
