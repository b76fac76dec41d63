"""`speedrun.sh --dry-run`: the GPU recipe's commands, in order, each naming a module that exists and flags that its
own argument parser accepts (parsed, never run); the rehearsal runs the same stages with the same flags plus its scaling."""
import argparse, importlib, inspect, os, re, shlex, subprocess, sys
import pytest
from conftest import ROOT

GPU_STAGES = ["tok_train", "tok_eval", "base_train", "base_loss", "base_eval", "mid_train", "chat_sft", "chat_eval", "chat_rl",
              "chat_eval", "report"]

def dry_run(recipe, **env):
    e = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", **env}
    p = subprocess.run(["bash", "speedrun.sh", "--recipe", recipe, "--dry-run"], cwd=ROOT, env=e, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [shlex.split(l) for l in p.stdout.splitlines() if l.strip()]

def module_and_args(cmd):
    "(module, argv, launcher) of a printed `python -m M ...` / `torchrun ... -m M ...` line, without shell redirections."
    i = cmd.index("-m")
    args = cmd[i + 2:]
    if ">" in args: args = args[:args.index(">")]
    return cmd[i + 1], args, cmd[:i]

class Parsed(Exception): pass

def parse_with_own_parser(module, argv):
    "Parse `argv` with the module's argument parser: its `parse_args` (with its own checks) or, failing that, its entry point up to the parse."
    mod = importlib.import_module(module)
    if hasattr(mod, "parse_args"): return mod.parse_args(argv)
    entry = re.search(r'if __name__ == "__main__": (\w+)\(\)', inspect.getsource(mod))[1]
    orig = argparse.ArgumentParser.parse_args
    def stop(self, args=None, namespace=None): raise Parsed(orig(self, args, namespace))
    argparse.ArgumentParser.parse_args = stop
    try: getattr(mod, entry)(argv)
    except Parsed as p: return p.args[0]
    finally: argparse.ArgumentParser.parse_args = orig
    pytest.fail(f"{module}.{entry} never parsed its arguments")

def test_gpu_dry_run_lists_the_stages_and_every_flag_parses(tmp_path):
    cmds = dry_run("gpu", NANOCHAT_BASE_DIR=str(tmp_path))
    assert cmds[0] == ["nbdev-export"]
    mods = [module_and_args(c) for c in cmds[1:]]
    assert [m.rsplit(".", 1)[-1] for m, _, _ in mods] == ["dataset", "dataset"] + GPU_STAGES
    launchers = {m: l for m, _, l in mods}
    assert launchers["nanochat.scripts.base_train"] == ["torchrun", "--standalone", "--nproc_per_node=8"]  # no GPU here: shown for 8
    for m, argv, _ in mods:
        ns = parse_with_own_parser(m, argv)
        assert isinstance(ns, argparse.Namespace), m
    train = parse_with_own_parser("nanochat.scripts.base_train", mods[4][1])
    assert (train.depth, train.model_tag) == (20, "d20")
    assert all(parse_with_own_parser(m, a).data_source == "hf" for m, a, _ in mods if "chat_" in m or "mid_" in m)

def test_a_bad_flag_is_caught():
    with pytest.raises(SystemExit): parse_with_own_parser("nanochat.scripts.base_eval", ["--model-tag", "d20", "--bundel", "dclm"])
    with pytest.raises(SystemExit): parse_with_own_parser("nanochat.scripts.chat_rl", ["--num-samples", "1"])

def test_rehearsal_runs_the_gpu_stages_with_the_gpu_flags(tmp_path):
    gpu, reh = dry_run("gpu", NANOCHAT_BASE_DIR=str(tmp_path)), dry_run("rehearsal", NANOCHAT_BASE_DIR=str(tmp_path))
    assert len(gpu) == len(reh)
    for g, r in zip(gpu[1:], reh[1:]):
        (gm, ga, gl), (rm, ra, rl) = module_and_args(g), module_and_args(r)
        assert gm == rm and gl[:2] == rl[:2]
        # every gpu flag is there with its value, unless the rehearsal scales that knob (depth, vocabulary, shards, ...)
        scaled = {"--depth", "--model-tag", "--source-tag", "--vocab-size", "--max-chars", "-n", "--wall-time"}
        flags = lambda a: {f: v for f, v in zip(a, a[1:] + [None]) if f.startswith("-") and f not in scaled}
        assert flags(ga).items() <= flags(ra).items(), (gm, ga, ra)
        if "torchrun" in rl: assert "--nproc_per_node=2" in rl
