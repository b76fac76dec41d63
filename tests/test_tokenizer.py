"The tokenizer's Python-facing errors, and a save/load round trip through the base directory."
import pytest
import nanochat_rustbpe
from nanochat.tokenizer import Tokenizer, SPECIAL_TOKENS, get_tokenizer, get_token_bytes

TEXTS = ["The quick brown fox jumps over the lazy dog. " * 20, "Ünïcödé 世界 👋🏽 12345", "def f(x):\n    return x * 2\n"]

def test_trainer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 256"): nanochat_rustbpe.train_from_iterator(TEXTS, 100)
    with pytest.raises(TypeError, match="item 2 of texts is a int, expected str"): nanochat_rustbpe.train_from_iterator(["a", "b", 3], 300)
    with pytest.raises(TypeError, match="iterable of str"): nanochat_rustbpe.train_from_iterator(None, 300)
    with pytest.raises(ValueError, match="invalid split pattern"): nanochat_rustbpe.train_from_iterator(TEXTS, 300, pattern="[")
    with pytest.raises(ValueError, match="buffer_size"): nanochat_rustbpe.train_from_iterator(TEXTS, 300, buffer_size=0)

def test_trainer_propagates_iterator_errors():
    def broken():
        yield "fine"
        raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError, match="disk on fire"): nanochat_rustbpe.train_from_iterator(broken(), 300)

def test_trainer_streams_small_buffers_like_one_big_one():
    a = nanochat_rustbpe.train_from_iterator(iter(TEXTS * 5), 320, buffer_size=1)
    b = nanochat_rustbpe.train_from_iterator(TEXTS * 5, 320)
    assert a == b and len(a[1]) == 320

def test_tokenizer_errors():
    with pytest.raises(ValueError, match="need at least 265"): Tokenizer.train_from_iterator(TEXTS, 264)
    tok = Tokenizer.train_from_iterator(TEXTS, 300)
    with pytest.raises(TypeError, match="str or a list of str"): tok.encode(b"bytes")
    with pytest.raises(ValueError, match="not a special token"): tok.encode("x", prepend="<|endoftext|>")
    with pytest.raises(FileNotFoundError, match="python -m nanochat.scripts.tok_train"): get_tokenizer()
    with pytest.raises(FileNotFoundError, match="python -m nanochat.scripts.tok_train"): get_token_bytes()

def test_save_load_round_trip():
    tok = Tokenizer.train_from_iterator(TEXTS, 320)
    tok.save()  # into $NANOCHAT_BASE_DIR/tokenizer (a temporary folder per test, see conftest.py)
    tok2 = get_tokenizer()
    assert tok2.ranks == tok.ranks
    assert tok2.pattern == tok.pattern
    assert tok2.vocab_size == 320
    for t in TEXTS:
        ids = tok.encode(t, prepend="<|bos|>", append="<|assistant_end|>")
        assert tok2.encode(t, prepend="<|bos|>", append="<|assistant_end|>") == ids
        assert tok2.decode(ids[1:-1]) == t
    assert get_token_bytes().tolist() == tok.token_bytes().tolist()
    assert [tok2.encode_special(s) for s in SPECIAL_TOKENS] == list(range(320 - len(SPECIAL_TOKENS), 320))
