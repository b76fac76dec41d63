import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture(autouse=True)
def _isolated_base_dir(tmp_path, monkeypatch):
    "Every test writes its artifacts into its own temporary base directory, never ~/.cache/nanochat."
    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(tmp_path / "base"))

@pytest.fixture(autouse=True)
def _same_random_start():
    "Every test starts torch's global RNG from seed 0, whichever tests ran before it, and leaves the RNG as it found it."
    import torch
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield

def torchrun(script, nproc: int, *args, env=None, timeout=300):
    "Run `script` (a file, or a module name such as `nanochat.scripts.base_train`) under real torchrun with `nproc` CPU processes."
    target = [str(script)] if isinstance(script, Path) else ["-m", script]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *target, *map(str, args)]
    e = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=ROOT)
