"""The compute dtype: the auto rule on injected hardware facts, a bf16 step against an fp32 step, the fused loss against
the logits path, and base_train with --dtype float32 / bfloat16 (val bpb within 2%, fp32 checkpoints that load and
evaluate in either dtype)."""
import re
import pytest
import torch
from nanochat.common import bf16_is_fast, compute_dtype
from nanochat.gpt import GPT, config_from_depth, autocast_ctx
from test_base_train import make_base, run

def test_auto_rule_on_injected_facts(monkeypatch):
    monkeypatch.delenv("NANOCHAT_DTYPE", raising=False)
    assert not bf16_is_fast("cpu", amx=False, avx512_bf16=False)      # a CPU without bf16 instructions: fp32
    assert bf16_is_fast("cpu", avx512_bf16=True) and bf16_is_fast("cpu", amx=True)
    assert [bf16_is_fast("cuda", cuda_major=m) for m in (6, 7, 8, 9, 10)] == [False, False, True, True, True]
    assert not bf16_is_fast("mps")
    monkeypatch.setattr("nanochat.common.device_facts", lambda d: dict(amx=False, avx512_bf16=False))
    assert compute_dtype("cpu") == torch.float32
    monkeypatch.setattr("nanochat.common.device_facts", lambda d: dict(amx=False, avx512_bf16=True))
    assert compute_dtype("cpu") == torch.bfloat16
    assert compute_dtype("cpu", "float32") == torch.float32             # the flag wins over auto
    monkeypatch.setenv("NANOCHAT_DTYPE", "float32")
    assert compute_dtype("cpu") == torch.float32                        # the env var overrides auto
    assert compute_dtype("cpu", "bfloat16") == torch.bfloat16           # and an explicit flag overrides the env var
    monkeypatch.setenv("NANOCHAT_DTYPE", "half")
    with pytest.raises(ValueError, match="use auto, float32 or bfloat16"): compute_dtype("cpu")

def test_bf16_step_matches_fp32_step():
    "Same weights, same batch: loss within 1%, every gradient pointing the same way (cosine > 0.99), weights stay fp32."
    torch.manual_seed(0)
    model = GPT(config_from_depth(2, vocab_size=512, sequence_len=64)); model.init_weights()
    with torch.no_grad():
        for p in model.parameters(): p.add_(0.02 * torch.randn_like(p))   # no zero projections: every matmul matters
    x = torch.randint(0, 512, (4, 64)); y = torch.randint(0, 512, (4, 64))
    res = {}
    for dt in (torch.float32, torch.bfloat16):
        model.zero_grad()
        with autocast_ctx("cpu", dt): loss = model(x, y)
        loss.backward()
        res[dt] = loss.item(), [p.grad.clone() for p in model.parameters()]
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    (l32, g32), (l16, g16) = res[torch.float32], res[torch.bfloat16]
    assert abs(l16 - l32) / l32 < 0.01, (l32, l16)
    # at depth 2 backout subtracts a multiple of the last block's own output, which the final norm erases: backout_lambda's
    # gradient is zero up to rounding (~1e-7), so it has no direction to compare
    live = [n != "backout_lambda" for n, _ in model.named_parameters()]
    cos = [torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()
           for a, b, keep in zip(g32, g16, live) if keep and a.norm() > 0]
    assert min(cos) > 0.99, cos

def _val_bpb(out: str) -> float: return float(re.findall(r"val bpb (\d+\.\d+)", out)[-1])

def test_fused_loss_matches_the_logits_path():
    """The model's loss (softcap_loss: fused head, sigmoid softcap, row chunks, gradients made in the forward pass)
    against cross-entropy on the model's logits (the tanh softcap, plain autograd), on a randomised model whose logits
    reach the cap, with ignored targets. fp32: the loss, the per-token losses and every parameter's gradient agree to
    rounding. bf16: both paths round, so each is measured against the fp32 reference, and the fused one may not be
    worse than the plain one."""
    F = torch.nn.functional
    torch.manual_seed(0)
    model = GPT(config_from_depth(2, vocab_size=500, sequence_len=64))   # 500 words: padded to 512 head rows
    with torch.no_grad():
        for p in model.parameters(): p.add_(torch.randn_like(p) * 0.3)
        model.lm_head.weight.mul_(20)
    x, y = torch.randint(0, 500, (6, 64)), torch.randint(0, 500, (6, 64))
    y[0, :20] = -1; y[3] = -1
    fused = lambda: model(x, y)
    plain = lambda: F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-1)
    def run(loss_fn, dtype):
        model.zero_grad()
        with autocast_ctx("cpu", dtype): loss = loss_fn()
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()]), [p.grad.clone() for p in model.parameters()]
    assert model(x).abs().max() > 14                      # the cap is reached, where the tanh and sigmoid forms could part
    (l_ref, g_ref, ps_ref), (l32, g32, ps32) = run(plain, torch.float32), run(fused, torch.float32)
    assert abs(l32 - l_ref) <= 1e-5 * l_ref
    for (n, _), a, b in zip(model.named_parameters(), ps32, ps_ref):
        if n == "backout_lambda": assert a.abs().max() < 1e-5 and b.abs().max() < 1e-5; continue   # zero at depth 2 (rounding)
        assert (a - b).norm() <= 1e-4 * b.norm(), n
    with torch.no_grad():
        per_token = model(x, y, loss_reduction="none")
        ref = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-1, reduction="none")
    assert per_token.shape == (6 * 64,) and (per_token[y.flatten() < 0] == 0).all()
    assert (per_token - ref).abs().max() <= 1e-4 * ref.abs().max()
    (l16, g16, _), (l16p, g16p, _) = run(fused, torch.bfloat16), run(plain, torch.bfloat16)
    err = lambda g: ((g - g_ref).norm() / g_ref.norm()).item()
    assert abs(l16 - l_ref) <= 0.01 * l_ref
    assert err(g16) <= 1.2 * err(g16p) + 1e-3, (err(g16), err(g16p))   # here ~0.05 both: bf16's own rounding

def test_base_train_in_both_dtypes_and_checkpoints_cross(tmp_path):
    base = make_base(tmp_path / "base")
    f32 = run(base, "--dtype", "float32", "--num-iterations", "12", "--model-tag", "f32")
    b16 = run(base, "--dtype", "bfloat16", "--num-iterations", "12", "--model-tag", "b16")
    assert f32.returncode == 0 and b16.returncode == 0, (f32.stderr[-2000:], b16.stderr[-2000:])
    a, b = _val_bpb(f32.stdout), _val_bpb(b16.stdout)
    assert abs(b - a) / a < 0.02, (a, b)                               # same steps, same data: within 2%
    from nanochat.checkpoint import load_model
    from nanochat.scripts.base_loss import split_bpb
    model, tok, _ = load_model("base", "b16", None, torch.device("cpu"), base_dir=base)   # a bf16-trained checkpoint...
    assert {p.dtype for p in model.parameters()} == {torch.float32}     # ...is an fp32 file
    e32 = split_bpb(model, tok, "val", 256, 4, torch.device("cpu"), base_dir=base, dtype=torch.float32)
    e16 = split_bpb(model, tok, "val", 256, 4, torch.device("cpu"), base_dir=base, dtype=torch.bfloat16)
    assert abs(e32 - e16) / e32 < 0.02, (e32, e16)

def test_dtype_flag_rejects_unknown(tmp_path):
    r = run(tmp_path, "--dtype", "fp16")
    assert r.returncode == 2 and "invalid choice: 'fp16'" in r.stderr

def test_muon_orthogonalizes_in_the_compute_dtype_and_keeps_it_across_a_resume():
    "bf16 Polar Express: the update agrees with fp32's; the dtype is the optimizer's own, not restored from a checkpoint."
    import nanochat.optim  # adds GPT.setup_optimizers
    from nanochat.optim import polar_express
    torch.manual_seed(0)
    G = torch.randn(256, 1024)
    o32, o16 = polar_express(G, dtype=torch.float32), polar_express(G, dtype=torch.bfloat16)
    assert o32.dtype == torch.float32 and o16.dtype == torch.bfloat16
    s = torch.linalg.svdvals(o16.float())
    assert 0.7 < s.min() and s.max() < 1.25, (s.min(), s.max())          # still (nearly) orthogonal
    assert torch.nn.functional.cosine_similarity(o16.float().flatten(), o32.flatten(), dim=0) > 0.99
    model = GPT(config_from_depth(2, vocab_size=512, sequence_len=64)); model.init_weights()
    assert model.setup_optimizers(dtype=torch.bfloat16)[1].ns_dtype == torch.bfloat16
    opts16 = model.setup_optimizers(dtype=torch.bfloat16)
    x = torch.randint(0, 512, (2, 64)); model(x, x).backward()
    for o in opts16: o.step()
    assert {p.dtype for p in model.parameters()} == {torch.float32}      # weights and momenta stay fp32
    assert {s["momentum_buffer"].dtype for s in opts16[1].state.values()} == {torch.float32}
    opts32 = model.setup_optimizers(dtype=torch.float32)
    opts32[1].load_state_dict(opts16[1].state_dict())                   # a bf16 run's checkpoint resumed with --dtype float32
    assert opts32[1].ns_dtype == torch.float32

@pytest.mark.parametrize("choice, expected", [("tcmalloc", "tcmalloc"), ("system", "glibc")])
def test_malloc_sh_preloads_tcmalloc_unless_told_not_to(choice, expected):
    "What speedrun.sh and dev/test.sh source: a Python started after it runs on tcmalloc (NANOCHAT_MALLOC=system: glibc)."
    import os, subprocess, sys
    from pathlib import Path
    root = Path(__file__).parents[1]
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"} | {"NANOCHAT_MALLOC": choice}
    out = subprocess.run(["bash", "-c", f'source "{root}/dev/malloc.sh" && exec "$0" -c "$1"', sys.executable,
                          "from nanochat.common import malloc_name; print(malloc_name())"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected, f"{out.stdout!r} {out.stderr!r} (tcmalloc missing? bash dev/setup.sh installs libtcmalloc-minimal4)"
