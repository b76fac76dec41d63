"""Forward+backward throughput of the GPT.

CPU (always): depth 4 and 8 in fp32, eager, each next to a peer measured in the same run: the same
model with every layer full-context ("L"), which takes SDPA's fused causal path, while the default
"SSSL" pattern pays for an explicit sliding-window mask.
On a GPU, `python bench/gpu.py` measures the real training step (bf16, compiled), MFU, memory and decoding.

    python bench/model.py                      # CPU figures
    python bench/model.py --depths 4 --steps 2 # quicker
"""
import argparse, time
import torch
from nanochat.common import Timer
from nanochat.gpt import GPT, config_from_depth, autocast_ctx, describe_attention


def tokens_per_s(model, batch_size, seq_len, vocab_size, steps, device, warmup=1):
    "Median tokens/s of `steps` timed forward+backward passes (after `warmup` untimed ones)."
    x = torch.randint(0, vocab_size, (batch_size, seq_len + 1), device=device)
    times = []
    for i in range(warmup + steps):
        with Timer() as t:
            with autocast_ctx(device.type):
                loss = model(x[:, :-1], x[:, 1:])
            loss.backward()
        model.zero_grad(set_to_none=True)
        if i >= warmup: times.append(t.seconds)
    return batch_size * seq_len / sorted(times)[len(times) // 2]


def cpu_bench(args):
    dev = torch.device("cpu")
    print(f"CPU, fp32 eager, {torch.get_num_threads()} threads, batch {args.batch_size} x {args.seq_len} tokens, vocab {args.vocab_size}")
    print("attention:", describe_attention("cpu", compiled=False, dtype=torch.float32, sequence_len=args.seq_len))
    print(f"{'depth':>5} {'params':>8} {'GFLOP/tok':>9} {'SSSL tok/s':>11} {'GFLOP/s':>8} {'all-L tok/s':>12} {'SSSL/L':>7}")
    for d in args.depths:
        res = {}
        for pat in ("SSSL", "L"):
            torch.manual_seed(0)
            model = GPT(config_from_depth(d, vocab_size=args.vocab_size, sequence_len=args.seq_len, window_pattern=pat))
            res[pat] = tokens_per_s(model, args.batch_size, args.seq_len, args.vocab_size, args.steps, dev)
            if pat == "SSSL": flops, nparams = model.estimate_flops(), model.num_params()["total"]
            del model
        print(f"{d:>5} {nparams/1e6:7.1f}M {flops/1e9:9.3f} {res['SSSL']:11.0f} {flops*res['SSSL']/1e9:8.1f} "
              f"{res['L']:12.0f} {res['SSSL']/res['L']:7.2f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", type=int, nargs="+", default=[4, 8], help="CPU depths")
    p.add_argument("--batch-size", type=int, default=2, help="CPU rows per step")
    p.add_argument("--seq-len", type=int, default=256, help="CPU tokens per row")
    p.add_argument("--vocab-size", type=int, default=32768)
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement (median reported)")
    args = p.parse_args()
    t0 = time.time()
    cpu_bench(args)
    print(f"\n({time.time() - t0:.0f} s)")
