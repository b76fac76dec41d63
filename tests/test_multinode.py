"""Multi-node training is plain torchrun rendezvous (c10d), no code of our own: two launchers on loopback, as two
machines would run them (`--nnodes 2`, one process each, a c10d rendezvous on a free port, gloo on CPU), train
base_train for a few steps with exactly the losses of one launcher running both processes (`--standalone`)."""
import os, socket, subprocess, sys
from conftest import ROOT
from test_base_train import make_base, FLAGS, losses

def free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def launcher(base, *torchrun_flags, tag):
    "One `torchrun ... -m nanochat.scripts.base_train` launcher (a Popen), as a user starts it on one machine."
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", *torchrun_flags, "-m", "nanochat.scripts.base_train",
           *FLAGS, "--buffer-docs", "1", "--dtype", "float32", "--model-tag", tag]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)

def finish(procs, timeout=120):
    outs = []
    try:
        for p in procs: outs.append(p.communicate(timeout=timeout))
    finally:
        for p in procs:
            if p.poll() is None: p.kill(); p.wait()
    for p, (out, err) in zip(procs, outs): assert p.returncode == 0, err[-3000:]
    return outs

def test_two_nodes_on_loopback_train_like_one_node_with_two_processes(tmp_path):
    base = make_base(tmp_path / "base")
    port = free_port()
    node = lambda: launcher(base, "--nnodes", "2", "--nproc_per_node", "1", "--rdzv-backend", "c10d",
                            "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "multinode-test", tag="two")
    # all at once (each run is tiny; starting torch is most of the time); c10d needs no node rank: the rendezvous numbers the nodes
    (one, _), *outs = finish([launcher(base, "--standalone", "--nproc_per_node", "2", tag="one"), node(), node()])
    # global rank 0 prints the progress lines; the rendezvous decides which launcher hosts it
    printed = [losses(out) for out, _ in outs]
    two = max(printed, key=len)
    a = losses(one)
    print("one launcher, 2 processes:", a, "\ntwo launchers, 1 process each:", two)
    assert len(a) == 8 and sorted(two) == sorted(a), (a, printed)
    assert two == a   # same world size, same ranks' data, same reductions: the same losses to the printed digit
    # both launchers wrote into one checkpoint (rank 0 the model, each rank its optimizer shard)
    from nanochat.checkpoint import list_steps, checkpoint_dir
    step = list_steps("base", "two", base_dir=base)[-1]
    shards = sorted(p.name for p in (checkpoint_dir("base", "two", base_dir=base) / f"step_{step:06d}").glob("rank_*.pt"))
    assert shards == ["rank_00.pt", "rank_01.pt"], shards
