"SFT batches learn only the assistant's tokens; chat_sft and mid_train resume exactly (tiny model, byte-level tokenizer, in-process)."
import torch
import pytest
from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
from nanochat.tasks import Arithmetic, SpellingBee, SimpleSpelling, CustomJSON, TaskMixture, mc_conversation
from nanochat.gpt import GPT, config_from_depth
from nanochat.checkpoint import save_checkpoint
from nanochat.scripts import chat_sft, mid_train

WORDS = ["strawberry", "banana", "letter", "mississippi", "apple", "committee", "yellow", "rabbit", "coffee", "window", "garden"]
MULTI_TURN = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
              {"role": "user", "content": "What is 3*4?"},
              {"role": "assistant", "content": [{"type": "python", "text": "3*4"}, {"type": "python_output", "text": "12"},
                                                {"type": "text", "text": "It is 12."}]}]

@pytest.fixture
def btok(): return Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)})

def _mixture():
    return TaskMixture([Arithmetic(40), SpellingBee(40, words=WORDS), SimpleSpelling(20, words=WORDS),
                        CustomJSON([MULTI_TURN, mc_conversation("Which is a fruit?", ["stone", "apple", "chair"], 1)])], seed=1)

def test_sft_targets_follow_the_mask(btok):
    mix, B, T = _mixture(), 6, 96          # T short enough that some conversations are cut
    gen = chat_sft.padded_batches(btok, mix, B, T)
    checked = learned = 0
    for b in range(len(mix) // B):
        x, y, _ = next(gen)
        assert x.shape[1] <= T and x.shape == y.shape
        for i in range(B):
            ids, mask = btok.render_conversation(mix[b * B + i], T + 1)
            n = len(ids) - 1
            assert x[i, :n].tolist() == ids[:-1]
            assert y[i, :n].tolist() == [t if m else -1 for t, m in zip(ids[1:], mask[1:])]
            assert (y[i, n:] == -1).all()                   # padding is never learned
            checked += 1; learned += (y[i] >= 0).sum().item()
    assert checked == len(mix) // B * B and 0 < learned < checked * T

def test_sft_learns_assistant_text_only(btok):
    "Decoded, the learned targets of a conversation are exactly the assistant's turns (tool outputs excluded), each ending its turn."
    x, y = chat_sft.collate([btok.render_conversation({"messages": MULTI_TURN})], btok.bos_token_id)
    assert btok.decode(y[0][y[0] >= 0].tolist()) == ("Hello!<|assistant_end|>"
                                                      "<|python_start|>3*4<|python_end|>It is 12.<|assistant_end|>")
    conv = Arithmetic(5)[0]
    ids, mask = btok.render_conversation(conv)
    _, y = chat_sft.collate([(ids, mask)], 0)
    learned = btok.decode(y[0][y[0] >= 0].tolist())
    assert learned.startswith("<|python_start|>") and "<|output_start|>" not in learned and conv["messages"][0]["content"] not in learned


def test_mid_batches_train_every_token(btok):
    x, y, _ = next(mid_train.packed_batches(btok, _mixture(), 4, 128, buffer_size=8))
    assert (y >= 0).all() and (x[:, 0] == btok.bos_token_id).all()


@pytest.fixture
def tiny_world(btok):
    "A saved byte-level tokenizer and an untrained 1-layer base model checkpoint in the test's base dir."
    torch.manual_seed(0)
    btok.save()
    cfg = config_from_depth(1, vocab_size=btok.vocab_size, sequence_len=64)
    save_checkpoint("base", "d1", 1, GPT(cfg).state_dict(), {"config": cfg.__dict__})
    torch.set_num_threads(1)


def test_chat_sft_resume_is_exact(tiny_world):
    flags = ["--source", "base", "--init-lr-frac", "0.5", "--max-seq-len", "64", "--device-batch-size", "2", "--examples-per-step", "4",
             "--num-iterations", "6", "--val-conversations", "8", "--eval-steps", "2", "--eval-every", "3", "--save-every", "3"]
    full = chat_sft.train(chat_sft.parse_args(flags), task=_mixture())
    again = chat_sft.train(chat_sft.parse_args(flags + ["--resume-from-step", "3"]), task=_mixture())
    assert len(full["train_loss_curve"]) == 6
    curves = lambda r: [[tuple(p) for p in r[k]] for k in ("train_loss_curve", "val_loss_curve")]   # (JSON turns tuples into lists)
    assert curves(again) == curves(full)       # steps 1-3 and their evaluations from the checkpoint, 4-6 retraced
    assert full["val_loss"] < full["first_val_loss"]


def test_mid_train_resume_is_exact(tiny_world):
    flags = ["--max-seq-len", "64", "--device-batch-size", "2", "--total-batch-size", "256", "--num-iterations", "4",
             "--val-conversations", "8", "--eval-steps", "2", "--eval-every", "2", "--save-every", "2"]
    full = mid_train.train(mid_train.parse_args(flags), task=_mixture())
    again = mid_train.train(mid_train.parse_args(flags + ["--resume-from-step", "2"]), task=_mixture())
    curves = lambda r: [[tuple(p) for p in r[k]] for k in ("train_loss_curve", "val_loss_curve")]
    assert curves(again) == curves(full)


def test_errors_name_the_fix(tiny_world):
    with pytest.raises(FileNotFoundError, match="mid_train"):        # no mid checkpoint: the error names the command that makes one
        chat_sft.train(chat_sft.parse_args(["--num-iterations", "1"]), task=_mixture())
    with pytest.raises(ValueError, match="examples-per-step"):
        chat_sft.train(chat_sft.parse_args(["--source", "base", "--examples-per-step", "3", "--device-batch-size", "2"]), task=_mixture())
