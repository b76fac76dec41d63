"""nbdev-test runs several notebooks in one worker process, so a notebook must leave the process as it found it
(environment, working directory, torch threads) and reach its files through the base directory it is given,
never ~/.cache/nanochat behind the user's back."""
import json, os, re, subprocess, sys
from pathlib import Path
from nanochat.dataset import data_dir

ROOT = Path(__file__).resolve().parent.parent
CORPUS = data_dir()   # read at import, before the tests' temporary base dirs: the corpus dev/setup.sh built

# The child process runs notebooks one after another with nbdev's own `test_nb`, as an nbdev-test worker does,
# and reports what each one changed. An audit hook records every file or folder opened under the default
# base dir: with NANOCHAT_BASE_DIR elsewhere, nothing may look there.
RUNNER = r'''
import json, os, sys, torch
from pathlib import Path
from nbdev.test import test_nb
default = str(Path.home()/".cache"/"nanochat")
seen = []
def watch(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.fsdecode(args[0]).startswith(default): seen.append(os.fsdecode(args[0]))
sys.addaudithook(watch)
state = lambda: dict(env=dict(os.environ), cwd=os.getcwd(), threads=torch.get_num_threads())
out = []
for nb in sys.argv[1:]:
    before = state(); del seen[:]
    ok, _ = test_nb(nb, skip_flags=["slow", "cuda"], basepath=str(Path.cwd().parent))
    after = state()
    env = sorted(k for k in before["env"].keys() | after["env"].keys() if before["env"].get(k) != after["env"].get(k)
                 and k != "TORCHINDUCTOR_CACHE_DIR")   # torch itself pins its default cache dir there on first use
    diff = lambda k: [] if before[k] == after[k] else [before[k], after[k]]
    out.append(dict(nb=Path(nb).name, ok=ok, env=env, cwd=diff("cwd"), threads=diff("threads"), default_dir=seen[:5]))
print("RESULT " + json.dumps(out))
'''

def run_in_one_process(nbs, base: Path):
    base.mkdir(parents=True, exist_ok=True)
    (base/"base_data").symlink_to(CORPUS, target_is_directory=True)   # the corpus, seen only through this base dir
    env = {k: v for k, v in os.environ.items() if k != "NANOCHAT_DATA_DIR"}
    env.update(NANOCHAT_BASE_DIR=str(base), OMP_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-c", RUNNER, *[str(ROOT/"nbs"/n) for n in nbs]], cwd=ROOT/"nbs", env=env,
                       capture_output=True, text=True, timeout=1200)
    line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
    assert line, f"the runner crashed (exit {r.returncode}):\n{r.stderr[-3000:]}"
    return json.loads(line[-1][len("RESULT "):]), r.stderr

def test_notebooks_leave_no_state_behind(tmp_path):
    "00_common once deleted NANOCHAT_BASE_DIR, so 08a_base_loss looked for the corpus in ~/.cache/nanochat; 08a and 02a rewrote it in turn."
    assert (CORPUS/"manifest.json").exists(), f"no corpus in {CORPUS}: run `python -m nanochat.dataset build`"
    nbs = ["00_common.ipynb", "08a_base_loss.ipynb", "02a_tok_train.ipynb"]
    results, err = run_in_one_process(nbs, tmp_path/"base")
    for r in results:
        assert r["ok"], f"{r['nb']} failed under a moved base dir:\n{err[-3000:]}"
        assert (r["env"], r["cwd"], r["threads"]) == ([], [], []), f"{r['nb']} left state behind: {r}"
        assert r["default_dir"] == [], f"{r['nb']} looked in ~/.cache/nanochat although NANOCHAT_BASE_DIR is elsewhere: {r}"
    assert [r["nb"] for r in results] == nbs

# The run above covers three notebooks; this cheap check covers all of them, for the ways state used to leak.
WRITES = re.compile(r"os\.environ\[[^]]+\]\s*=|os\.environ\.(pop|update|setdefault|clear)\(|del os\.environ|os\.putenv|os\.chdir\(")

def test_no_notebook_writes_the_environment_or_keeps_a_thread_count():
    bad = []
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        cells = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        # a line marked "(child-only state)" runs in a child process (the sandbox's), never in the notebook's own
        bad += [f"{nb.name}: {m.group(0)}" for c in cells for line in c.splitlines() if "(child-only state)" not in line
                for m in WRITES.finditer(line)]
        sets = [c for c in cells if re.search(r"torch\.set_num_threads\((?!_threads\))", c)]
        if sets and not (all("_threads = torch.get_num_threads()" in c for c in sets)
                         and any("torch.set_num_threads(_threads)" in c for c in cells)):
            bad.append(f"{nb.name}: sets torch's thread count without saving it in `_threads` and restoring it in a last cell")
    assert not bad, "notebooks that change process state (pass base_dir=/--base-dir instead; restore thread counts):\n" + "\n".join(bad)
