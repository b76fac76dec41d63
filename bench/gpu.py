"""The one-call device check: what a GPU does with the GPU recipe's models, in one table and one JSON file.

On one CUDA GPU, no network needed (FA3 is used only if its kernel is already cached), a few minutes. For depth 12 and
24 (vocabulary 32,768, sequence 2,048, as the gpu recipe trains them), each with FP8 off and on, it runs base_train's
training step (the model `torch.compile`d, bf16 autocast, Muon + AdamW from `setup_optimizers`) for a few dozen steps
after warm-up on random tokens, and reports tokens/s, MFU (`estimate_flops()` x tokens/s over the GPU's *bf16* peak,
for FP8 too, so the two compare), peak memory, the attention kernel of every layer and attention's share of the step
(attention forward + backward at the step's shapes, timed alone, over the step's time). Then a decode benchmark in the
manner of the reference's scripts/infer_bench.py: time to first token (a batch-1 prefill of the prompt, the cache
copied to every row, the first token), per-step latency and memory-bandwidth utilisation (weights + the KV cache read
per step over the GPU's peak bandwidth) at batch 1, 8 and 32.

    python bench/gpu.py                          # prints the tables, writes bench_gpu.json
    python bench/gpu.py --depths 12 --steps 10   # quicker
    python bench/gpu.py --device cpu --tiny      # a smoke run of every measurement on a tiny model (no GPU; numbers meaningless)
    python bench/gpu.py --estimate               # no GPU needed: the 8xH100 estimate on paper (README, "On GPUs")
"""
import argparse, json, statistics, sys, time

def kernels(config, T: int) -> list[str]:
    "Attention kernel of every layer, in training (whole sequences) and in KV-cache decoding."
    from nanochat.gpt import attention_kernel
    return [f"{attention_kernel('cuda', w, T, T, compiled=True)} / {attention_kernel('cuda', w, 1, T, q_start=T - 1, cached=True)}"
            for w in config.window_sizes()]

def sync(dev):
    import torch
    if dev.type == "cuda": torch.cuda.synchronize()

def train_rate(model, B, T, warmup, steps, compile=True):
    "tokens/s of base_train's step: compiled forward, backward, both optimizers, on random tokens."
    import torch
    from nanochat.gpt import autocast_ctx
    import nanochat.optim  # noqa: F401  (adds GPT.setup_optimizers)
    dev = model.wte.weight.device
    fwd, opts = torch.compile(model, dynamic=False) if compile else model, model.setup_optimizers()
    x = torch.randint(0, model.config.vocab_size, (B, T + 1), device=dev)
    for i in range(warmup + steps):
        if i == warmup: sync(dev); t0 = time.perf_counter()
        with autocast_ctx(dev.type): loss = fwd(x[:, :-1], x[:, 1:])
        loss.backward()
        for o in opts: o.step()
        model.zero_grad(set_to_none=True)
    sync(dev)
    return B * T * steps / (time.perf_counter() - t0), loss.item()

def attention_seconds(config, B, T, dev, dtype, compile=True, reps=5):
    "Seconds of one forward + backward of every layer's attention at the step's shapes, and the kernel that ran it."
    import torch
    from nanochat.gpt import attention
    from nanochat.flash import fa3_applies, flash3_attention
    use_fa3 = fa3_applies(dev.type, dtype)
    fn = flash3_attention if use_fa3 else (torch.compile(attention, dynamic=False) if compile else attention)
    H, Hkv, D = config.n_head, config.n_kv_head, config.head_dim
    total, seen = 0.0, {}
    for w in config.window_sizes():
        if w not in seen:   # layers with the same window cost the same: time each window once
            q = torch.randn(B, H, T, D, device=dev, dtype=dtype, requires_grad=True)
            k, v = (torch.randn(B, Hkv, T, D, device=dev, dtype=dtype, requires_grad=True) for _ in range(2))
            g = torch.randn(B, H, T, D, device=dev, dtype=dtype)
            for i in range(reps + 2):
                if i == 2: sync(dev); t0 = time.perf_counter()
                fn(q, k, v, w).backward(g)
            sync(dev); seen[w] = (time.perf_counter() - t0) / reps
        total += seen[w]
    return total, "fa3" if use_fa3 else "sdpa/flex (nanochat.gpt.attention)"

def decode_rate(model, B, prompt=128, new=128):
    "tokens/s of greedy KV-cache decoding for `B` rows (after a `prompt`-token prefill, not timed)."
    import torch
    from nanochat.gpt import autocast_ctx
    dev = model.wte.weight.device
    with torch.inference_mode(), autocast_ctx(dev.type):
        cache = model.new_kv_cache(B, prompt + new)
        ids = model(torch.randint(0, model.config.vocab_size, (B, prompt), device=dev), kv_cache=cache)[:, -1:].argmax(-1)
        sync(dev); t0 = time.perf_counter()
        for _ in range(new - 1): ids = model(ids, kv_cache=cache)[:, -1:].argmax(-1)
        sync(dev)
    return B * (new - 1) / (time.perf_counter() - t0)

PEAK_BANDWIDTH = {"H200": 4.8e12, "H100 PCIe": 2.0e12, "H100": 3.35e12, "H800": 3.35e12, "GH200": 4.0e12, "B200": 8.0e12,
                  "A100-SXM4-80GB": 2.04e12, "A100 80GB PCIe": 1.94e12, "A100": 1.555e12, "L40S": 0.864e12, "L4": 0.3e12,
                  "A10": 0.6e12, "RTX 4090": 1.008e12}   # bytes/s, the vendors' data sheets; longest name that matches wins

def peak_bandwidth(name: str) -> float | None:
    for k in sorted(PEAK_BANDWIDTH, key=len, reverse=True):
        if k.lower() in name.lower(): return PEAK_BANDWIDTH[k]
    return None

def kv_read_bytes(config, context: int, itemsize: int) -> int:
    "Bytes of keys and values one decode step reads per row: each layer reads min(context, window) positions."
    return sum(2 * config.n_kv_head * config.head_dim * itemsize * min(context, w) for w in config.window_sizes())

def decode_bench(model, batch_sizes=(1, 8, 32), prompt=512, new=128, peak_bw=None):
    "infer_bench-style rows: time to first token, per-step latency (median, p90), tokens/s and bandwidth utilisation per batch size."
    import torch
    from nanochat.gpt import autocast_ctx
    from nanochat.common import compute_dtype
    dev = model.wte.weight.device
    itemsize = compute_dtype(dev.type).itemsize                       # the cache holds k, v in the compute dtype
    w_bytes = sum(p.numel() * p.element_size() for p in model.parameters())   # every step reads all weights as stored
    prompt_ids = torch.randint(0, model.config.vocab_size, (1, prompt), device=dev)
    with torch.inference_mode(), autocast_ctx(dev.type):   # warm-up, untimed: the first calls pay for kernel choice and allocation
        cache = model.new_kv_cache(1, prompt + 2)
        model(prompt_ids, kv_cache=cache); model(prompt_ids[:, :1], kv_cache=cache)
    rows = []
    for B in batch_sizes:
        with torch.inference_mode(), autocast_ctx(dev.type):
            sync(dev); t0 = time.perf_counter()
            cache = model.new_kv_cache(1, prompt + new)
            logits = model(prompt_ids, kv_cache=cache)[:, -1]       # prefill once at batch 1, as the engine does
            cache = cache.expand(B) if B > 1 else cache
            ids = logits.argmax(-1, keepdim=True).expand(B, 1).contiguous()
            sync(dev); ttft = time.perf_counter() - t0
            steps = []
            for _ in range(new - 1):
                t1 = time.perf_counter()
                ids = model(ids, kv_cache=cache)[:, -1:].argmax(-1)
                sync(dev); steps.append(time.perf_counter() - t1)
        step = statistics.median(steps)
        read = w_bytes + B * kv_read_bytes(model.config, prompt + new // 2, itemsize)   # mid-generation context
        rows.append(dict(batch=B, ttft_ms=1e3 * ttft, step_ms=1e3 * step, step_p90_ms=1e3 * sorted(steps)[int(0.9 * (len(steps) - 1))],
                         tok_s=B / step, bytes_per_step=read, mbu=read / step / peak_bw if peak_bw else None))
    return rows

# assumptions of the paper estimate, all stated in the README with it
NODE_PEAK, NODE_COST = 8 * 989e12, 24.0          # 8 x H100 dense bf16 (data sheet), $ per node-hour (~$3 per GPU-hour)
MFU_TRAIN, MFU_INFER = 0.40, 0.05                 # assumed: compiled bf16 training; batched evaluation and sampling
FP8_SPEEDUP = 1.17                                # the reference's dev/LOG.md (2026-02-02): d26 tok/s 740K FP8 / 630K bf16
OTHER_TOKENS = {  # stage -> (tokens processed, FLOPs per token as a multiple of training's 6N+attention, MFU): assumed sizes
    "base_loss": (2 * 20 * 2**19, 1 / 3, MFU_INFER),        # train + val splits, forward only
    "base_eval": (3e8, 1 / 3, MFU_INFER),                   # CORE: ~90k few-shot prompts x choices, forward only
    "mid_train": (4e8, 1, MFU_TRAIN),                        # one pass over the hub mixture (SmolTalk dominates)
    "chat_sft": (5e7, 1, MFU_TRAIN),                         # one pass over the SFT mixture, padded rows
    "chat_eval (x2)": (2 * 1e8, 1 / 3, MFU_INFER),           # ChatCORE tasks: prompts + sampled answers
    "chat_rl": (200 * 16 * 16 * 400, 4 / 3, MFU_INFER),      # 200 steps x 16 prompts x 16 samples x ~400 tokens: sample + train
}

def estimate(depths=(24,), ratio=8, total_batch=2**20, fp8=True, vocab_size=32768):
    "Wall time and cost per stage on one 8xH100 node, from the model's own FLOPs per token and the recipe's token budget."
    import torch
    from nanochat.gpt import GPT
    from nanochat.scripts.base_train import derive_recipe
    rows = []
    for d in depths:
        r = derive_recipe(d, vocab_size=vocab_size, world_size=8, total_batch_size=total_batch, target_param_data_ratio=ratio)
        with torch.device("meta"): fpt = GPT(r["config"]).estimate_flops()
        train_mfu = MFU_TRAIN * (FP8_SPEEDUP if fp8 else 1)      # FP8's gain as bf16-equivalent MFU
        stages = {"base_train": (r["total_tokens"], 1, train_mfu), **OTHER_TOKENS}
        for name, (tokens, mult, mfu) in stages.items():
            h = tokens * fpt * mult / (NODE_PEAK * mfu) / 3600
            rows.append(dict(depth=d, stage=name, params=r["params"], flops_per_token=fpt, tokens=tokens, mfu=mfu, hours=h, dollars=h * NODE_COST))
    fp8_note = f"FP8 on (base_train's MFU x{FP8_SPEEDUP}, the reference's logged FP8 gain)" if fp8 else "FP8 off"
    print(f"ESTIMATE on paper, not a measurement: d{'/'.join(map(str, depths))} at {ratio} tokens per scaling parameter, "
          f"{total_batch:,} tokens per step, {fp8_note}, vocabulary {vocab_size:,}; 8 x H100 at an assumed {MFU_TRAIN:.0%} "
          f"training MFU, ${NODE_COST:.0f}/node-hour")
    print(f"{'depth':>5} {'stage':<15} {'tokens':>9} {'GFLOP/tok':>9} {'MFU':>4} {'hours':>6} {'$':>5}")
    for r in rows:
        print(f"{r['depth']:>5} {r['stage']:<15} {r['tokens'] / 1e9:8.2f}B {r['flops_per_token'] / 1e9:9.2f} "
              f"{r['mfu']:4.2f} {r['hours']:6.2f} {r['dollars']:5.0f}")
    for d in depths:
        tot = [r for r in rows if r["depth"] == d]
        print(f"d{d}: {tot[0]['params'] / 1e6:.0f}M params, {tot[0]['flops_per_token'] / 1e9:.2f} GFLOP/token, base_train "
              f"{tot[0]['hours']:.2f} h, total {sum(r['hours'] for r in tot):.1f} h, ${sum(r['dollars'] for r in tot):.0f}")
    ref_h = 1.65   # the reference nanochat's README leaderboard, entry #6: d24 to GPT-2's CORE, 8xH100, measured
    base = [r for r in rows if r["stage"] == "base_train" and r["depth"] == 24]
    implied = f"; at our FLOPs and tokens for d24 that is {base[0]['tokens'] * base[0]['flops_per_token'] / (NODE_PEAK * ref_h * 3600):.0%} " \
              "bf16-equivalent MFU" if base else ""
    print(f"For comparison, measured by the reference nanochat (its README leaderboard, entry #6): d24 base training "
          f"to GPT-2's CORE in {ref_h} h on 8xH100{implied}.")
    return rows

def train_row(depth, B, fp8, a, dev, peak):
    "One (depth, FP8) measurement; an out-of-memory or an FP8 refusal becomes the row's `error` instead of ending the run."
    import torch
    from nanochat.gpt import GPT, config_from_depth
    from nanochat.common import compute_dtype
    row = dict(depth=depth, batch=B, fp8=fp8)
    if dev.type == "cuda": torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    try:
        torch.manual_seed(0)
        model = GPT(config_from_depth(depth, vocab_size=a.vocab_size, sequence_len=a.seq_len)).to(dev)
        if fp8:
            from nanochat.fp8 import convert_to_fp8
            row["fp8_layers"] = convert_to_fp8(model, min_dim=a.fp8_min_dim)
        t0 = time.perf_counter()
        tok_s, loss = train_rate(model, B, a.seq_len, a.warmup, a.steps, compile=dev.type == "cuda")
        attn_s, attn_kernel = attention_seconds(model.config, B, a.seq_len, dev, compute_dtype(dev.type), compile=dev.type == "cuda")
        flops = model.estimate_flops()
        row.update(params=model.num_params()["total"], flops_per_token=flops, train_tok_s=tok_s, loss=loss,
                   mfu=flops * tok_s / peak if peak else None, attention_kernel=attn_kernel, attention_share=attn_s / (B * a.seq_len / tok_s),
                   peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
                   attention=kernels(model.config, a.seq_len), seconds=time.perf_counter() - t0)
        return row, model
    except (torch.OutOfMemoryError, RuntimeError, ValueError) as e:
        row["error"] = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        return row, None

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", type=int, nargs="+", default=[12, 24])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 16], help="rows per step, one per depth")
    p.add_argument("--seq-len", type=int, default=2048); p.add_argument("--vocab-size", type=int, default=32768)
    p.add_argument("--warmup", type=int, default=5); p.add_argument("--steps", type=int, default=30)
    p.add_argument("--decode-batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--prompt", type=int, default=512, help="decode benchmark: prompt tokens"); p.add_argument("--new", type=int, default=128)
    p.add_argument("--fp8-min-dim", type=int, default=128, help="convert_to_fp8's min_dim")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: only with --tiny, a smoke run")
    p.add_argument("--tiny", action="store_true", help="a tiny model, a few steps: checks that every measurement runs")
    p.add_argument("--out", default="bench_gpu.json")
    p.add_argument("--estimate", action="store_true", help="print the 8xH100 estimate on paper (no GPU needed) and exit")
    a = p.parse_args(argv)
    if a.estimate: return estimate()
    import torch
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA GPU and torch.cuda.is_available() is False here; on a CPU run bench/model.py")
    if a.device == "cpu" and not a.tiny: p.error("--device cpu measures nothing worth reporting: add --tiny for a smoke run, or use bench/model.py")
    if a.tiny:   # depth 2 at width 128: the FP8 path converts its 128-wide layers; short sequences and few steps
        a.depths, a.batch_sizes, a.seq_len, a.vocab_size, a.warmup, a.steps, a.prompt, a.new = [2], [4], 64, 512, 1, 2, 16, 8
    if len(a.batch_sizes) != len(a.depths): p.error(f"--batch-sizes needs one value per depth ({len(a.depths)})")
    from nanochat.common import get_peak_flops
    from nanochat.flash import load_flash_attention3
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    peak, bw = (get_peak_flops(), peak_bandwidth(name)) if dev.type == "cuda" else (None, None)
    fa3, fa3_why = load_flash_attention3()
    out = dict(device=name, peak_bf16_flops=peak, peak_bandwidth=bw, torch=torch.__version__, seq_len=a.seq_len,
               vocab_size=a.vocab_size, flash_attention_3=fa3_why, train=[], decode=[])
    print(f"{name}: peak bf16 {peak / 1e12:.0f} TFLOP/s" if peak else f"{name}: peak unknown (no MFU)",
          f"| bandwidth {bw / 1e12:.2f} TB/s" if bw else "| bandwidth unknown (no MBU)", f"| attention: {fa3_why}")
    for d, B in zip(a.depths, a.batch_sizes):
        for fp8 in (False, True):
            row, model = train_row(d, B, fp8, a, dev, peak)
            out["train"].append(row)
            if model is not None and not fp8:   # decode in bf16: FP8 is a training speed-up
                out["decode"] += [dict(depth=d, **r) for r in decode_bench(model, a.decode_batches, a.prompt, a.new, bw)]
            del model
    print(f"{'depth':>5} {'fp8':>4} {'batch':>5} {'params':>7} {'train tok/s':>12} {'MFU':>6} {'attn':>5} {'peak GiB':>8}")
    for r in out["train"]:
        if "error" in r: print(f"{r['depth']:>5} {r['fp8']!s:>4} {r['batch']:>5}  {r['error']}"); continue
        mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] else "   n/a"
        mem = f"{r['peak_mem_gib']:8.1f}" if r["peak_mem_gib"] is not None else "     n/a"
        print(f"{r['depth']:>5} {r['fp8']!s:>4} {r['batch']:>5} {r['params'] / 1e6:6.0f}M {r['train_tok_s']:12,.0f} {mfu:>6} "
              f"{100 * r['attention_share']:4.0f}% {mem}")
    print(f"{'depth':>5} {'batch':>5} {'TTFT ms':>8} {'step ms':>8} {'p90 ms':>7} {'tok/s':>9} {'MBU':>6}")
    for r in out["decode"]:
        mbu = f"{100 * r['mbu']:5.1f}%" if r["mbu"] else "   n/a"
        print(f"{r['depth']:>5} {r['batch']:>5} {r['ttft_ms']:8.1f} {r['step_ms']:8.2f} {r['step_p90_ms']:7.2f} {r['tok_s']:9,.0f} {mbu:>6}")
    for r in out["train"]:   # training kernel / decoding kernel, layer by layer
        if "attention" in r and not r["fp8"]:
            print(f"d{r['depth']} attention (train / decode): " + ", ".join(f"{i}:{k}" for i, k in enumerate(r["attention"])))
    with open(a.out, "w") as f: json.dump(out, f, indent=1)
    print(f"wrote {a.out}")
    return out

if __name__ == "__main__": main()
