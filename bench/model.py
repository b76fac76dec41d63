"""Forward+backward throughput of the GPT.

CPU (always): depth 4 and 8 in fp32, eager, each next to a peer measured in the same run: the same
model with every layer full-context ("L"), which takes SDPA's fused causal path, while the default
"SSSL" pattern pays for an explicit sliding-window mask.
CUDA (only where a GPU exists): depth 12 and 20 in bf16 autocast with torch.compile, tokens/s and MFU
(model FLOPs from `GPT.estimate_flops()` over the GPU's peak from `nanochat.common.get_peak_flops`), next
to the same model run eagerly.

    python bench/model.py                      # CPU figures, plus the GPU ones when a GPU is present
    python bench/model.py --depths 4 --steps 2 # quicker
"""
import argparse, time
import torch
from nanochat.common import Timer, get_peak_flops
from nanochat.gpt import GPT, config_from_depth, autocast_ctx


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


def cuda_bench(args):
    dev = torch.device("cuda")
    peak = get_peak_flops()
    name = torch.cuda.get_device_name()
    print(f"\n{name} (peak bf16 {peak/1e12:.0f} TFLOP/s)" if peak else f"\n{name} (peak FLOP/s unknown: no MFU)")
    print(f"bf16 autocast, seq_len {args.gpu_seq_len}, vocab {args.vocab_size}")
    print(f"{'depth':>5} {'batch':>5} {'params':>8} {'compiled tok/s':>15} {'MFU':>6} {'eager tok/s':>12} {'compiled/eager':>15}")
    for d, B in zip(args.gpu_depths, args.gpu_batch_sizes):
        torch.manual_seed(0)
        model = GPT(config_from_depth(d, vocab_size=args.vocab_size, sequence_len=args.gpu_seq_len)).to(dev)
        flops = model.estimate_flops()
        eager = tokens_per_s(model, B, args.gpu_seq_len, args.vocab_size, args.steps, dev, warmup=2)
        compiled = tokens_per_s(torch.compile(model), B, args.gpu_seq_len, args.vocab_size, args.steps, dev, warmup=3)
        mfu = f"{100 * flops * compiled / peak:5.1f}%" if peak else "   n/a"
        print(f"{d:>5} {B:>5} {model.num_params()['total']/1e6:7.0f}M {compiled:15.0f} {mfu:>6} {eager:12.0f} {compiled/eager:15.2f}")
        del model; torch.cuda.empty_cache()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", type=int, nargs="+", default=[4, 8], help="CPU depths")
    p.add_argument("--batch-size", type=int, default=2, help="CPU rows per step")
    p.add_argument("--seq-len", type=int, default=256, help="CPU tokens per row")
    p.add_argument("--vocab-size", type=int, default=32768)
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement (median reported)")
    p.add_argument("--gpu-depths", type=int, nargs="+", default=[12, 20])
    p.add_argument("--gpu-batch-sizes", type=int, nargs="+", default=[16, 8], help="rows per step, one per GPU depth")
    p.add_argument("--gpu-seq-len", type=int, default=2048)
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU figures")
    args = p.parse_args()
    if len(args.gpu_batch_sizes) != len(args.gpu_depths):
        p.error(f"--gpu-batch-sizes needs one value per --gpu-depths ({len(args.gpu_depths)})")
    t0 = time.time()
    if not args.no_cpu: cpu_bench(args)
    if torch.cuda.is_available(): cuda_bench(args)
    else: print("\nno CUDA GPU here: the depth 12/20 bf16 + torch.compile figures (tokens/s, MFU) need one")
    print(f"\n({time.time() - t0:.0f} s)")
