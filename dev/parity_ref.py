"""Parity of our model against reference nanochat (karpathy/nanochat at commit 92d63d4), on CPU in fp32.

    python dev/parity_ref.py --reference /tmp/ref92d63d4

The reference is a development tool here, never a dependency. Get a checkout of it at 92d63d4 one of these ways:

    git clone https://github.com/karpathy/nanochat /tmp/ref92d63d4 && git -C /tmp/ref92d63d4 checkout 92d63d4
    git -C /work/.mirror/karpathy+nanochat/repo worktree add /tmp/ref92d63d4 92d63d4     # from a local mirror
    mkdir /tmp/ref92d63d4 && git -C MIRROR archive 92d63d4 | tar -x -C /tmp/ref92d63d4  # same, leaves MIRROR untouched

What it prints: for each small config (depth 2 and 4, sequence 64 and 256, window patterns L, SL, SSSL), the largest
logit difference, the loss difference and every parameter's gradient relative difference with the same weights copied
into both models; then the initialisation's per-tensor statistics side by side. If dev/parity_optim.py exists (the
optimizer's parity), its `main(ref)` runs after, so one command prints everything.

Both packages are called `nanochat`: `load_reference(path)` imports the reference's modules under the name
`nanochat_ref` (see its docstring), so both live in one process.
"""
import argparse, importlib, os, sys
from types import SimpleNamespace


def _swap_out(prefix: str) -> dict:
    "Remove the modules `prefix` and `prefix.*` from sys.modules; return them."
    return {k: sys.modules.pop(k) for k in list(sys.modules) if k == prefix or k.startswith(prefix + ".")}


def load_reference(path: str, modules=("common", "flash_attention", "gpt", "optim"), name: str = "nanochat_ref",
                   dtype: str = "float32"):
    """Import the reference checkout at `path` as the package `name` (default `nanochat_ref`); return a namespace with
    one attribute per module in `modules` (`ref.gpt`, `ref.optim`, ...), plus `ref.path` and `ref.import_module(mod)`
    for more (e.g. `ref.import_module("nanochat.engine")` or a `scripts.X` module, imported the same way).

    How: the reference's own code says `from nanochat.common import ...`. While it imports, our `nanochat` modules are
    taken out of sys.modules and the checkout is put first on sys.path; afterwards its modules are renamed to
    `name.*` and ours are put back. Names the reference bound at import time keep pointing at its own modules. The
    reference's compute dtype (read at import from NANOCHAT_DTYPE) is `dtype`, fp32 by default for parity."""
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "nanochat", "gpt.py")):
        raise FileNotFoundError(f"{path} is not a nanochat checkout (no nanochat/gpt.py); see `python dev/parity_ref.py -h` "
                                "for how to get the reference at 92d63d4")

    def renamed(k: str, src: str, dst: str) -> str: return dst + k[len(src):]

    def import_module(mod: str):
        top = mod.split(".")[0]
        ours = _swap_out("nanochat")
        others = _swap_out(top) if top != "nanochat" else {}   # e.g. an unrelated `scripts` package of ours
        # the reference's modules imported so far go back under their own names, so its imports find them
        sys.modules.update({renamed(k, name, "nanochat"): v for k, v in list(sys.modules.items())
                            if k == name or k.startswith(name + ".")})
        sys.path.insert(0, path)
        env = os.environ.get("NANOCHAT_DTYPE")
        os.environ["NANOCHAT_DTYPE"] = dtype   # the reference reads its compute dtype from here at import
        try:
            m = importlib.import_module(mod)
        finally:
            sys.path.remove(path)
            if env is None: os.environ.pop("NANOCHAT_DTYPE")
            else: os.environ["NANOCHAT_DTYPE"] = env
            loaded = _swap_out("nanochat")
            if top != "nanochat": loaded.update({f"nanochat.{k}": v for k, v in _swap_out(top).items()})
            sys.modules.update({renamed(k, "nanochat", name): v for k, v in loaded.items()})  # nanochat.gpt -> nanochat_ref.gpt
            sys.modules.update(ours); sys.modules.update(others)
        return m

    ref = SimpleNamespace(path=path, import_module=import_module)
    for m in modules: setattr(ref, m, import_module(f"nanochat.{m}"))
    return ref


if __name__ == "__main__" and "--loader-only" in sys.argv:   # smoke test of the loader alone
    r = load_reference(sys.argv[sys.argv.index("--reference") + 1])
    import nanochat.gpt
    print(r.gpt.__name__, r.gpt.__file__, "| ours:", nanochat.gpt.__file__)
