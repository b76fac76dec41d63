"""Run notebooks top to bottom as nbdev-test does (skipping `#| eval: false` and the `slow`/`cuda` flagged cells unless
asked) and save their outputs into them: how the committed outputs (figures, tables, samples) are made.

    python dev/run_nb.py nbs/13_chat_rl.ipynb [more.ipynb ...] [--flags slow]

`jupyter nbconvert --execute` would also run the `if __name__ == "__main__": main()` cells of the script notebooks, which
nbdev marks `#| eval: false`. It runs `nbdev-clean` on the notebooks it was given."""
import argparse, subprocess, sys
from pathlib import Path
from nbdev.test import test_nb

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("notebooks", nargs="+")
p.add_argument("--flags", nargs="*", default=[], help="test flags to run too (slow, cuda)")
a = p.parse_args()
failed = []
for nb in a.notebooks:
    ok, secs = test_nb(str(Path(nb).resolve()), skip_flags=[f for f in ("slow", "cuda") if f not in a.flags], save=True, do_print=True)
    print(f"{nb}: {'saved' if ok else 'FAILED (not saved)'} in {secs:.0f} s")
    if not ok: failed.append(nb)
for nb in a.notebooks: subprocess.run(["nbdev-clean", "--fname", nb], check=True)   # only these: others may be editing theirs
sys.exit(1 if failed else 0)
