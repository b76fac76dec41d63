"RL loss masking, group advantages, multiple-choice scoring from logits, ChatCORE, and distributed chat_eval counts."
import json, textwrap
import pytest
import torch
from conftest import torchrun
from nanochat.gpt import GPT, GPTConfig
from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
from nanochat.tasks import MultipleChoice, mc_conversation
from nanochat.scripts.chat_eval import categorical_answers, run_categorical, centered, chat_core
from nanochat.scripts.chat_rl import rl_batch, group_advantages, pg_loss

torch.set_num_threads(1)
TOK = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)})


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(sequence_len=64, vocab_size=TOK.vocab_size, n_layer=2, n_head=2, n_kv_head=2, n_embd=32))


def loss_and_grads(model, seqs, masks, adv):
    model.zero_grad(set_to_none=True)
    x, y = rl_batch(seqs, masks, TOK.bos_token_id)
    loss = pg_loss(model, x, y, torch.tensor(adv))
    loss.backward()
    return loss.item(), [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


# prompt (mask 0), three sampled tokens (mask 1), then a forced tool output (mask 0) closing the rollout
PROMPT, SAMPLED = [TOK.bos_token_id, 10, 11, 12], [20, 21, 22]
def rollout(forced, sampled=SAMPLED): return PROMPT + sampled + forced, [0] * 4 + [1] * len(sampled) + [0] * len(forced)


def test_rl_loss_ignores_forced_tokens():
    model = tiny_gpt()
    (s1, m1), (s2, m2) = rollout([30, 31, 32]), rollout([40, 41, 42])   # only the forced tokens differ
    (o1, n1), (o2, n2) = rollout([50, 51, 52]), rollout([60, 61, 62])
    la, ga = loss_and_grads(model, [s1, o1], [m1, n1], [1.0, -1.0])
    lb, gb = loss_and_grads(model, [s2, o2], [m2, n2], [1.0, -1.0])
    assert la == lb
    assert all(torch.equal(a, b) for a, b in zip(ga, gb))
    # ...while a different sampled token changes both
    (s3, m3) = rollout([30, 31, 32], sampled=[20, 23, 22])
    lc, gc = loss_and_grads(model, [s3, o1], [m3, n1], [1.0, -1.0])
    assert lc != la and any(not torch.equal(a, c) for a, c in zip(ga, gc))


def test_rl_loss_zero_without_sampled_tokens():
    model = tiny_gpt()
    s, m = PROMPT + [30, 31], [0] * 6                                   # a rollout that is all prompt + forced tokens
    loss, grads = loss_and_grads(model, [s, s], [m, m], [1.0, -1.0])
    assert loss == 0.0 and all(g.abs().sum() == 0 for g in grads)


def test_sampled_tokens_contribute_with_advantage_sign():
    model = tiny_gpt()
    seqs, masks = zip(*[rollout([30]), rollout([30], sampled=[25, 26, 27])])
    x, y = rl_batch(seqs, masks, TOK.bos_token_id)
    logp = lambda: -model(x, y, loss_reduction="none").view_as(y).sum(1)   # log-prob of each rollout's sampled tokens
    before = logp().detach()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad(); pg_loss(model, x, y, torch.tensor([1.0, -1.0])).backward(); opt.step()
    after = logp().detach()
    assert after[0] > before[0] and after[1] < before[1]               # the better reply got likelier, the worse one less


def test_group_advantages_are_centred():
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.5, 1.0, 0.5]])
    a = group_advantages(r)
    assert torch.allclose(a.sum(-1), torch.zeros(3))
    assert torch.allclose(a[0], torch.tensor([0.75, -0.25, -0.25, -0.25]))
    assert torch.equal(a[1], torch.zeros(4))                            # all solved: no signal


class PrefersLetter(torch.nn.Module):
    "A model whose logits at every position favour the token of `letter` (and, more, a token that is not a letter)."
    def __init__(self, letter):
        super().__init__(); self.bias = torch.nn.Parameter(torch.zeros(TOK.vocab_size))
        with torch.no_grad(): self.bias[ord(letter)] = 3.0; self.bias[ord("!")] = 10.0
    def forward(self, idx): return self.bias.expand(*idx.shape, -1)


def test_categorical_picks_highest_letter_logit():
    items = [dict(question=f"q{i}", choices=["w", "x", "y", "z"], answer=i % 4) for i in range(8)]
    task = MultipleChoice(items)
    assert categorical_answers(PrefersLetter("B"), TOK, list(task)) == ["B"] * 8
    assert run_categorical(task, PrefersLetter("B"), TOK, batch_size=3) == dict(correct=2.0, total=8.0, chance=2.0)
    assert run_categorical(task, PrefersLetter("D"), TOK, batch_size=8, max_problems=4)["correct"] == 1.0


def test_categorical_batch_equals_single():
    model = tiny_gpt().eval()
    convs = [mc_conversation("x" * (3 * i), ["a", "b", "c"], i % 3) for i in range(6)]
    assert categorical_answers(model, TOK, convs) == [categorical_answers(model, TOK, [c])[0] for c in convs]


def test_chatcore_arithmetic():
    assert centered(0.25, 0.25) == 0.0 and centered(1.0, 0.25) == 1.0 and centered(0.3, 0.0) == 0.3
    res = {"ARC-Easy": dict(accuracy=0.55, chance=0.25), "MMLU": dict(accuracy=0.25, chance=0.25),
           "GSM8K": dict(accuracy=0.1, chance=0.0), "HumanEval": dict(accuracy=0.0, chance=0.0)}
    assert chat_core(res) == pytest.approx((0.4 + 0.0 + 0.1 + 0.0) / 4)
    with pytest.raises(ValueError): chat_core({})


SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from nanochat.common import compute_init, compute_cleanup, get_dist_info
    from nanochat.gpt import GPT, GPTConfig
    from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
    from nanochat.tasks import MultipleChoice
    from nanochat.scripts.chat_eval import run_categorical
    compute_init("cpu", seed=0); torch.set_num_threads(1)
    tok = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)})
    torch.manual_seed(0)
    model = GPT(GPTConfig(sequence_len=64, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_kv_head=2, n_embd=32)).eval()
    task = MultipleChoice([dict(question="q" * (i % 7), choices=["a", "b", "c", "d"][: 2 + i % 3], answer=i % 2) for i in range(21)])
    c = run_categorical(task, model, tok, batch_size=4)
    if get_dist_info()[1] == 0: print("COUNTS", json.dumps(c))
    compute_cleanup()
""")


def test_chat_eval_two_processes_equal_one(tmp_path):
    script = tmp_path / "mc_eval.py"; script.write_text(SCRIPT)
    counts = []
    for n in (1, 2):
        r = torchrun(script, n)
        assert r.returncode == 0, r.stderr[-2000:]
        counts.append(json.loads(r.stdout.split("COUNTS", 1)[1]))
    assert counts[0]["total"] == counts[1]["total"] == 21
    assert counts[0]["correct"] == counts[1]["correct"] > 0
    assert counts[0]["chance"] == pytest.approx(counts[1]["chance"])   # the same terms, summed in another order
