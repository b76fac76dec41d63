"""Training throughput of the real loop, fp32 against the automatic compute dtype, side by side in one run.

It runs `nanochat.scripts.base_train` itself (dataloader thread, gradient accumulation, both optimizers,
logging) for a few steps with `--dtype float32` and with `--dtype auto` (bf16 where the device does it
natively: Ampere+ GPUs, CPUs with AMX or AVX512-BF16), alternating the two `--repeats` times so a busy
machine slows both alike, and reads the script's progress lines. Beside them: the achieved GFLOP/s
(estimate_flops() x tokens/s) and the measured matmul peak of this device in each dtype (a 4096x1024 @
1024x1024 matmul), so a reader sees how close to the machine's limit the loop runs. On a GPU whose vendor
peak is known, MFU too. `--adamw` adds the earlier peer: plain torch.optim.AdamW on every parameter.

    python bench/train.py                  # the CPU preset's shape (speedrun.sh's base_train flags)
    python bench/train.py --depths 4 6     # other depths, same shape
    python bench/train.py --depths 12 20   # on a GPU node (one GPU; add torchrun yourself for more)
    NANOCHAT_MALLOC=system python bench/train.py   # on glibc's malloc (the default re-runs under dev/malloc.sh's tcmalloc)

Both dtypes run on the same allocator: tcmalloc, as speedrun.sh's stages do (dev/malloc.sh), unless
NANOCHAT_MALLOC=system; the header line says which.
"""
import argparse, contextlib, io, os, re, statistics, tempfile, time
import torch
from _malloc import rerun_on_tcmalloc   # bench/_malloc.py
from nanochat.common import get_peak_flops, autodetect_device_type, compute_dtype, malloc_name
from nanochat.dataset import data_dir
from nanochat.gpt import GPT
import nanochat.scripts.base_train as bt

def loop_tok_s(argv) -> list[float]:
    "The tokens/s of the script's logged steps (the first step, with its warm-up, excluded)."
    out = io.StringIO()
    with contextlib.redirect_stdout(out): bt.main(argv)
    return [float(m[1].replace(",", "")) for m in re.finditer(r"\| ([\d,]+) tok/s", out.getvalue())][1:]

def matmul_flops(dtype, dev, n: int = 20) -> float:
    "Achieved FLOP/s of a 4096x1024 @ 1024x1024 matmul in `dtype` (the best of 3 timings of `n` matmuls)."
    a, b = torch.randn(4096, 1024, device=dev, dtype=dtype), torch.randn(1024, 1024, device=dev, dtype=dtype)
    best = 0.0
    for _ in range(3):
        a @ b; sync(dev); t = time.perf_counter()
        for _ in range(n): a @ b
        sync(dev); best = max(best, 2 * 4096 * 1024 * 1024 * n / (time.perf_counter() - t))
    return best

def sync(dev): torch.cuda.synchronize() if dev.type == "cuda" else None

def adamw_only(self, *a, **k):
    "The --adamw peer: plain torch.optim.AdamW on everything, with the groups' lrs of the real setup."
    opt = torch.optim.AdamW(self.parameters(), lr=3e-4, betas=(0.8, 0.95), eps=1e-10, weight_decay=0.0)
    for g in opt.param_groups: g["initial_lr"] = g["lr"]
    class NoMuon:  # the loop sets momentum on optimizers[1]
        param_groups = []
        def step(self): pass
        def state_dict(self): return {}   # the loop checkpoints at its end
    return [opt, NoMuon()]

def main():
    rerun_on_tcmalloc()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", type=int, nargs="+", default=None)
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per run (the first is not timed)")
    ap.add_argument("--repeats", type=int, default=2, help="fp32/auto pairs, alternated")
    ap.add_argument("--compile", type=int, default=0, help="torch.compile in both runs")
    ap.add_argument("--adamw", action="store_true", help="also run the AdamW-only peer (auto dtype)")
    a = ap.parse_args()
    dev = torch.device(autodetect_device_type()); gpu = dev.type == "cuda"
    depths = a.depths or ([12, 20] if gpu else [4])
    # read the embedded corpus (or $NANOCHAT_DATA_DIR's web shards); write the tokenizer and checkpoints into a temporary folder
    dirs = ["--data-dir", os.environ.get("NANOCHAT_DATA_DIR") or str(data_dir()), "--base-dir", tempfile.mkdtemp()]
    import nanochat.scripts.tok_train as tok_train
    vocab = 32768 if gpu else 8192
    with contextlib.redirect_stdout(io.StringIO()): tok_train.main(["--max-chars", "5000000", "--vocab-size", str(vocab), *dirs])
    auto = compute_dtype(dev.type)
    peak32, peak16 = matmul_flops(torch.float32, dev), matmul_flops(torch.bfloat16, dev)
    print(f"{dev.type}, {torch.get_num_threads()} threads, {malloc_name()} malloc; auto dtype = {auto}; matmul peak: fp32 {peak32/1e9:,.0f} GFLOP/s, "
          f"bf16 {peak16/1e9:,.0f} GFLOP/s (x{peak16/peak32:.2f})")
    seq, B = (2048, 32) if gpu else (256, 16)   # the CPU preset: seq 256, 16 rows, 2 micro-batches per step
    print(f"\n{'depth':>5} {'params':>8} {'fp32 tok/s':>11} {'auto tok/s':>11} {'ratio':>6} {'fp32 GFLOP/s':>13} {'auto GFLOP/s':>13} {'MFU':>6}"
          + (f" {'AdamW-only':>11}" if a.adamw else ""))
    for d in depths:
        argv = ["--depth", str(d), "--max-seq-len", str(seq), "--device-batch-size", str(B), "--total-batch-size", str(2 * B * seq),
                "--num-iterations", str(a.steps), "--eval-every", "-1", "--eval-tokens", str(B * seq), "--compile", str(a.compile), *dirs]
        rates = {"float32": [], "auto": []}
        for i in range(a.repeats):
            for dt in rates: rates[dt] += loop_tok_s(argv + ["--dtype", dt, "--model-tag", f"b{d}{dt}{i}"])
        f32, au = statistics.median(rates["float32"]), statistics.median(rates["auto"])
        r = bt.derive_recipe(d, seq, vocab, device_batch_size=B, total_batch_size=2 * B * seq)
        with torch.device("meta"): flops = GPT(r["config"]).estimate_flops()
        peak = get_peak_flops() if gpu else None
        mfu = f"{100 * flops * au / peak:5.1f}%" if peak else "   n/a"
        line = f"{d:>5} {r['params']/1e6:7.1f}M {f32:11,.0f} {au:11,.0f} {au/f32:6.2f} {flops * f32 / 1e9:13.1f} {flops * au / 1e9:13.1f} {mfu}"
        if a.adamw:
            real = GPT.setup_optimizers; GPT.setup_optimizers = adamw_only
            try: line += f" {statistics.median(loop_tok_s(argv + ['--model-tag', f'peer{d}'])):11,.0f}"
            finally: GPT.setup_optimizers = real
        print(line, flush=True)

if __name__ == "__main__": main()
