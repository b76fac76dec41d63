"""Our optimizer, schedules and depth-derived recipe against reference nanochat (github.com/karpathy/nanochat, commit 92d63d4).

A development tool: the reference is not a dependency. Get it with
    git clone https://github.com/karpathy/nanochat /tmp/nanochat && git -C /tmp/nanochat worktree add /tmp/ref92 92d63d4
then, from dev/:  python parity_optim.py --reference /tmp/ref92     (dev/parity_ref.py also calls `main(ref)`).

It prints three things:
(a) one optimizer step (and five, with the schedules moving) from identical parameters and gradients: the largest
    |ours - reference| per parameter group, Muon and every AdamW group (target <= 1e-5);
(b) the lr, Muon momentum and Muon weight decay schedules at every step of a 1,000-step run (target: equal);
(c) the recipe at d12/20/24/26 side by side: dims, heads, batch, iterations, every group's lr, betas and decay (target: equal).

How the reference's numbers are obtained. Its optimizer and model are imported from the checkout (fp32 on CPU; its
torch.compile'd step functions run eagerly, which is the same arithmetic without the
compiler: the undecorated functions, `__wrapped__` of the compiled ones, are put in their place in our imported copy
of its module). Its scripts/base_train.py is a script with top-level code, so it is not imported: its syntax tree is read
with `ast`, and only the pieces that hold the recipe are executed, unchanged, in a namespace of our making:
the argparse statements (whose defaults become `args`), the functions build_model_meta, get_scaling_params,
get_lr_multiplier, get_muon_momentum and get_weight_decay, the top-level statements from `num_scaling_params = ...`
through the weight-decay scaling, the `optimizer = model.setup_optimizer(...)` statement (on a meta-device model),
and the `if args.num_iterations > 0:` chain that fixes the number of steps. `print0` is silenced, nothing else is
replaced; nothing in the script that reads data, compiles or trains is run.
"""
import argparse, ast, contextlib, importlib, io, math, os, re, sys
from pathlib import Path
from types import SimpleNamespace
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # our package, from the repository root
from nanochat.gpt import GPT, config_from_depth   # noqa: E402
from nanochat.optim import GROUP_RULES, group_parameters   # noqa: E402  (also adds GPT.setup_optimizers)
from nanochat.scripts import base_train as ours_bt   # noqa: E402

# ----------------------------------------------------------------------------- loading the reference
def _import_reference(path):
    "The reference's nanochat.gpt and nanochat.optim, imported under their own names and then moved out of sys.modules."
    path = Path(path).resolve()
    if not (path / "nanochat" / "optim.py").exists() or not (path / "scripts" / "base_train.py").exists():
        raise SystemExit(f"{path} is not a checkout of reference nanochat (no nanochat/optim.py, scripts/base_train.py); "
                         "see this script's docstring for how to get it")
    ours = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "nanochat" or k.startswith("nanochat.")}
    sys.path.insert(0, str(path))
    try:
        gpt, optim = importlib.import_module("nanochat.gpt"), importlib.import_module("nanochat.optim")
    finally:
        sys.path.remove(str(path))
        for k in [k for k in sys.modules if k == "nanochat" or k.startswith("nanochat.")]: del sys.modules[k]
        sys.modules.update(ours)
    return SimpleNamespace(path=path, gpt=gpt, optim=optim)

def _eager(optim):
    "The reference's fused step functions without their torch.compile wrapper (no compiler needed on a CPU)."
    for name in ("adamw_step_fused", "muon_step_fused"):
        f = getattr(optim, name)
        setattr(optim, name, getattr(f, "__wrapped__", f))
    return optim

def _as_reference(ref):
    "Accept a path, or what dev/parity_ref.py's load_reference returns (anything with .gpt and .optim modules and a path)."
    if isinstance(ref, (str, Path)): return _import_reference(ref)
    path = next((getattr(ref, k) for k in ("path", "root", "reference") if getattr(ref, k, None) is not None), None)
    if getattr(ref, "gpt", None) is not None and getattr(ref, "optim", None) is not None and path is not None:
        return SimpleNamespace(path=Path(path), gpt=ref.gpt, optim=_eager(ref.optim))
    if path is not None: return _import_reference(path)
    raise TypeError(f"cannot read a reference checkout out of {ref!r}: pass its path")

@contextlib.contextmanager
def _quiet_eager():
    "The reference's print0 silenced."
    with contextlib.redirect_stdout(io.StringIO()): yield

def ours_name(ref_name):
    "Our parameter name for a reference one (its GPT keeps wte and the blocks under `transformer.`)."
    return ref_name.replace("transformer.wte.", "wte.").replace("transformer.h.", "blocks.")

def group_of(name):
    return next(k for k, pat in GROUP_RULES.items() if re.fullmatch(pat, name))

# ----------------------------------------------------------------------------- the reference's base_train, read not run
class RefScript:
    "The recipe pieces of the reference's scripts/base_train.py, taken from its syntax tree (see the module docstring)."
    FUNCS = {"build_model_meta", "get_scaling_params", "get_lr_multiplier", "get_muon_momentum", "get_weight_decay"}

    def __init__(self, ref):
        self.ref = ref
        body = ast.parse((ref.path / "scripts" / "base_train.py").read_text()).body
        def at(pred, what):
            for i, n in enumerate(body):
                if pred(n): return i
            raise SystemExit(f"the reference's base_train.py has no {what}: this script reads commit 92d63d4's layout")
        assigns = lambda name: lambda n: isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
        self.parser = body[at(assigns("parser"), "parser"):at(assigns("args"), "args = parser.parse_args()")]
        self.funcs = [n for n in body if isinstance(n, ast.FunctionDef) and n.name in self.FUNCS]
        if {f.name for f in self.funcs} != self.FUNCS: raise SystemExit(f"the reference's base_train.py lacks some of {self.FUNCS}")
        i0, i1 = at(assigns("num_scaling_params"), "num_scaling_params = ..."), at(assigns("weight_decay_scaled"), "weight_decay_scaled = ...")
        self.scaling = body[i0:i1 + 1]
        self.optimizer = [body[at(assigns("optimizer"), "optimizer = model.setup_optimizer(...)")]]
        i2 = at(lambda n: isinstance(n, ast.If) and "args.num_iterations > 0" in ast.unparse(n.test), "the num_iterations chain")
        self.horizon = body[i2:at(assigns("total_tokens"), "total_tokens = ...") + 1]

    def _run(self, nodes, ns):
        exec(compile(ast.Module(body=nodes, type_ignores=[]), str(self.ref.path / "scripts" / "base_train.py"), "exec"), ns)

    def namespace(self, vocab_size=32768, **flags):
        "A namespace holding `args` (the script's defaults, then `flags`) and the script's recipe functions."
        ns = dict(argparse=argparse, math=math, torch=torch, GPT=self.ref.gpt.GPT, GPTConfig=self.ref.gpt.GPTConfig,
                  print0=lambda *a, **k: None, vocab_size=vocab_size)
        self._run(self.parser, ns)
        ns["args"] = ns["parser"].parse_args([])
        for k, v in flags.items(): setattr(ns["args"], k, v)
        self._run(self.funcs, ns)
        return ns

    def recipe(self, depth, vocab_size=32768):
        "The script's recipe at `depth`: its namespace after the scaling, optimizer and horizon statements."
        ns = self.namespace(vocab_size, depth=depth)
        with _quiet_eager():
            ns["model"] = ns["build_model_meta"](depth)
            ns["num_flops_per_token"] = ns["model"].estimate_flops()
            self._run(self.scaling + self.optimizer + self.horizon, ns)
        return ns

# ----------------------------------------------------------------------------- (a) one optimizer step
def optimizer_step(ref, depth=2, vocab=256, seq=64, pattern="SL", steps=1, seed=0, dtype=torch.float32):
    """{group: (max |ours - reference|, its parameter, elements over 1e-5, of them explained by a cautious-decay mask flip)}
    after `steps` optimizer steps from identical parameters and gradients, on CPU in `dtype`."""
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try: return _optimizer_step(ref, depth, vocab, seq, pattern, steps, dtype, seed)
    finally: torch.set_default_dtype(default)

def _optimizer_step(ref, depth, vocab, seq, pattern, steps, dtype, seed):
    ours = GPT(config_from_depth(depth, vocab_size=vocab, sequence_len=seq, window_pattern=pattern))
    c = ours.config
    with _quiet_eager():
        theirs = ref.gpt.GPT(ref.gpt.GPTConfig(sequence_len=seq, vocab_size=vocab, n_layer=c.n_layer, n_head=c.n_head,
                                               n_kv_head=c.n_kv_head, n_embd=c.n_embd, window_pattern=pattern))
    mine = dict(ours.named_parameters())
    pairs = []   # (our name, our parameter, reference parameter)
    for rn, rp in theirs.named_parameters():
        n = ours_name(rn)
        if n not in mine: raise SystemExit(f"reference parameter {rn} has no counterpart {n} in our model")
        if mine[n].shape != rp.shape: raise SystemExit(f"{n}: ours {tuple(mine[n].shape)}, reference {tuple(rp.shape)}: the models differ")
        pairs.append((n, mine[n], rp))
    if len(pairs) != len(mine): raise SystemExit(f"our model has parameters the reference lacks: {set(mine) - {p[0] for p in pairs}}")
    with torch.no_grad():
        for n, p, rp in pairs: p.copy_(torch.randn_like(p) * 0.5); rp.copy_(p)
    lrs = dict(unembedding_lr=0.008 * 1.4142, embedding_lr=0.3 * 1.4142, matrix_lr=0.02 * 1.4142, scalar_lr=0.5 * 1.4142, weight_decay=0.2)
    opts = ours.setup_optimizers(lrs["unembedding_lr"], lrs["embedding_lr"], lrs["matrix_lr"], lrs["scalar_lr"], lrs["weight_decay"], dtype=dtype)
    with _quiet_eager(): ropt = theirs.setup_optimizer(**lrs)
    gen = torch.Generator().manual_seed(seed + 1)
    refs, flipped = {n: rp for n, _, rp in pairs}, {}
    n_it = 1000
    for step in range(steps):
        lrm = ours_bt.lr_multiplier(step, n_it, warmdown_ratio=0.65, final_lr_frac=0.05, warmup_steps=40)
        mom, wdm = ours_bt.pretrain_momentum(step, n_it, 0.65), ours_bt.weight_decay_multiplier(step, n_it)
        for n, p, rp in pairs:   # gradients of very different sizes, as in a real model
            g = torch.randn(p.shape, generator=gen) * 10 ** torch.empty(()).uniform_(-4, 0, generator=gen)
            p.grad, rp.grad = g.clone(), g.clone()
        for o in opts:
            for grp in o.param_groups: grp["lr"] = grp["initial_lr"] * lrm
        for grp in opts[1].param_groups: grp["momentum"], grp["weight_decay"] = mom, lrs["weight_decay"] * wdm
        for grp in ropt.param_groups:
            grp["lr"] = grp["initial_lr"] * lrm
            if grp["kind"] == "muon": grp["momentum"], grp["weight_decay"] = mom, lrs["weight_decay"] * wdm
        before = {n: p.detach().clone() for n, p, _ in pairs}
        gap = {n: p.detach() - rp.detach() for n, p, rp in pairs}
        for o in opts: o.step()
        with _quiet_eager(): ropt.step()
        # Where Muon's update of an element is at rounding level, the two implementations may disagree on the sign of
        # update x weight: one decays the element and the other does not, and they then differ by exactly lr·wd·|p|
        # (the cautious mask is a step function). Such flips are found step by step and counted; Muon's update does
        # not depend on the weights, so a flip stays in its element. Everything else must agree to 1e-5.
        for grp in opts[1].param_groups:
            for q in grp["params"]:
                n = next(k for k, x, _ in pairs if x is q)
                inc = (q.detach() - refs[n].detach()) - gap[n]
                lrwd = grp["lr"] * max(1, q.size(-2) / q.size(-1)) ** 0.5 * grp["weight_decay"]
                flipped[n] = flipped.get(n, torch.zeros_like(inc, dtype=torch.bool)) | (
                    (inc.abs() > 1e-7) & ((inc.abs() - lrwd * before[n].abs()).abs() <= 1e-3 * inc.abs()))
    worst = {}
    for n, p, rp in pairs:
        diff = (p.detach() - rp.detach()).abs()
        f = flipped.get(n, torch.zeros_like(diff, dtype=torch.bool))
        w = worst.setdefault(group_of(n), dict(max=0.0, name=n, rest=0.0, flips=0, over=0))
        if diff.max().item() >= w["max"]: w["max"], w["name"] = diff.max().item(), n
        w["rest"] = max(w["rest"], diff[~f].max().item() if (~f).any() else 0.0)
        w["flips"] += int(f.sum()); w["over"] += int((diff > 1e-5).sum())
    return worst

# ----------------------------------------------------------------------------- (b) schedules
def schedules(script, n=1000):
    "Max |ours - reference| of lr multiplier, Muon momentum and Muon weight decay over steps 0..n of an n-step run."
    ns = script.namespace()
    ns["num_iterations"], ns["weight_decay_scaled"] = n, ns["args"].weight_decay
    a, o = ns["args"], ours_bt.parse_args([])
    flags = {k: (getattr(o, k), getattr(a, k)) for k in ("warmup_steps", "warmdown_ratio", "final_lr_frac", "weight_decay")}
    theirs = [(ns["get_lr_multiplier"](s), ns["get_muon_momentum"](s), ns["get_weight_decay"](s)) for s in range(n + 1)]
    mine = [(ours_bt.lr_multiplier(s, n, warmdown_ratio=o.warmdown_ratio, final_lr_frac=o.final_lr_frac, warmup_steps=o.warmup_steps),
             ours_bt.pretrain_momentum(s, n, o.warmdown_ratio), o.weight_decay * ours_bt.weight_decay_multiplier(s, n)) for s in range(n + 1)]
    diffs = [max(abs(m[i] - t[i]) for m, t in zip(mine, theirs)) for i in range(3)]
    worst_step = [max(range(n + 1), key=lambda s: abs(mine[s][i] - theirs[s][i])) for i in range(3)]
    return flags, diffs, worst_step, mine, theirs

# ----------------------------------------------------------------------------- (c) the recipe table
def recipe_rows(script, depth, vocab=32768):
    "[(quantity, ours, reference)] at `depth` with both scripts' default flags."
    ns = script.recipe(depth, vocab)
    a = ours_bt.parse_args([])
    r = ours_bt.derive_recipe(depth, a.max_seq_len, vocab, a.device_batch_size, a.total_batch_size, 1, a.target_param_data_ratio,
                              a.num_iterations, a.weight_decay)
    with torch.device("meta"): m = GPT(r["config"])
    s = r["lr_scale"]
    opts = m.setup_optimizers(a.unembedding_lr * s, a.embedding_lr * s, a.matrix_lr * s, a.scalar_lr * s, r["weight_decay"], dtype=torch.float32)
    c, rc = r["config"], ns["model"].config
    rows = [("n_layer", c.n_layer, rc.n_layer), ("n_embd", c.n_embd, rc.n_embd), ("n_head", c.n_head, rc.n_head),
            ("n_kv_head", c.n_kv_head, rc.n_kv_head), ("window_pattern", c.window_pattern, rc.window_pattern),
            ("sequence_len", c.sequence_len, rc.sequence_len), ("scaling params", r["scaling_params"], ns["num_scaling_params"]),
            ("total batch", r["total_batch_size"], ns["total_batch_size"]), ("iterations", r["num_iterations"], ns["num_iterations"]),
            ("tokens", r["total_tokens"], ns["total_tokens"]), ("lr scale", s, ns["batch_lr_scale"]),
            ("muon wd (scaled)", r["weight_decay"], ns["weight_decay_scaled"])]
    # Muon groups hold one shape each; they are labelled by the roles of their matrices (the shapes change with depth)
    roles = lambda names: "matrix " + "+".join(sorted({re.sub(r"^blocks\.\d+\.", "", n).removesuffix(".weight") for n in names}))
    ref_names = {id(p): ours_name(n) for n, p in ns["model"].named_parameters()}
    our_names = {id(p): n for n, p in m.named_parameters()}
    ref_groups = {(group_of(ref_names[id(g["params"][0])]) if g["kind"] == "adamw" else roles(ref_names[id(p)] for p in g["params"])): g
                  for g in ns["optimizer"].param_groups}
    our_groups = {g["name"]: g for g in opts[0].param_groups} | {roles(our_names[id(p)] for p in g["params"]): g for g in opts[1].param_groups}
    for key in sorted(set(our_groups) | set(ref_groups)):
        og, rg = our_groups.get(key, {}), ref_groups.get(key, {})
        rows.append((f"{key} lr", og.get("lr"), rg.get("lr")))
        if not key.startswith("matrix"):
            rows += [(f"{key} betas", og.get("betas"), rg.get("betas")), (f"{key} wd", og.get("weight_decay"), rg.get("weight_decay")),
                     (f"{key} eps", og.get("eps"), rg.get("eps"))]
        else:
            rows += [(f"{key} shape", tuple(og["params"][0].shape) if og else None, tuple(rg["params"][0].shape) if rg else None),
                     (f"{key} count", len(og.get("params", [])), len(rg.get("params", []))), (f"{key} beta2", og.get("beta2"), rg.get("beta2"))]
    return rows

def _same(x, y):
    if isinstance(x, float) or isinstance(y, float):
        return x is not None and y is not None and abs(x - y) <= 1e-12 * max(1.0, abs(y))
    return x == y

# ----------------------------------------------------------------------------- main
def main(ref, parts="abc"):
    ref = _as_reference(ref)
    print(f"reference: {ref.path}")
    ok = True
    if "a" in parts: ok &= part_a(ref)
    if "b" in parts: ok &= part_b(ref)
    if "c" in parts: ok &= part_c(ref)
    print(f"\n{'ALL EQUAL' if ok else 'DIFFERENCES FOUND'}")
    return ok

def part_a(ref):
    ok = True
    print("\n(a) optimizer steps from identical parameters and gradients, CPU: max |ours - reference| per group (target <= 1e-5)")
    for depth, seq, pattern, steps, dtype in ((2, 64, "SL", 1, torch.float32), (2, 64, "SL", 5, torch.float32),
                                              (4, 256, "SSSL", 1, torch.float32), (4, 256, "SSSL", 5, torch.float32), (2, 64, "SL", 5, torch.float64)):
        w = optimizer_step(ref, depth, seq=seq, pattern=pattern, steps=steps, dtype=dtype)
        rest, flips = max(v["rest"] for v in w.values()), sum(v["flips"] for v in w.values())
        ok &= rest <= 1e-5
        print(f"  d{depth} {pattern:4s} {str(dtype).removeprefix('torch.')} {steps} step(s): "
              + "  ".join(f"{g} {v['max']:.1e}" for g, v in sorted(w.items())) + f"   -> {'OK' if rest <= 1e-5 else 'DIFFERS'}"
              + (f"\n      {flips} Muon element(s) where the cautious decay's mask flipped (update at rounding level; the difference"
                 f" is lr*wd*|p| to 0.1%); every other element: max {rest:.1e}" if flips else ""))
    return ok

def part_b(ref):
    ok = True
    print("\n(b) schedules over a 1,000-step run, each script's default flags")
    flags, diffs, worst_step, mine, theirs = schedules(RefScript(ref))
    print("  flags (ours, reference): " + ", ".join(f"{k} {v[0]} / {v[1]}" for k, v in flags.items()))
    for name, d, s in zip(("lr multiplier", "Muon momentum", "Muon weight decay"), diffs, worst_step):
        ok &= d <= 1e-12
        print(f"  {name:18s} max |diff| over steps 0..1000: {d:.1e} (at step {s}: ours {mine[s][('lr multiplier', 'Muon momentum', 'Muon weight decay').index(name)]:.6f})"
              f" {'equal' if d <= 1e-12 else 'DIFFERS'}")
    print("  at steps 0, 39, 40, 349, 350, 400, 999, 1000 (lr, momentum, wd), ours = reference:")
    for s in (0, 39, 40, 349, 350, 400, 999, 1000):
        print(f"    {s:5d}: " + ", ".join(f"{x:.5f}" for x in mine[s]) + ("" if all(_same(x, y) for x, y in zip(mine[s], theirs[s])) else "   (reference " + ", ".join(f"{x:.5f}" for x in theirs[s]) + ")"))
    return ok

def part_c(ref):
    ok = True
    print("\n(c) the recipe at d12/20/24/26, each script's default flags, vocab 32768 (equal unless marked)")
    script = RefScript(ref)
    tables = {d: recipe_rows(script, d) for d in (12, 20, 24, 26)}
    keys = [k for k, _, _ in tables[12]]
    fmt = lambda v: "-" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
    print(f"  {'quantity':48s}" + "".join(f"{'d' + str(d):>20s}" for d in tables))
    for i, k in enumerate(keys):
        cells = []
        for d, rows in tables.items():
            _, o, r = rows[i]
            same = _same(o, r)
            ok &= same
            cells.append(fmt(o) if same else f"{fmt(o)} != {fmt(r)}")
        print(f"  {k:48s}" + "".join(f"{c:>20s}" for c in cells))
    return ok

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference", required=True, help="a checkout of karpathy/nanochat at 92d63d4 (see the docstring)")
    p.add_argument("--parts", default="abc", help="which of (a) optimizer step, (b) schedules, (c) recipe table to run")
    a = p.parse_args()
    try:
        from parity_ref import load_reference   # dev/parity_ref.py's loader, when it is there
        ref = load_reference(a.reference)
    except ImportError:
        ref = a.reference
    sys.exit(0 if main(ref, a.parts) else 1)
