"""Shared by the benchmarks: run on the allocator speedrun.sh's stages run on (tcmalloc, through dev/malloc.sh)."""
import os, subprocess, sys
from nanochat.common import malloc_name

def rerun_on_tcmalloc():
    "Run this script again under dev/malloc.sh (LD_PRELOAD must be set before Python starts), unless NANOCHAT_MALLOC=system."
    if malloc_name() != "glibc" or os.environ.get("NANOCHAT_MALLOC") == "system" or os.environ.get("_BENCH_RERUN"): return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = f'source "{root}/dev/malloc.sh" && exec "$0" "$@"'
    sys.exit(subprocess.call(["bash", "-c", cmd, sys.executable, *sys.argv], env={**os.environ, "_BENCH_RERUN": "1"}))
