"""What the GPU path does differently, checked on CPU: `torch.compile` (base_train compiles the model on CUDA) gives the
eager loss and gradients, and a training step under bf16 autocast (the GPU dtype policy) runs and tracks fp32."""
import copy
import pytest
import torch
from nanochat.gpt import GPT, GPTConfig

def tiny(seed=0):
    torch.manual_seed(seed)
    # 'SL' windows: the sliding-window (mask) path and the full-context (is_causal) path are both compiled; tiles of 8
    # keys make the S window 17 keys (16 back and the query), shorter than the 64-token sequence
    return GPT(GPTConfig(sequence_len=64, vocab_size=256, n_layer=2, n_head=2, n_kv_head=1, n_embd=64, window_pattern="SL",
                         window_tile=8))

def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(0, 256, (4, 65), generator=g)
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()

def grads(m): return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

def train_steps(model, fwd, steps=2, autocast=None):
    "Losses of `steps` AdamW steps on fixed batches; `fwd` is the model or its compiled form."
    opt, out = torch.optim.AdamW(model.parameters(), lr=1e-3), []
    for s in range(steps):
        x, y = batch(s)
        with autocast or torch.autocast("cpu", enabled=False): loss = fwd(x, y)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); out.append(loss.item())
    return out

def test_compiled_model_matches_eager():
    eager = tiny()
    for p in eager.parameters(): torch.nn.init.normal_(p, std=0.05)   # zero-initialised projections would hide differences
    comp_model = copy.deepcopy(eager)
    compiled = torch.compile(comp_model, dynamic=False)
    x, y = batch()
    le, lc = eager(x, y), compiled(x, y)
    le.backward(); lc.backward()
    assert lc.item() == pytest.approx(le.item(), rel=1e-5)
    ge, gc = grads(eager), grads(comp_model)
    assert ge.keys() == gc.keys() and len(ge) > 10
    for n in ge: torch.testing.assert_close(gc[n], ge[n], rtol=1e-4, atol=1e-5, msg=n)
    # and a few optimizer steps later the two runs still agree
    eager.zero_grad(set_to_none=True); comp_model.zero_grad(set_to_none=True)
    a, b = train_steps(eager, eager), train_steps(comp_model, compiled)
    assert b == pytest.approx(a, rel=1e-4)

def test_bf16_autocast_training_step_on_cpu():
    fp32 = tiny()
    for p in fp32.parameters(): torch.nn.init.normal_(p, std=0.05)
    bf16 = copy.deepcopy(fp32)
    ref = train_steps(fp32, fp32, steps=3)
    before = [p.detach().clone() for p in bf16.parameters()]
    got = train_steps(bf16, bf16, steps=3, autocast=torch.autocast("cpu", dtype=torch.bfloat16))
    assert all(torch.isfinite(torch.tensor(got)))
    assert got == pytest.approx(ref, rel=2e-2)                   # bf16's ~3 significant digits
    assert all(p.dtype == torch.float32 for p in bf16.parameters())   # autocast keeps fp32 master weights
    assert sum(not torch.equal(a, p) for a, p in zip(before, bf16.parameters())) > 10
    x, y = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16): logits = bf16(x)
    assert logits.dtype in (torch.bfloat16, torch.float32) and torch.isfinite(logits).all()

def test_bench_gpu_without_cuda_fails_in_one_clear_line():
    import subprocess, sys
    from conftest import ROOT
    r = subprocess.run([sys.executable, "bench/gpu.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["bench/gpu.py needs a CUDA GPU and torch.cuda.is_available() is False here; on a CPU run bench/model.py"]

def live_model_and_loss():
    "A tiny model with every weight off its initialisation (so every path is live), a batch, and its eager loss."
    eager = tiny()
    for p in eager.parameters(): torch.nn.init.normal_(p, std=0.05)
    x, y = batch()
    with torch.no_grad(): ref = eager(x, y).item()
    return eager, x, y, ref

def test_compiled_model_with_flex_windows_matches_the_mask_path(monkeypatch):
    "CUDA's kernel choice forced on CPU: sliding-window layers on FlexAttention inside the compiled model (forward only:"
    " FlexAttention has no CPU backward) give the eager mask path's loss."
    import nanochat.kernels as kernels   # the kernel choice and the FA3 cache live in nanochat.kernels (04a_fast)
    eager, x, y, ref = live_model_and_loss()
    choose, used = kernels.attention_kernel, []
    def as_on_cuda(device_type, *a, **k):
        used.append(choose("cuda", *a, **k)); return used[-1]
    monkeypatch.setattr(kernels, "attention_kernel", as_on_cuda)
    compiled = torch.compile(copy.deepcopy(eager), dynamic=False)
    with torch.no_grad(): got = compiled(x, y).item()
    assert set(used) == {"flex_window", "sdpa_causal"}   # the 'S' layer on flex, the 'L' layer on SDPA's causal kernel
    assert got == pytest.approx(ref, rel=1e-5)

def test_bench_gpu_measurements_run_on_cpu():
    "bench/gpu.py's pieces on a tiny CPU model (uncompiled): the training step with both optimizers, decoding, the kernel table."
    import importlib.util
    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    m = tiny()
    before = m.lm_head.weight.detach().clone()
    tok_s, loss = bench.train_rate(m, B=2, T=32, warmup=1, steps=2, compile=False)
    assert tok_s > 0 and 0 < loss < 10 and not torch.equal(before, m.lm_head.weight)
    assert bench.decode_rate(m, 3, prompt=8, new=4) > 0
    assert bench.kernels(m.config, 64) == ["flex_window / sdpa_mask", "sdpa_causal / sdpa_mask"]
    rows = bench.estimate(depths=(20,))
    assert rows[0]["stage"] == "base_train" and rows[0]["tokens"] > 1e9   # billions at d20 (the recipe's tokens per parameter sets how many)

def test_compiled_model_with_flash3_matches_the_mask_path(monkeypatch):
    "Flash Attention 3's place in the compiled model, on CPU: CUDA's choice forced and a stand-in for the kernel (the mask"
    " path) give the eager loss; FA3 takes every layer (whole sequences); the first compile resolves nanochat.flash once."
    import nanochat.kernels as kernels   # the kernel choice and the FA3 cache live in nanochat.kernels (04a_fast)
    eager, x, y, ref = live_model_and_loss()
    calls, used, choose = [], [], kernels.attention_kernel
    def stand_in(q, k, v, window):
        calls.append(window); return kernels.attention(q, k, v, window, kernel="sdpa_mask")
    def as_on_cuda_in_bf16(device_type, *a, **k):
        used.append(choose("cuda", *a, **{**k, "dtype": torch.bfloat16})); return used[-1]
    monkeypatch.setattr(kernels, "_FLASH3", (stand_in, "a stand-in"))
    monkeypatch.setattr(kernels, "attention_kernel", as_on_cuda_in_bf16)
    with torch.no_grad(): got = torch.compile(copy.deepcopy(eager), dynamic=False)(x, y).item()
    assert set(used) == {"flash3"} and sorted(set(calls)) == sorted(set(eager.window_sizes))   # both layers, their own windows
    assert got == pytest.approx(ref, rel=1e-5)
    # not yet resolved when compiling (no describe_attention first): resolved inside the compiled call, on this machine to
    # "not available", and the model falls back to the choice without FA3
    monkeypatch.setattr(kernels, "_FLASH3", None)
    used.clear()
    with torch.no_grad(): got = torch.compile(copy.deepcopy(eager), dynamic=False)(x, y).item()
    assert kernels._FLASH3 is not None and kernels._FLASH3[0] is None and set(used) == {"flex_window", "sdpa_causal"}
    assert got == pytest.approx(ref, rel=1e-5)
