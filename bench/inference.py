"""Inference speed: the KV cache against full recomputation, batched sampling, and (serving) web latency.

1. Decode tokens/s of one sequence at several context lengths: with the KV cache (each step feeds one
   token and attends to the cached keys) next to full recomputation (each step runs the whole context
   again), measured side by side in the same run on the same model. The ratio is what the cache buys.
2. Batched sampling through `Engine.generate`: total tokens/s for num_samples 1, 4, 16 from one prompt
   (one batch-1 prefill, then `KVCache.expand`), next to num_samples=1. Then many different prompts (an evaluation's
   shape): greedy replies one prompt after another (`generate_batch` each) next to all of them in one left-padded
   batch (`generate_batches`); the replies must be the same, token for token.
Both in fp32 and in bf16 (autocast, bf16 KV cache: what `compute_dtype` picks where the device does bf16
natively), side by side in the same run.
3. Web server latency (p50/p95 at 1, 8, 32 concurrent clients): `server_latency`, the serving part.

    python bench/inference.py                         # CPU: depth 4, contexts 64 256 1024
    python bench/inference.py --contexts 64 256 --steps 8
    python bench/inference.py --device cuda --depth 12 --contexts 256 1024 2048
"""
import argparse, time
import torch
from nanochat.gpt import GPT, config_from_depth, autocast_ctx
from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
from nanochat.engine import Engine


def _sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


@torch.inference_mode()
def decode_tok_s(model, ctx, steps, dev, dtype=torch.float32):
    "(KV-cache tokens/s, full-recompute tokens/s) for `steps` greedy tokens after a `ctx`-token context."
    V = model.config.vocab_size
    prompt = torch.randint(0, V, (1, ctx), generator=torch.Generator().manual_seed(ctx)).to(dev)
    with autocast_ctx(dev.type, dtype):
        warm = model.new_kv_cache(1, 8, dtype=dtype); model(prompt[:, :4], kv_cache=warm); model(prompt[:, 4:5], kv_cache=warm)
        # KV cache: prefill (untimed), then one token per step
        cache = model.new_kv_cache(1, ctx + steps, dtype=dtype)
        nxt = model(prompt, kv_cache=cache)[:, -1].argmax(-1, keepdim=True)
        _sync(dev); t0 = time.perf_counter()
        for _ in range(steps): nxt = model(nxt, kv_cache=cache)[:, -1].argmax(-1, keepdim=True)
        _sync(dev); kv = steps / (time.perf_counter() - t0)
        # full recompute: the whole (growing) sequence every step
        seq = prompt
        model(seq[:, -8:])  # warm-up of the no-cache path
        _sync(dev); t0 = time.perf_counter()
        for _ in range(steps):
            nxt = model(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        _sync(dev); full = steps / (time.perf_counter() - t0)
    return kv, full


def sampling_tok_s(engine, prompt, num_samples, max_tokens, dev):
    "(tokens generated, seconds) for one `engine.generate` call, prefill included."
    _sync(dev); t0 = time.perf_counter(); n = 0
    for column, _ in engine.generate(prompt, num_samples=num_samples, max_tokens=max_tokens, temperature=1.0, top_k=50, seed=0):
        n += sum(t is not None for t in column)
    _sync(dev)
    return n, time.perf_counter() - t0


def many_prompts(engine, prompts, max_tokens, dev, together: bool):
    "(greedy replies, seconds) for `prompts`: one `generate_batch` per prompt, or one `generate_batches` for all."
    _sync(dev); t0 = time.perf_counter()
    if together: outs = [r[0][0] for r in engine.generate_batches(prompts, max_tokens=max_tokens, temperature=0)]
    else: outs = [engine.generate_batch(p, max_tokens=max_tokens, temperature=0)[0][0] for p in prompts]
    _sync(dev)
    return outs, time.perf_counter() - t0


def server_latency(args):
    "3. The web server under load: bench/server.py (real uvicorn on loopback), run from here so one command prints every figure."
    import subprocess, sys
    from pathlib import Path
    print("\n3. web server latency at 1, 8 and 32 concurrent clients (bench/server.py)", flush=True)
    dev = str(getattr(args, "device", "cpu")).split(":")[0]
    subprocess.run([sys.executable, str(Path(__file__).with_name("server.py")), "--depth", str(args.depth), "--device-type", dev], check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--vocab-size", type=int, default=32768)
    p.add_argument("--contexts", type=int, nargs="+", default=[64, 256, 1024], help="context lengths for the decode comparison")
    p.add_argument("--steps", type=int, default=16, help="decoded tokens per measurement")
    p.add_argument("--samples", type=int, nargs="+", default=[1, 4, 16], help="num_samples for the batched-sampling figures")
    p.add_argument("--sample-prompt", type=int, default=128, help="prompt tokens for the batched-sampling figures")
    p.add_argument("--sample-tokens", type=int, default=64, help="max_tokens per sample")
    p.add_argument("--many", type=int, default=32, help="prompts of different lengths for the one-by-one vs batched figures")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-server", action="store_true", help="skip part 3 (the web server's latency)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: decode steps are small ops, and extra threads stall on a busy machine)")
    args = p.parse_args()
    dev = torch.device(args.device)
    torch.set_num_threads(args.threads)
    seq_len = max(max(args.contexts) + args.steps, args.sample_prompt + args.sample_tokens)
    torch.manual_seed(0)
    model = GPT(config_from_depth(args.depth, vocab_size=args.vocab_size, sequence_len=seq_len)).to(dev).eval()
    n = model.num_params()["total"]
    where = f"{torch.get_num_threads()} CPU threads" if dev.type == "cpu" else torch.cuda.get_device_name()
    print(f"depth {args.depth} ({n / 1e6:.1f}M parameters), vocab {args.vocab_size}, {where}")

    print(f"\n1. decode, batch 1, {args.steps} greedy tokens after the context")
    print(f"{'context':>8} {'dtype':>6} {'KV cache tok/s':>15} {'recompute tok/s':>16} {'cache/recompute':>16} {'bf16/fp32 (cache)':>18}")
    for ctx in args.contexts:
        kv32, full32 = decode_tok_s(model, ctx, args.steps, dev, torch.float32)
        kv16, full16 = decode_tok_s(model, ctx, args.steps, dev, torch.bfloat16)
        print(f"{ctx:>8} {'fp32':>6} {kv32:15.1f} {full32:16.1f} {kv32 / full32:16.1f}")
        print(f"{'':>8} {'bf16':>6} {kv16:15.1f} {full16:16.1f} {kv16 / full16:16.1f} {kv16 / kv32:18.2f}")

    tok = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)})   # its special ids lie inside the model's vocab
    engines = {"fp32": Engine(model, tok, torch.float32), "bf16": Engine(model, tok, torch.bfloat16)}
    prompt = [tok.bos_token_id] + torch.randint(0, 256, (args.sample_prompt - 1,), generator=torch.Generator().manual_seed(1)).tolist()
    print(f"\n2. batched sampling: {args.sample_prompt}-token prompt, up to {args.sample_tokens} tokens per sample, "
          "temperature 1, top-k 50, prefill included")
    print(f"{'samples':>8} {'dtype':>6} {'tokens':>7} {'seconds':>8} {'tok/s':>8} {'vs 1 sample':>12} {'bf16/fp32':>10}")
    for e in engines.values(): sampling_tok_s(e, prompt, 1, 4, dev)   # warm-up
    base = {}
    for ns in args.samples:
        rate = {}
        for name, e in engines.items():
            ntok, sec = sampling_tok_s(e, prompt, ns, args.sample_tokens, dev)
            rate[name] = ntok / sec; base.setdefault(name, rate[name])
            ratio = f"{rate['bf16'] / rate['fp32']:10.2f}" if name == "bf16" else ""
            print(f"{ns if name == 'fp32' else '':>8} {name:>6} {ntok:>7} {sec:8.2f} {ntok / sec:8.1f} {ntok / sec / base[name]:12.2f} {ratio}")

    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(16, args.sample_prompt + 1, (args.many,), generator=g).tolist()
    prompts = [[tok.bos_token_id] + torch.randint(0, 256, (n - 1,), generator=g).tolist() for n in lengths]
    print(f"\n   {args.many} prompts of {min(lengths)}-{max(lengths)} tokens, up to {args.sample_tokens} greedy tokens each, prefill included")
    print(f"{'':>8} {'dtype':>6} {'one by one s':>13} {'batched s':>10} {'speed-up':>9} {'same replies':>13}")
    for name, e in engines.items():
        one, t_one = many_prompts(e, prompts, args.sample_tokens, dev, together=False)
        many, t_many = many_prompts(e, prompts, args.sample_tokens, dev, together=True)
        same = sum(a == b for a, b in zip(one, many))
        print(f"{'':>8} {name:>6} {t_one:13.2f} {t_many:10.2f} {t_one / t_many:9.1f} {f'{same}/{len(prompts)}':>13}")

    if not args.no_server: server_latency(args)


if __name__ == "__main__":
    main()
