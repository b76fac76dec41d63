"FP8 training (nbs/16_fp8.ipynb): numerics of the three FP8 matmuls against bf16, a toy run that learns, checkpoints without FP8."
import math
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from nanochat.fp8 import (Float8Linear, _Float8Matmul, check_fp8_runtime, convert_to_fp8, fp8_disabled, fp8_plan,
                          matmul_rms, to_fp8)
from nanochat.gpt import GPT, GPTConfig

E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2

def test_tolerances_derived_from_the_formats():
    # 0.21 eps per operand: e4m3 eps 1/8, e5m2 eps 1/4; a matmul adds the two operands' errors in quadrature
    assert matmul_rms(E4M3, E4M3) == pytest.approx(0.0375, abs=5e-4)
    assert matmul_rms(E5M2, E4M3) == pytest.approx(0.0593, abs=5e-4)

@pytest.mark.parametrize("M,K,N", [(256, 512, 384), (64, 128, 1024)])
def test_forward_and_both_gradients_against_bf16(M, K, N):
    "Relative Frobenius error of y, dx, dw against the bf16 matmul: between 0.5x and 1.3x the derived expectation."
    g = torch.Generator().manual_seed(M + K)
    x, w, dy = torch.randn(M, K, generator=g), torch.randn(N, K, generator=g) * 0.02, torch.randn(M, N, generator=g)
    res = []
    for f in (lambda x, w: _Float8Matmul.apply(x, w, torch.bfloat16), lambda x, w: F.linear(x.bfloat16(), w.bfloat16())):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = f(xi, wi); y.backward(dy.to(y.dtype)); res.append((y.float(), xi.grad, wi.grad))
    assert res[0][1].dtype == torch.float32 and res[0][2].dtype == torch.float32    # gradients in the master dtype
    tol = dict(y=matmul_rms(E4M3, E4M3), dx=matmul_rms(E5M2, E4M3), dw=matmul_rms(E5M2, E4M3))
    for name, a, b in zip(tol, *res):
        err = ((a - b).norm() / b.norm()).item()
        assert 0.5 * tol[name] < err < 1.3 * tol[name], (name, err, tol[name])

@pytest.mark.parametrize("a_dt", [torch.float8_e4m3fn, torch.float8_e5m2])
@pytest.mark.parametrize("out", [torch.float32, torch.bfloat16])
def test_cpu_scaled_mm_computes_what_torch_scaled_mm_computes(a_dt, out):
    "On a CPU scaled_mm multiplies the FP8 values in fp32 (fast) instead of oneDNN's FP8 kernel: the same numbers."
    from nanochat.fp8 import scaled_mm
    g = torch.Generator().manual_seed(1)
    a8, sa = to_fp8(torch.randn(40, 96, generator=g), a_dt)
    b8, sb = to_fp8(torch.randn(24, 96, generator=g) * 0.05, torch.float8_e4m3fn)
    ours = scaled_mm(a8, b8.t(), sa, sb, out).float()
    ref = torch._scaled_mm(a8, b8.t(), scale_a=sa, scale_b=sb, out_dtype=out).float()
    assert ((ours - ref).norm() / ref.norm()).item() <= 1e-6
    with torch.autocast("cpu", dtype=torch.bfloat16):   # autocast must not round the fp32 sums to bf16
        assert ((scaled_mm(a8, b8.t(), sa, sb, out).float() - ref).norm() / ref.norm()).item() <= 1e-6

def test_to_fp8_scales_the_max_onto_the_format_max_and_keeps_tiny_gradients():
    g = torch.randn(4096, generator=torch.Generator().manual_seed(0)) * 1e-7
    for d in (E4M3, E5M2):
        g8, inv = to_fp8(g, d)
        assert g8.dtype == d and g8.float().abs().max().item() == torch.finfo(d).max
        assert ((g8.float() * inv - g).norm() / g.norm()).item() < 2 * matmul_rms(d, d)
    assert (g.to(E4M3).float() == 0).all()     # without the scale everything underflows

def test_float8linear_any_batch_and_autocast():
    "Rows that are not a multiple of 16 (padded inside), 3-D input, bf16 output under autocast, the plain path when disabled."
    torch.manual_seed(0)
    lin = nn.Linear(128, 64, bias=True)
    ref = nn.Linear(128, 64, bias=True); ref.load_state_dict(lin.state_dict())
    Float8Linear.from_linear(lin)
    x = torch.randn(3, 7, 128, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, y_ref = lin(x), ref(x)
        with fp8_disabled(lin): y_off = lin(x)
    assert y.shape == (3, 7, 64) and y.dtype == torch.bfloat16
    assert torch.equal(y_off, y_ref) and lin.fp8
    assert ((y.float() - y_ref.float()).norm() / y_ref.float().norm()).item() < 1.3 * matmul_rms(E4M3, E4M3)
    y.float().sum().backward()
    assert x.grad.shape == x.shape and lin.weight.grad.shape == (64, 128) and lin.bias.grad is not None

def small_gpt(n_embd=128):
    return GPT(GPTConfig(sequence_len=32, vocab_size=256, n_layer=2, n_head=2, n_kv_head=2, n_embd=n_embd))

def test_convert_keeps_parameters_and_skips_what_the_reference_skips():
    m = small_gpt()
    params = dict(m.named_parameters())
    plan = {name: why for name, _, why in fp8_plan(m)}
    n = convert_to_fp8(m)
    assert n == sum(why == "fp8" for why in plan.values()) == 2 * 6      # c_q, c_k, c_v, c_proj, c_fc, mlp c_proj per layer
    assert {k: id(v) for k, v in m.named_parameters()} == {k: id(v) for k, v in params.items()}   # same objects, same names
    assert type(m.lm_head) is nn.Linear and plan["lm_head"] == "skip: by name"
    assert plan["smear_gate"].startswith("skip") and all(why.startswith("skip") for k, why in plan.items() if "ve_gate" in k)
    assert convert_to_fp8(m) == 0                                         # converting twice changes nothing
    assert convert_to_fp8(small_gpt(), skip=()) == n + 1                 # the head too, when asked

def test_clear_errors_where_fp8_cannot_run(monkeypatch):
    with pytest.raises(ValueError, match="divisible by 16"): Float8Linear.from_linear(nn.Linear(100, 128))
    with pytest.raises(ValueError, match="smaller min_dim, or no --fp8"): convert_to_fp8(small_gpt(n_embd=64))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA A100")
    with pytest.raises(RuntimeError, match=r"capability 8\.0.*without --fp8"): check_fp8_runtime("cuda")
    monkeypatch.delattr(torch, "_scaled_mm")
    with pytest.raises(RuntimeError, match=r"torch >= 2\.4"): check_fp8_runtime("cpu")
    with pytest.raises(RuntimeError, match=r"torch >= 2\.4"): convert_to_fp8(small_gpt())

def markov(steps, B=16, T=32, V=64, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    succ = torch.randint(0, V, (V, k), generator=g)
    for _ in range(steps):
        x = torch.empty(B, T + 1, dtype=torch.long); x[:, 0] = torch.randint(0, V, (B,), generator=g)
        for t in range(T): x[:, t + 1] = succ[x[:, t], torch.randint(0, k, (B,), generator=g)]
        yield x[:, :-1], x[:, 1:]

class ToyLM(nn.Module):
    def __init__(self, V=64, C=128):
        super().__init__()
        self.emb, self.up, self.down, self.lm_head = nn.Embedding(V, C), nn.Linear(C, 4 * C), nn.Linear(4 * C, C), nn.Linear(C, V)
    def forward(self, x): h = self.emb(x); h = h + self.down(F.relu(self.up(h)).square()); return self.lm_head(h)

def train(fp8, steps=120):
    torch.manual_seed(0); m = ToyLM()
    if fp8: assert convert_to_fp8(m) == 2
    opt, losses = torch.optim.AdamW(m.parameters(), lr=3e-3), []
    for x, y in markov(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16): loss = F.cross_entropy(m(x).float().flatten(0, 1), y.flatten())
        loss.backward(); opt.step(); opt.zero_grad(); losses.append(loss.item())
    return sum(losses[:5]) / 5, sum(losses[-10:]) / 10

@pytest.fixture
def one_thread():
    "Tiny matmuls on one thread: on a shared 2-core machine the second mostly waits (restored afterwards)."
    before = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

def test_toy_training_learns_as_well_as_bf16(one_thread):
    (b0, b1), (f0, f1) = train(False), train(True)
    assert b1 < b0 - 2.0 and f1 < f0 - 2.0          # from ln 64 = 4.16 toward the floor ln 2 = 0.69
    assert abs(f1 - b1) < 0.05 * b1, (b1, f1)

def test_fp8_checkpoint_loads_into_a_model_without_fp8(tmp_path, one_thread):
    torch.manual_seed(0); m = small_gpt(); convert_to_fp8(m)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    x = torch.randint(0, 256, (4, 32))
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16): loss = m(x, x)
        loss.backward(); opt.step(); opt.zero_grad()
    torch.save(m.state_dict(), tmp_path / "model.pt")
    sd = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in sd.values() if v.is_floating_point())
    plain = small_gpt(); plain.load_state_dict(sd)                        # strict: same keys and shapes
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        with fp8_disabled(m): ref = m(x)
        assert torch.equal(plain(x), ref)
        assert not torch.equal(m(x), ref)                                 # FP8 back on after the block

def test_bench_gpu_tiny_cpu_smoke(tmp_path, one_thread, capsys):
    "bench/gpu.py --device cpu --tiny: every measurement (FP8 off and on, attention share, decode at 1/8/32) runs; JSON out."
    import importlib.util, json
    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    bench.main(["--device", "cpu", "--tiny", "--out", str(tmp_path / "b.json")])
    out = json.loads((tmp_path / "b.json").read_text())
    assert out["flash_attention_3"] == "no CUDA" and out["device"] == "cpu"
    assert [(r["depth"], r["fp8"]) for r in out["train"]] == [(2, False), (2, True)]
    assert all("error" not in r and r["train_tok_s"] > 0 and 0 < r["attention_share"] < 1 for r in out["train"])
    assert out["train"][1]["fp8_layers"] > 0 and out["train"][0]["mfu"] is None        # no peak known on a CPU
    assert [r["batch"] for r in out["decode"]] == [1, 8, 32]
    assert all(r["ttft_ms"] > 0 and r["step_ms"] > 0 and r["bytes_per_step"] > 0 and r["mbu"] is None for r in out["decode"])
    with pytest.raises(SystemExit): bench.main(["--device", "cpu"])                   # no untiny CPU run
    assert "add --tiny" in capsys.readouterr().err

def _fp8_gpu():
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)

@pytest.mark.skipif(not _fp8_gpu(), reason="needs a CUDA GPU with FP8 tensor cores (capability 8.9+)")
def test_fp8_on_the_gpu_within_the_derived_tolerance():
    "On an FP8 GPU: cuBLAS's _scaled_mm (fast accumulation forward) stays within the tolerance derived for the CPU."
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(4096, 1536, device="cuda", generator=g, requires_grad=True)
    w = (torch.randn(6144, 1536, device="cuda", generator=g) * 0.02).requires_grad_()
    lin = Float8Linear.from_linear(nn.Linear(1536, 6144, bias=False, device="cuda"))
    with torch.no_grad(): lin.weight.copy_(w)
    with torch.autocast("cuda", dtype=torch.bfloat16): y = lin(x)
    ref = F.linear(x.bfloat16(), w.bfloat16()).float()
    assert ((y.float() - ref).norm() / ref.norm()).item() < 1.3 * matmul_rms(E4M3, E4M3)
    y.float().square().mean().backward()
    assert torch.isfinite(lin.weight.grad).all() and torch.isfinite(x.grad).all()
