"""The one-call device check: what a GPU node does with the GPU recipe's models, in one table and one JSON file.

On one CUDA GPU, no network, a few minutes: for depth 12 and 20 (vocabulary 65,536, sequence 2,048, as the gpu
recipe trains them) it runs base_train's training step (the model `torch.compile`d, bf16 autocast, Muon + AdamW
from `setup_optimizers`, gradient clipping left out as base_train does) for a few dozen steps after warm-up on random
tokens, and reports tokens/s, MFU (`estimate_flops()` x tokens/s over the GPU's bf16 peak), peak memory, KV-cache
decoding tokens/s at batch 1 and 16, and which attention kernel each layer runs (`nanochat.gpt.attention_kernel`).

    python bench/gpu.py                         # prints the table, writes bench_gpu.json
    python bench/gpu.py --depths 12 --steps 10  # quicker
    python bench/gpu.py --estimate              # no GPU needed: the 8xH100 estimate on paper (README, "On GPUs")
"""
import argparse, json, sys, time

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

# assumptions of the paper estimate, all stated in the README with it
NODE_PEAK, NODE_COST = 8 * 989e12, 24.0          # 8 x H100 dense bf16 (data sheet), $ per node-hour (~$3 per GPU-hour)
MFU_TRAIN, MFU_INFER = 0.40, 0.05                 # assumed: compiled bf16 training; batched evaluation and sampling
OTHER_TOKENS = {  # stage -> (tokens processed, FLOPs per token as a multiple of training's 6N+attention, MFU): assumed sizes
    "base_loss": (2 * 20 * 2**19, 1 / 3, MFU_INFER),        # train + val splits, forward only
    "base_eval": (3e8, 1 / 3, MFU_INFER),                   # CORE: ~90k few-shot prompts x choices, forward only
    "mid_train": (4e8, 1, MFU_TRAIN),                        # one pass over the hub mixture (SmolTalk dominates)
    "chat_sft": (5e7, 1, MFU_TRAIN),                         # one pass over the SFT mixture, padded rows
    "chat_eval (x2)": (2 * 1e8, 1 / 3, MFU_INFER),           # ChatCORE tasks: prompts + sampled answers
    "chat_rl": (200 * 16 * 16 * 400, 4 / 3, MFU_INFER),      # 200 steps x 16 prompts x 16 samples x ~400 tokens: sample + train
}

def estimate(depths=(20, 26)):
    "Wall time and cost per stage on one 8xH100 node, from the model's own FLOPs per token and the recipe's token budget."
    import torch
    from nanochat.gpt import GPT
    from nanochat.scripts.base_train import derive_recipe
    rows = []
    for d in depths:
        r = derive_recipe(d, vocab_size=65536, world_size=8)   # the gpu recipe: 65,536 tokens, 2,048 context, 2**19 per step
        with torch.device("meta"): fpt = GPT(r["config"]).estimate_flops()
        stages = {"base_train": (r["total_tokens"], 1, MFU_TRAIN), **OTHER_TOKENS}
        for name, (tokens, mult, mfu) in stages.items():
            h = tokens * fpt * mult / (NODE_PEAK * mfu) / 3600
            rows.append(dict(depth=d, stage=name, params=r["params"], flops_per_token=fpt, tokens=tokens, mfu=mfu, hours=h, dollars=h * NODE_COST))
    print(f"{'depth':>5} {'stage':<15} {'tokens':>9} {'GFLOP/tok':>9} {'MFU':>4} {'hours':>6} {'$':>5}")
    for r in rows:
        print(f"{r['depth']:>5} {r['stage']:<15} {r['tokens'] / 1e9:8.2f}B {r['flops_per_token'] / 1e9:9.2f} "
              f"{r['mfu']:4.2f} {r['hours']:6.2f} {r['dollars']:5.0f}")
    for d in depths:
        tot = [r for r in rows if r["depth"] == d]
        print(f"d{d}: {tot[0]['params'] / 1e6:.0f}M params, {tot[0]['flops_per_token'] / 1e9:.2f} GFLOP/token, "
              f"total {sum(r['hours'] for r in tot):.1f} h, ${sum(r['dollars'] for r in tot):.0f}")
    return rows

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", type=int, nargs="+", default=[12, 20])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 16], help="rows per step, one per depth")
    p.add_argument("--seq-len", type=int, default=2048); p.add_argument("--vocab-size", type=int, default=65536)
    p.add_argument("--warmup", type=int, default=5); p.add_argument("--steps", type=int, default=30)
    p.add_argument("--out", default="bench_gpu.json")
    p.add_argument("--estimate", action="store_true", help="print the 8xH100 estimate on paper (no GPU needed) and exit")
    a = p.parse_args(argv)
    if a.estimate: return estimate()
    import torch
    if not torch.cuda.is_available():
        sys.exit("bench/gpu.py needs a CUDA GPU and torch.cuda.is_available() is False here; on a CPU run bench/model.py")
    if len(a.batch_sizes) != len(a.depths): p.error(f"--batch-sizes needs one value per depth ({len(a.depths)})")
    from nanochat.common import get_peak_flops
    from nanochat.gpt import GPT, config_from_depth
    name, peak = torch.cuda.get_device_name(), get_peak_flops()
    out = dict(device=name, peak_bf16_flops=peak, torch=torch.__version__, seq_len=a.seq_len, vocab_size=a.vocab_size, rows=[])
    for d, B in zip(a.depths, a.batch_sizes):
        torch.manual_seed(0); torch.cuda.reset_peak_memory_stats()
        model = GPT(config_from_depth(d, vocab_size=a.vocab_size, sequence_len=a.seq_len)).cuda()
        t0 = time.perf_counter()
        tok_s, loss = train_rate(model, B, a.seq_len, a.warmup, a.steps)
        flops = model.estimate_flops()
        row = dict(depth=d, batch=B, params=model.num_params()["total"], flops_per_token=flops, train_tok_s=tok_s, loss=loss,
                   mfu=flops * tok_s / peak if peak else None, peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30,
                   decode_tok_s={b: decode_rate(model, b) for b in (1, 16)}, attention=kernels(model.config, a.seq_len),
                   seconds=time.perf_counter() - t0)
        out["rows"].append(row)
        del model; torch.cuda.empty_cache()
    print(f"{name}, peak bf16 {peak / 1e12:.0f} TFLOP/s" if peak else f"{name} (peak unknown: no MFU)")
    print(f"{'depth':>5} {'batch':>5} {'params':>7} {'train tok/s':>12} {'MFU':>6} {'peak GiB':>8} {'decode b1':>9} {'decode b16':>10}")
    for r in out["rows"]:
        mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] else "   n/a"
        print(f"{r['depth']:>5} {r['batch']:>5} {r['params'] / 1e6:6.0f}M {r['train_tok_s']:12,.0f} {mfu:>6} {r['peak_mem_gib']:8.1f} "
              f"{r['decode_tok_s'][1]:9,.0f} {r['decode_tok_s'][16]:10,.0f}")
    for r in out["rows"]:   # training kernel / decoding kernel, layer by layer
        print(f"d{r['depth']} attention (train / decode): " + ", ".join(f"{i}:{k}" for i, k in enumerate(r["attention"])))
    with open(a.out, "w") as f: json.dump(out, f, indent=1)
    print(f"wrote {a.out}")

if __name__ == "__main__": main()
