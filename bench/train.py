"""Training throughput of the real loop: `nanochat.scripts.base_train` on the CPU preset, and on GPUs d12/d20.

It runs the script itself (dataloader thread, gradient accumulation, both optimizers, logging) for a few
steps and reads its progress lines, next to a peer measured in the same run: the same model and data with
`torch.optim.AdamW` on every parameter (no Muon, no sharding), so the ratio shows what our optimizer step
costs or saves. MFU = estimate_flops() x tokens/s / peak, printed where the GPU's peak is known (on a CPU: the achieved GFLOP/s).

    python bench/train.py                  # the CPU preset (d4, seq 256, 8192 tokens per step)
    python bench/train.py --depths 12 20   # on a GPU node (one GPU; add torchrun yourself for more)
"""
import argparse, os, re, statistics, tempfile, time
import torch
from nanochat.common import get_peak_flops, autodetect_device_type
from nanochat.dataset import data_dir
from nanochat.gpt import GPT
import nanochat.scripts.base_train as bt

def loop_tok_s(argv):
    "Median tokens/s over the script's logged steps (the first step, with its warm-up, excluded)."
    import contextlib, io
    out = io.StringIO()
    with contextlib.redirect_stdout(out): bt.main(argv)
    rates = [float(m[1].replace(",", "")) for m in re.finditer(r"\| ([\d,]+) tok/s", out.getvalue())][1:]
    return statistics.median(rates)

def adamw_only(self, *a, **k):
    "The peer: plain torch.optim.AdamW on everything, with the groups' lrs of the real setup."
    opt = torch.optim.AdamW(self.parameters(), lr=3e-4, betas=(0.8, 0.95), eps=1e-10, weight_decay=0.0)
    for g in opt.param_groups: g["initial_lr"] = g["lr"]
    class NoMuon:  # the loop sets momentum on optimizers[1]
        param_groups = []
        def step(self): pass
        def state_dict(self): return {}   # the loop checkpoints at its end
    return [opt, NoMuon()]

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", type=int, nargs="+", default=None)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    gpu = autodetect_device_type() == "cuda"
    depths = a.depths or ([12, 20] if gpu else [4])
    os.environ.setdefault("NANOCHAT_DATA_DIR", str(data_dir()))   # the embedded corpus (or web shards, if set)
    os.environ["NANOCHAT_BASE_DIR"] = tempfile.mkdtemp()
    import nanochat.scripts.tok_train as tok_train
    tok_train.main(["--max-chars", "5000000", "--vocab-size", "8192" if not gpu else "32768"])
    seq, B = (2048, 32) if gpu else (256, 16)
    print(f"\n{'device':>6} {'depth':>5} {'params':>9} {'ours tok/s':>11} {'AdamW-only tok/s':>17} {'ratio':>6} {'GFLOP/s':>8} {'MFU':>6}")
    for d in depths:
        argv = ["--depth", str(d), "--max-seq-len", str(seq), "--device-batch-size", str(B), "--total-batch-size", str(2 * B * seq),
                "--num-iterations", str(a.steps), "--eval-every", "-1", "--eval-tokens", str(B * seq), "--model-tag", f"bench{d}"]
        ours = loop_tok_s(argv)
        real = GPT.setup_optimizers
        GPT.setup_optimizers = adamw_only
        try: peer = loop_tok_s(argv + ["--model-tag", f"peer{d}"])
        finally: GPT.setup_optimizers = real
        r = bt.derive_recipe(d, seq, 8192 if not gpu else 32768)
        with torch.device("meta"): flops = GPT(r["config"]).estimate_flops()
        peak = get_peak_flops() if gpu else None
        mfu = f"{100 * flops * ours / peak:5.1f}%" if peak else "   n/a"
        print(f"{'cuda' if gpu else 'cpu':>6} {d:>5} {r['params']/1e6:8.1f}M {ours:11,.0f} {peer:17,.0f} {ours/peer:6.2f} {flops * ours / 1e9:8.1f} {mfu}")

if __name__ == "__main__": main()
