"""The CPU time (user + system) that `nbdev-test` spends running each notebook, less nbdev's own start-up: the last
column of the home page's lesson table (nbs/index.ipynb).

    python dev/lesson_times.py                                  # every notebook of the table, in its order
    python dev/lesson_times.py nbs/04_model.ipynb nbs/05_optimizer.ipynb

Each notebook runs alone (`nbdev-test NB`; CI runs them all in one `nbdev-test`) (the `slow` and `cuda` cells skipped). Its CPU time is
what that process and its children used (`getrusage`); nbdev's start-up is the same measured on an empty notebook and
taken off. Wall time is printed beside it: on an idle machine it lies between CPU time / cores and CPU time. The first
line names the CPU, since the figures hold only for it."""
import argparse, json, platform, re, resource, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def cpu_name() -> str:
    "The CPU's model name and core count, from /proc/cpuinfo where there is one."
    try: info = Path("/proc/cpuinfo").read_text()
    except OSError: return platform.processor() or "unknown CPU"
    name = re.search(r"model name\s*:\s*(.*)", info)
    flags = re.search(r"flags\s*:\s*(.*)", info)
    isa = [f for f in ("avx512_bf16", "amx_bf16") if flags and f in flags.group(1).split()]
    fam, model = (re.search(rf"^{k}\s*:\s*(\d+)", info, flags=re.M) for k in ("cpu family", "model"))
    ident = f" (family {fam.group(1)}, model {model.group(1)})" if fam and model else ""
    return f"{name.group(1).strip() if name else 'unknown CPU'}{ident}, {info.count('processor')} cores" + (f" ({', '.join(isa)})" if isa else " (AVX2 only)" if flags and "avx2" in flags.group(1) else "")

def run_timed(nb: Path) -> tuple[float, float, bool]:
    "(CPU seconds, wall seconds, passed) of `nbdev-test nb`."
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    ok = subprocess.run(["nbdev-test", str(nb)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall, ok

def table_notebooks() -> list[Path]:
    "The notebooks the home page's lesson table links, in its order."
    src = "".join("".join(c["source"]) for c in json.loads((ROOT / "nbs/index.ipynb").read_text())["cells"])
    names = re.findall(r"^\| \[[^\]]+\]\(([^)/]+\.ipynb)\)", src, flags=re.M)   # links relative to nbs/
    return [ROOT / "nbs" / n for n in dict.fromkeys(names)]

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook of the lesson table")
    a = ap.parse_args(argv)
    nbs = [p.resolve() for p in a.notebooks] or table_notebooks()
    if not nbs: sys.exit("no notebooks found: pass their paths, or run from a checkout with nbs/index.ipynb")
    with tempfile.TemporaryDirectory() as d:   # nbdev's start-up: the same command on a notebook with nothing in it
        empty = Path(d) / "empty.ipynb"
        empty.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        runs = [run_timed(empty) for _ in range(2)]
        if not all(ok for *_, ok in runs): sys.exit("nbdev-test failed on an empty notebook: is the environment active (source .venv/bin/activate)?")
        base = min(cpu for cpu, *_ in runs)
    print(f"{cpu_name()}; nbdev-test's own start-up {base:.1f} s CPU, taken off each notebook below")
    print(f"{'notebook':<28} {'CPU s':>6} {'wall s':>7}")
    total = 0.0
    for nb in nbs:
        cpu, wall, ok = run_timed(nb)
        total += max(cpu - base, 0)
        print(f"{nb.name:<28} {max(cpu - base, 0):6.0f} {wall:7.0f}" + ("" if ok else "  FAILED"), flush=True)
    print(f"{'total':<28} {total:6.0f}")

if __name__ == "__main__": main()
