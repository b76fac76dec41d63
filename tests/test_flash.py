"Flash Attention 3 (nbs/16a_flash.ipynb): the loader's failure paths, the fallback decision, the call's layout and window."
import sys, types
import pytest
import torch
import torch.nn.functional as F
from nanochat import flash
from nanochat.flash import fa3_applies, fa3_window_size, flash3_attention, load_flash_attention3
from nanochat.gpt import attention, attention_kernel

@pytest.fixture
def machine(monkeypatch):
    "Simulate a machine: machine(cuda=..., capability=..., kernels=<module | None (import fails)>) -> load_flash_attention3()."
    def load(cuda=True, capability=(9, 0), kernels=None):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: capability)
        monkeypatch.setitem(sys.modules, "kernels", kernels)     # None: `import kernels` raises ImportError
        load_flash_attention3.cache_clear()
        return load_flash_attention3()
    yield load
    load_flash_attention3.cache_clear()

def fake_kernels(get_kernel):
    return types.SimpleNamespace(get_kernel=get_kernel)

def test_no_cuda(machine):
    assert machine(cuda=False) == (None, "no CUDA")

def test_not_hopper(machine):
    assert machine(capability=(8, 0)) == (None, "capability 8.0 is not Hopper (FA3's kernels are built for 9.x)")
    assert machine(capability=(10, 0))[0] is None

def test_kernels_not_installed(machine):
    assert machine(kernels=None) == (None, "kernels not installed (pip install kernels)")

def test_download_failure_is_one_line_and_never_raises(machine):
    def boom(name): raise ConnectionError("Max retries exceeded\nwith url: /api/models/" + name)
    mod, why = machine(kernels=fake_kernels(boom))
    assert mod is None and why.startswith("download failed: ConnectionError: Max retries") and "\n" not in why
    assert flash.FA3_KERNEL in why
    def broken(name): return types.SimpleNamespace()    # a kernel without the function we call
    assert machine(kernels=fake_kernels(broken)) == (None, f"{flash.FA3_KERNEL} has no flash_attn_func")

def test_a_failing_check_is_reported_not_raised(monkeypatch):
    def driver(): raise RuntimeError("CUDA driver initialization failed")
    monkeypatch.setattr(torch.cuda, "is_available", driver)
    load_flash_attention3.cache_clear()
    try: assert load_flash_attention3() == (None, "FA3 check failed: RuntimeError: CUDA driver initialization failed")
    finally: load_flash_attention3.cache_clear()

def test_loaded_once_and_cached(machine):
    calls, fa3 = [], types.SimpleNamespace(flash_attn_func=lambda *a, **k: None)
    def get_kernel(name): calls.append(name); return types.SimpleNamespace(flash_attn_interface=fa3)
    assert machine(kernels=fake_kernels(get_kernel)) == (fa3, f"FA3 ({flash.FA3_KERNEL})")
    assert load_flash_attention3()[0] is fa3 and calls == [flash.FA3_KERNEL]
    assert fa3_applies("cuda", torch.bfloat16) and not fa3_applies("cuda", torch.bfloat16, cached=True)
    assert not fa3_applies("cuda", torch.float32)

def test_fallback_when_fa3_is_missing(machine):
    assert machine(cuda=False)[0] is None and not fa3_applies("cuda", torch.bfloat16)
    q = torch.zeros(1, 2, 8, 4)
    with pytest.raises(RuntimeError, match=r"not available \(no CUDA\): call nanochat.gpt.attention"): flash3_attention(q, q, q, 8)
    assert attention_kernel("cuda", 8, 8, 8) == "sdpa_causal"       # what the model runs instead

def fake_flash_attn_func(q, k, v, causal=True, window_size=(-1, -1)):
    "FA3's documented contract in plain torch: (B, T, H, D); key j visible to query i when i - left <= j <= i + right."
    B, T, H, D = q.shape
    k, v = (t.repeat_interleave(H // t.size(2), dim=2) for t in (k, v))
    s = torch.einsum("bihd,bjhd->bhij", q.float(), k.float()) / D ** 0.5
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    left, right = window_size
    ok = (j <= i if causal else torch.ones(T, T, dtype=torch.bool)) & ((left < 0) | (i - j <= left)) & ((right < 0) | (j - i <= right))
    return torch.einsum("bhij,bjhd->bihd", s.masked_fill(~ok, float("-inf")).softmax(-1), v.float()).to(q.dtype)

FAKE = types.SimpleNamespace(flash_attn_func=fake_flash_attn_func)

@pytest.mark.parametrize("H,Hkv", [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("window", [1, 3, 16, 64, 100])
def test_flash3_attention_equals_our_attention(H, Hkv, window):
    "Layout (B, H, T, D) <-> (B, T, H, D), the window convention and GQA against nanochat.gpt.attention (the SDPA path)."
    g = torch.Generator().manual_seed(window)
    T = 64
    q, k, v = torch.randn(2, H, T, 8, generator=g), torch.randn(2, Hkv, T, 8, generator=g), torch.randn(2, Hkv, T, 8, generator=g)
    got = flash3_attention(q, k, v, window, fa3=FAKE)
    assert got.shape == q.shape
    assert (got - attention(q, k, v, window)).abs().max().item() < 1e-5

def test_window_off_by_one_would_be_caught():
    q = torch.randn(1, 2, 32, 8, generator=torch.Generator().manual_seed(0))
    wrong = types.SimpleNamespace(flash_attn_func=lambda q, k, v, causal, window_size: fake_flash_attn_func(q, k, v, causal, (window_size[0] + 1, 0)))
    assert (flash3_attention(q, q, q, 8, fa3=wrong) - attention(q, q, q, 8)).abs().max().item() > 1e-2
    assert fa3_window_size(8, 32) == (7, 0) and fa3_window_size(32, 32) == (-1, 0) and fa3_window_size(40, 32) == (-1, 0)
    with pytest.raises(ValueError, match="window >= 1"): fa3_window_size(0, 32)

def test_autocast_dtype_reaches_the_kernel():
    "FA3 is outside autocast: flash3_attention casts q, k, v to the autocast dtype, as SDPA would under autocast."
    seen = []
    def spy(q, k, v, causal, window_size): seen.append((q.dtype, k.dtype, q.is_contiguous())); return fake_flash_attn_func(q, k, v, causal, window_size)
    q = torch.randn(1, 2, 16, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16): y = flash3_attention(q, q, q, 4, fa3=types.SimpleNamespace(flash_attn_func=spy))
    assert seen == [(torch.bfloat16, torch.bfloat16, True)] and y.dtype == torch.bfloat16
    ys = flash3_attention(q, q, q, 4, fa3=types.SimpleNamespace(flash_attn_func=lambda *a, **k: (fake_flash_attn_func(*a, **k), None)))
    assert ys.shape == q.shape    # builds that also return the softmax LSE

def _fa3_or_none():
    load_flash_attention3.cache_clear()
    return load_flash_attention3()

@pytest.mark.skipif(_fa3_or_none()[0] is None, reason=f"the real FA3 kernel did not load: {_fa3_or_none()[1]}")
def test_real_fa3_matches_our_attention_on_hopper():
    "On a Hopper GPU with kernels installed: the real kernel, forward and backward, against our attention in bf16."
    g = torch.Generator(device="cuda").manual_seed(0)
    for H, Hkv, window in [(8, 8, 2048), (8, 2, 513), (8, 4, 1)]:
        q = torch.randn(2, H, 1024, 128, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True)
        k, v = (torch.randn(2, Hkv, 1024, 128, device="cuda", dtype=torch.bfloat16, generator=g, requires_grad=True) for _ in range(2))
        y = flash3_attention(q, k, v, window)
        ref = attention(q, k, v, window, kernel="sdpa_mask")
        assert (y.float() - ref.float()).abs().max().item() < 2e-2
        gy = torch.randn_like(y)
        a = torch.autograd.grad(y, (q, k, v), gy)
        b = torch.autograd.grad(ref, (q, k, v), gy)
        assert all(((x.float() - z.float()).norm() / z.float().norm()).item() < 2e-2 for x, z in zip(a, b))
