"""dev/parity_optim.py against reference nanochat at 92d63d4: the optimizer step, the schedules and the recipe table.

The reference is not a dependency: this runs only where NANOCHAT_REFERENCE names a checkout of it
(`git -C <clone> worktree add /tmp/ref92 92d63d4`; see dev/parity_optim.py), and takes a few minutes."""
import os, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

REF = os.environ.get("NANOCHAT_REFERENCE")

@pytest.mark.skipif(not REF or not (Path(REF or ".") / "nanochat" / "optim.py").exists(),
                    reason="set NANOCHAT_REFERENCE to a checkout of karpathy/nanochat at 92d63d4")
def test_optimizer_schedules_and_recipe_equal_the_reference():
    p = subprocess.run([sys.executable, "parity_optim.py", "--reference", REF], capture_output=True, text=True,
                       cwd=Path(ROOT) / "dev", timeout=3600, env={**os.environ, "OMP_NUM_THREADS": "2"})
    print(p.stdout[-6000:])
    assert p.returncode == 0 and "ALL EQUAL" in p.stdout, p.stdout[-4000:] + p.stderr[-3000:]
