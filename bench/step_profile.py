"""Where one training step of the CPU preset spends its time, fp32 against the automatic compute dtype.

The model, both optimizers and the micro-batch shape of speedrun.sh's CPU base_train (d4, 256 tokens x 16 rows,
2 micro-batches a step, vocab 8192), on random tokens; `torch.profiler` over `--steps` steps after two warm-up
steps, then the ops that take the most time (self CPU time, summed over the steps, per step) and the step's
split into forward, backward and the optimizers. It answers "what is still not a matmul" for bench/train.py's
ratio, on the allocator this process runs on (the default re-runs under dev/malloc.sh's tcmalloc, as the
pipeline's stages do; NANOCHAT_MALLOC=system keeps glibc's).

    python bench/step_profile.py                 # both dtypes, top 12 ops
    python bench/step_profile.py --top 25 --dtypes bfloat16
"""
import argparse, time
import torch
from torch.profiler import profile, record_function, ProfilerActivity
from _malloc import rerun_on_tcmalloc   # bench/_malloc.py
from nanochat.common import autodetect_device_type, compute_dtype, malloc_name
from nanochat.gpt import GPT, config_from_depth, autocast_ctx
import nanochat.optim  # noqa: F401  (GPT.setup_optimizers)

def step(model, opts, batches, dtype):
    with record_function("## forward+backward"):
        for x, y in batches:
            with autocast_ctx(x.device.type, dtype): loss = model(x, y) / len(batches)
            loss.backward()
    with record_function("## optimizers"):
        for o in opts: o.step()
        model.zero_grad(set_to_none=True)

def profile_dtype(dtype, a, dev):
    torch.manual_seed(0)
    model = GPT(config_from_depth(a.depth, vocab_size=a.vocab, sequence_len=a.seq)).to(dev)
    opts = model.setup_optimizers(dtype=dtype)
    batches = [(torch.randint(0, a.vocab, (a.rows, a.seq), device=dev), torch.randint(0, a.vocab, (a.rows, a.seq), device=dev))
               for _ in range(2)]
    for _ in range(2): step(model, opts, batches, dtype)   # warm-up: allocator pools, oneDNN kernels, optimizer state
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.steps): step(model, opts, batches, dtype)
    wall = (time.perf_counter() - t) / a.steps
    ev = prof.key_averages()
    ms = lambda e: e.self_cpu_time_total / 1e3 / a.steps
    print(f"\n{dtype}: {wall * 1e3:,.0f} ms a step (profiled; {2 * a.rows * a.seq / wall:,.0f} tok/s)")
    for e in ev:
        if e.key.startswith("## "): print(f"  {e.key[3:]:<22} {e.cpu_time_total / 1e3 / a.steps:8.1f} ms")
    top = sorted((e for e in ev if not e.key.startswith("## ")), key=ms, reverse=True)[:a.top]
    print(f"  {'op (self time)':<52} {'ms/step':>8} {'share':>6} {'calls':>6}")
    for e in top: print(f"  {e.key[:52]:<52} {ms(e):8.1f} {100 * ms(e) / (wall * 1e3):5.1f}% {e.count // a.steps:6d}")

def main():
    rerun_on_tcmalloc()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rows", type=int, default=16, help="rows per micro-batch (2 micro-batches a step)")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--dtypes", nargs="+", default=["float32", "auto"])
    a = ap.parse_args()
    dev = torch.device(autodetect_device_type())
    print(f"{dev.type}, {torch.get_num_threads()} threads, {malloc_name()} malloc, d{a.depth}, {a.rows}x{a.seq} tokens x 2 micro-batches, vocab {a.vocab}")
    for name in a.dtypes:
        profile_dtype(compute_dtype(dev.type) if name == "auto" else getattr(torch, name), a, dev)

if __name__ == "__main__": main()
