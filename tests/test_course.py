"""The notebooks read as lessons (issue 22, CONVENTIONS.md "A lesson"): each opens with what you will learn, shows at
least one figure, ends with a summary and exercises, and every exercise's check is run by a hidden solution cell in
both directions (it passes on the solution and fails on the untouched starter). nbdev-test runs those cells; this file
checks that the shape is there, so a lesson cannot lose its exercises or its solutions without a red test."""
import json, re
from pathlib import Path
import pytest

NBS = Path(__file__).resolve().parent.parent / "nbs"
# The lessons rewritten as lessons so far, and the core ones that owe at least three exercises. A notebook joins
# LESSONS when its rewrite lands; it may never leave.
LESSONS = ["04_model", "05_optimizer", "06_checkpoint", "10_tasks", "11a_chat_sft", "16_fp8", "16a_flash", "17_export", "17a_own_data", "17b_hf_model", "01_dataset", "02_tokenizer", "03_dataloader", "07a_loss_eval", "07b_core_eval", "08a_base_loss", "08b_base_eval", "09a_execution", "09b_engine", "12_chat_eval", "13_chat_rl", "14_chat_web", "14a_chat_cli", "14b_widget", "15_report", "05a_distributed", "04a_fast",
           "08_base_train", "11_mid_train", "00_common", "02a_tok_train", "02b_tok_eval"]
CORE = {"02_tokenizer", "03_dataloader", "04_model", "05_optimizer", "07a_loss_eval", "07b_core_eval", "08_base_train",
        "09b_engine", "10_tasks", "11_mid_train", "11a_chat_sft", "13_chat_rl", "14_chat_web"}

def cells(name):
    return json.loads((NBS / f"{name}.ipynb").read_text())["cells"]

def src(c): return "".join(c["source"])

def hidden(c): return c["cell_type"] == "code" and re.match(r"\s*#\|\s*hide\b", src(c)) is not None

def figures(cs):
    return sum("image/png" in o.get("data", {}) for c in cs if c["cell_type"] == "code" for o in c.get("outputs", []))

def headings(cs):
    return [l.strip() for c in cs if c["cell_type"] == "markdown" for l in src(c).splitlines() if l.startswith("## ")]

@pytest.mark.parametrize("name", LESSONS)
def test_lesson_shape(name):
    cs = cells(name)
    assert src(cs[0]).startswith("# "), "the first cell is the title"
    intro = "\n".join([src(c) for c in cs if c["cell_type"] == "markdown"][:3])   # the title cell and the two after it
    assert re.search(r"you will learn", intro, re.I), f"{name}: the text under the title says what you will learn"
    assert re.search(r"you need", intro, re.I), f"{name}: ... and what you need"
    hs = headings(cs)
    assert "## Summary" in hs and "## Exercises" in hs, f"{name}: needs '## Summary' and '## Exercises' (has {hs[-4:]})"
    assert figures(cs) >= 1, f"{name}: a lesson shows at least one figure (a committed PNG output)"

@pytest.mark.parametrize("name", LESSONS)
def test_exercises_are_checked_both_ways(name):
    cs = cells(name)
    asked = {m for c in cs if c["cell_type"] == "code" and not hidden(c)
             for m in re.findall(r"^exercise\((check_\w+)", src(c), re.M)}
    assert len(asked) >= (3 if name in CORE else 1), f"{name}: exercises {sorted(asked)}"
    solved = "\n".join(src(c) for c in cs if hidden(c))
    for chk in asked:   # `assert exercise(check, solution)` / `assert not exercise(check, starter)`, or one test_eq over a list of both
        runs = [l for l in solved.splitlines() if re.search(rf"exercise\({chk}\b", l)]
        both = any(re.match(r"\s*assert not exercise", l) for l in runs) or any("False" in l for l in runs)
        assert runs and both, f"{name}: no hidden cell runs {chk} on a solution (must pass) and on the untouched starter (must fail)"
    starters = [o for c in cs if c["cell_type"] == "code" and not hidden(c) and re.search(r"^exercise\(check_", src(c), re.M)
                for o in c.get("outputs", []) for t in [''.join(o.get("text", ""))] if "✗" in t or "✓" in t]
    assert starters and all("✗" in "".join(o["text"]) for o in starters), \
        f"{name}: the committed outputs of the exercise cells show the untouched starters failing (✗)"

def test_course_totals():
    "Figures across the course: printed for the record, and never fewer than issue 22's 60 (76 on 2026-12-07)."
    names = sorted(p.stem for p in NBS.glob("[!_.]*.ipynb"))
    per = {n: figures(cells(n)) for n in names}
    print(f"\n{sum(per.values())} figures in {len(names)} notebooks:", {n: k for n, k in per.items() if k})
    assert sum(per.values()) >= 60, f"the course lost figures: {sum(per.values())}"
    assert all(per[n] >= 1 for n in LESSONS), f"a lesson without a figure: {[n for n in LESSONS if not per[n]]}"

def test_doc_build_runs_no_lesson_code():
    """nbdev's doc build executes every cell that imports something (and the exported ones) to render `show_doc`; a cell
    that imports *and* trains, times or plots would run again in the docs build, slowly or failing there. So a visible
    cell with an import holds only imports, functions and classes: the lesson code goes in the next cell."""
    import ast
    from nbdev.processors import _do_eval
    from nbdev.process import NBProcessor
    bad = []
    for p in sorted(NBS.glob("[!_.]*.ipynb")):
        for c in NBProcessor(p).nb.cells:   # cells as nbdev parses them (directives_, parsed_)
            if c.cell_type != "code" or not _do_eval(c): continue   # hidden cells too: the build runs them before hiding
            if set(c.directives_) & {"export", "exports", "exporti", "exec_doc"}: continue   # nbdev runs those by design
            body = ast.parse("\n".join(l for l in c.source.splitlines() if not l.lstrip().startswith(("%", "!")))).body
            ok = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            quiet = lambda n: isinstance(n, ast.With) and all(isinstance(m, ok) for m in n.body)   # an import under a context manager
            if any(not (isinstance(n, ok) or quiet(n)) for n in body):
                bad.append(f"{p.stem} cell {c.idx_}: {c.source[:80]!r}")
    assert not bad, "cells the doc build would run (imports beside lesson code; move the imports to a cell of their own):\n" + "\n".join(bad)
