"""The compute dtype: the auto rule on injected hardware facts, a bf16 step against an fp32 step, and base_train
with --dtype float32 / bfloat16 (val bpb within 2%, fp32 checkpoints that load and evaluate in either dtype)."""
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
    cos = [torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item() for a, b in zip(g32, g16) if a.norm() > 0]
    assert min(cos) > 0.99, cos

def _val_bpb(out: str) -> float: return float(re.findall(r"val bpb (\d+\.\d+)", out)[-1])

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
