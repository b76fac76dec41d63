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



# ---------------------------------------------------------------------------------------------------------------------
# the model's parity

def ref_name(ours: str) -> str:
    "The reference's name of one of our parameters (its blocks live in transformer.h, its embedding in transformer.wte)."
    if ours.startswith("blocks."): return "transformer.h." + ours[len("blocks."):]
    if ours.startswith("wte."): return "transformer." + ours
    return ours


def build_pair(ref, depth: int, seq: int, pattern: str, vocab: int = 512, n_kv_head: int | None = None, seed: int = 0):
    "Our GPT and the reference's at the same shape, both initialised from `seed`."
    import torch
    from nanochat.gpt import GPT, config_from_depth
    cfg = config_from_depth(depth, vocab_size=vocab, sequence_len=seq, window_pattern=pattern,
                            **({"n_kv_head": n_kv_head} if n_kv_head else {}))
    rcfg = ref.gpt.GPTConfig(sequence_len=seq, vocab_size=vocab, n_layer=cfg.n_layer, n_head=cfg.n_head,
                             n_kv_head=cfg.n_kv_head, n_embd=cfg.n_embd, window_pattern=pattern)
    ours, theirs = GPT(cfg), ref.gpt.GPT(rcfg)
    torch.manual_seed(seed); ours.init_weights()
    torch.manual_seed(seed); theirs.init_weights()
    return ours, theirs


def compare_init(ours, theirs) -> list[tuple]:
    "Per tensor: (name, our std, its std, our min, its min, our max, its max, max |ours - theirs|)."
    rp = dict(theirs.named_parameters())
    rows = []
    for n, p in ours.named_parameters():
        r = rp[ref_name(n)].detach().float()
        p = p.detach()
        rows.append((n, p.std().item() if p.numel() > 1 else p.item(), r.std().item() if r.numel() > 1 else r.item(),
                     p.min().item(), r.min().item(), p.max().item(), r.max().item(), (p - r).abs().max().item()))
    return rows


def random_pair(ref, depth, seq, pattern, vocab=512, n_kv_head=None, seed=0):
    "build_pair, then every tensor of ours perturbed (so every feature is live) and copied into the reference's; and the generator."
    import torch
    ours, theirs = build_pair(ref, depth, seq, pattern, vocab, n_kv_head, seed)
    g = torch.Generator().manual_seed(seed + 1)
    rp = dict(theirs.named_parameters())
    with torch.no_grad():
        for n, p in ours.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
            rp[ref_name(n)].copy_(p)
    return ours, theirs, g


def compare_model(ref, depth: int, seq: int, pattern: str, batch: int = 2, vocab: int = 512, n_kv_head=None, seed: int = 0):
    """Random weights (init, then every tensor perturbed so that every feature is live) copied from ours into the
    reference. Returns a dict: `logits` max |ours - ref|, `max_logit` |ref|, `loss` |ours - ref|, and per parameter
    gradient relative differences ||g_ours - g_ref|| / ||g_ref||: `rel` (our loss: the fused `softcap_loss`), `rel_ce`
    (the reference's formula, F.cross_entropy, on our logits: the model alone) and `noise` (the reference against
    itself with the batch's rows swapped, and accumulated row by row, the larger: the same sums in other orders, i.e.
    fp32's rounding at this size; a gradient that is exactly 0 in one order and not in another is all rounding)."""
    import torch
    import torch.nn.functional as F
    ours, theirs, g = random_pair(ref, depth, seq, pattern, vocab, n_kv_head, seed)
    rp = dict(theirs.named_parameters())
    idx = torch.randint(0, vocab, (batch, seq + 1), generator=g)
    x, y = idx[:, :-1], idx[:, 1:].clone()
    y[0, :5] = -1   # a few ignored targets, as SFT has

    def grads(model, loss):
        model.zero_grad(set_to_none=True); loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}
    with torch.no_grad(): lo, lr = ours(x), theirs(x)
    loss_o, loss_r = ours(x, y), theirs(x, y)
    g_o, g_r = grads(ours, loss_o), grads(theirs, loss_r)
    g_ce = grads(ours, F.cross_entropy(ours(x).flatten(0, 1), y.flatten(), ignore_index=-1))
    g_swap = grads(theirs, theirs(x.flip(0), y.flip(0)))
    # the same gradient accumulated row by row: the sums over rows run in another order again
    n_tok = (y >= 0).sum()
    theirs.zero_grad(set_to_none=True)
    for i in range(batch): (theirs(x[i:i + 1], y[i:i + 1], loss_reduction="sum") / n_tok).backward()
    g_half = {n: p.grad.clone() for n, p in theirs.named_parameters()}

    def rel(a, b): return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()
    out = dict(logits=(lo - lr).abs().max().item(), max_logit=lr.abs().max().item(), loss=abs(loss_o.item() - loss_r.item()))
    for key, gg in (("rel", g_o), ("rel_ce", g_ce)): out[key] = {n: rel(gg[n], g_r[ref_name(n)]) for n in g_o}
    out["noise"] = {n: max(rel(gg[ref_name(n)], g_r[ref_name(n)]) for gg in (g_swap, g_half)) for n in g_o}
    return out


def model_parity(ref, depths=(2, 4), seqs=(64, 256), patterns=("L", "SL", "SSSL"), logit_tol=1e-4, grad_tol=1e-5):
    """Print the logits, loss and gradient differences at every configuration; return (ok, rows). ok: the logits are
    within `logit_tol` and every gradient through the model (the reference's loss formula on our logits) within
    `grad_tol`, except a parameter whose gradient the reference cannot reproduce itself to `grad_tol` (rows swapped:
    its gradient is at the level of fp32 rounding, e.g. backout_lambda at depth 2, where backout subtracts a multiple of
    the last block's own output and the final norm erases it). Our fused loss's gradients are printed beside."""
    print(f"model parity, CPU fp32, random weights copied across (targets: logits max |d| <= {logit_tol:g}, gradient rel <= {grad_tol:g})")
    print("  grad rel = ||g_ours - g_ref|| / ||g_ref||, worst parameter. 'model': our logits through the reference's loss formula "
          "(tanh softcap, F.cross_entropy);\n  'fused': our own loss (softcap_loss), worst parameter named; 'ref noise': the "
          "reference against itself with the batch rows swapped or accumulated row by row. Parameters whose ref noise > the target are left out of\n"
          "  'model' and listed last (their gradient is fp32 rounding).")
    print(f"{'config':>17} {'logits max|d|':>13} {'|logit|max':>10} {'loss |d|':>8} {'model':>8}  {'fused':>8} {'(parameter)':<28} {'ref noise':>9} {'ok':>3}  rounding-level")
    ok, rows = True, []
    cases = [(d, T, p, None) for d in depths for T in seqs for p in patterns] + [(4, 256, "SSSL", 1)]   # + GQA (2 heads : 1)
    for d, T, pat, kv in cases:
        r = compare_model(ref, d, T, pat, n_kv_head=kv)
        noisy = sorted(n for n, v in r["noise"].items() if v > grad_tol)
        worst_ce = max(v for n, v in r["rel_ce"].items() if n not in noisy)
        worst = max((n for n in r["rel"] if n not in noisy), key=r["rel"].get)
        good = r["logits"] <= logit_tol and worst_ce <= grad_tol
        ok &= good
        name = f"d{d} T{T} {pat}" + (f" kv{kv}" if kv else "")
        rows.append(dict(config=name, worst_model=worst_ce, worst_fused=r["rel"][worst], noisy=noisy, **r))
        print(f"{name:>17} {r['logits']:13.2e} {r['max_logit']:10.2f} {r['loss']:8.1e} {worst_ce:8.1e}  {r['rel'][worst]:8.1e} "
              f"{worst:<28} {r['noise'][worst]:9.1e} {'yes' if good else 'NO':>3}  "
              + ", ".join(f"{n} (model {r['rel_ce'][n]:.0e}, noise {r['noise'][n]:.0e})" for n in noisy))
    return ok, rows


def init_parity(ref, depth: int = 4, seq: int = 256, pattern: str = "SSSL", seed: int = 0) -> bool:
    "Print the initialisation's statistics side by side; True when every tensor matches (values, or std and bounds)."
    rows = compare_init(*build_pair(ref, depth, seq, pattern, seed=seed))
    same = sum(r[-1] == 0 for r in rows)
    print(f"\ninit parity, d{depth}, seed {seed}: {same} of {len(rows)} tensors identical to the reference's draws")
    print(f"{'parameter':<28} {'std ours':>9} {'std ref':>9} {'min ours':>9} {'min ref':>9} {'max ours':>9} {'max ref':>9} {'max|d|':>8}")
    ok = True
    for n, so, sr, mino, minr, maxo, maxr, d in rows:
        # equal draws, or else the same distribution: std within 3% and bounds within 5% of the range
        good = d == 0 or (abs(so - sr) <= 0.03 * abs(sr) + 1e-8 and abs(mino - minr) <= 0.05 * (maxr - minr) + 1e-8
                          and abs(maxo - maxr) <= 0.05 * (maxr - minr) + 1e-8)
        ok &= good
        if not n.startswith("blocks.") or n.startswith(("blocks.0.", "blocks.1.")) or not good:   # one pair of blocks is enough to read
            print(f"{n:<28} {so:9.4f} {sr:9.4f} {mino:9.4f} {minr:9.4f} {maxo:9.4f} {maxr:9.4f} {d:8.1e}{'' if good else '  NO'}")
    return ok


def decode_parity(ref, depth=4, seq=256, pattern="SSSL", prompt=100, new=100, vocab=512, tol=1e-4) -> bool:
    "KV-cache generation: a prompt's prefill, then one token at a time past the S window; ours against the reference's KVCache."
    import torch
    ours, theirs, g = random_pair(ref, depth, seq, pattern, vocab)
    import importlib.util, types
    # the reference's engine imports its tokenizer, which imports Karpathy's `rustbpe` package (no dependency of ours);
    # KVCache needs none of it, so an empty stand-in module is put there while the engine imports, where it is missing
    stub = "rustbpe" not in sys.modules and importlib.util.find_spec("rustbpe") is None
    if stub: sys.modules["rustbpe"] = types.ModuleType("rustbpe")
    try: engine = ref.import_module("nanochat.engine")
    finally:
        if stub: del sys.modules["rustbpe"]
    c, B, T = ours.config, 2, prompt + new
    idx = torch.randint(0, vocab, (B, T), generator=g)
    with torch.no_grad():
        oc = ours.new_kv_cache(B, T, dtype=torch.float32)
        rc = engine.KVCache(B, c.n_kv_head, T, c.head_dim, c.n_layer, "cpu", torch.float32)
        lo, lr = [ours(idx[:, :prompt], kv_cache=oc)], [theirs(idx[:, :prompt], kv_cache=rc)]
        for t in range(prompt, T):
            lo.append(ours(idx[:, t:t + 1], kv_cache=oc)); lr.append(theirs(idx[:, t:t + 1], kv_cache=rc))
        d = (torch.cat(lo, 1) - torch.cat(lr, 1)).abs().max().item()
        full = (torch.cat(lo, 1) - theirs(idx)).abs().max().item()
    print(f"\nKV-cache decoding, d{depth} {pattern}, S window {ours.window_sizes[0]} keys: prefill {prompt} then {new} single tokens, "
          f"logits max |ours - ref| {d:.2e}, ours against the reference's full forward {full:.2e} ({'yes' if max(d, full) <= tol else 'NO'})")
    return max(d, full) <= tol


def counts_parity(ref, depths=(2, 4, 12, 20, 24, 26), vocab: int = 32768, seq: int = 2048) -> bool:
    "Parameter counts by group and training FLOPs per token (estimate_flops), ours against the reference's, on meta tensors."
    import contextlib, io, torch
    from nanochat.gpt import GPT, config_from_depth
    print(f"\ncounts, vocab {vocab}, sequence {seq}: parameters by group and FLOPs per token (ours = reference unless marked)")
    ok = True
    for d in depths:
        cfg = config_from_depth(d, vocab_size=vocab, sequence_len=seq)
        with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()):
            ours = GPT(cfg)
            theirs = ref.gpt.GPT(ref.gpt.GPTConfig(sequence_len=seq, vocab_size=vocab, n_layer=cfg.n_layer, n_head=cfg.n_head,
                                                   n_kv_head=cfg.n_kv_head, n_embd=cfg.n_embd, window_pattern=cfg.window_pattern))
        n, r = ours.num_params(), theirs.num_scaling_params()
        mine = [n["wte"], n["value_embeds"], n["lm_head"], n["matrices"], n["scalars"], n["total"], ours.estimate_flops()]
        refs = [r["wte"], r["value_embeds"], r["lm_head"], r["transformer_matrices"], r["scalars"], r["total"], theirs.estimate_flops()]
        ok &= mine == refs
        print(f"  d{d:<3} wte {mine[0]:>11,} ve {mine[1]:>13,} lm_head {mine[2]:>11,} matrices {mine[3]:>13,} scalars {mine[4]:>4} "
              f"total {mine[5]:>14,} FLOPs/token {mine[6]:>15,}" + ("" if mine == refs else f"   reference {refs}"))
    return ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", required=True, help="a checkout of karpathy/nanochat at 92d63d4 (see above)")
    p.add_argument("--model-only", action="store_true", help="the model and its init only, not dev/parity_optim.py")
    args = p.parse_args(argv)
    ref = load_reference(args.reference)
    import torch
    torch.set_num_threads(min(4, torch.get_num_threads()))
    ok, _ = model_parity(ref)
    ok &= init_parity(ref)
    ok &= counts_parity(ref)
    ok &= decode_parity(ref)
    here = os.path.dirname(os.path.abspath(__file__))
    if not args.model_only and os.path.exists(os.path.join(here, "parity_optim.py")):   # the optimizer's parity, by its own script
        sys.path.insert(0, here)
        import parity_optim
        print()
        res = parity_optim.main(ref)
        if res is False: ok = False
    print("\nall within tolerance" if ok else "\nSOME DIFFERENCES ARE OUT OF TOLERANCE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
