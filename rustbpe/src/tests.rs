use super::*;

/// The textbook trainer: recount every pair before every merge. Same tie-breaking and id reuse.
fn train_naive(chunks: &[(&[u8], i64)], vocab_size: usize) -> Trained {
    let mut words: Vec<(Vec<u32>, i64)> = chunks.iter().map(|(b, c)| (b.iter().map(|&x| x as u32).collect(), *c)).collect();
    let mut vocab: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut merges = Vec::new();
    while vocab.len() < vocab_size {
        let mut stats: AHashMap<Pair, i64> = AHashMap::new();
        for (w, c) in &words { for p in w.windows(2) { *stats.entry((p[0], p[1])).or_insert(0) += c; } }
        let Some((&pair, _)) = stats.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))) else { break };
        let bytes = [vocab[pair.0 as usize].clone(), vocab[pair.1 as usize].clone()].concat();
        let id = match vocab.iter().position(|v| *v == bytes) {
            Some(id) => id as u32,
            None => { vocab.push(bytes); vocab.len() as u32 - 1 }
        };
        merges.push((pair, id));
        for (w, _) in words.iter_mut() {
            let mut out = Vec::new(); let mut i = 0;
            while i < w.len() {
                if i + 1 < w.len() && (w[i], w[i + 1]) == pair { out.push(id); i += 2 } else { out.push(w[i]); i += 1 }
            }
            *w = out;
        }
    }
    Trained { vocab, merges }
}

/// A tiny deterministic pseudo-random generator (no external crates needed).
struct Lcg(u64);
impl Lcg { fn next(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); self.0 >> 33 } }

fn random_chunks(seed: u64, n: usize, alphabet: &[u8]) -> Vec<(Vec<u8>, i64)> {
    let mut r = Lcg(seed);
    (0..n).map(|_| {
        let len = 1 + (r.next() % 12) as usize;
        let w: Vec<u8> = (0..len).map(|_| alphabet[(r.next() % alphabet.len() as u64) as usize]).collect();
        (w, 1 + (r.next() % 5) as i64)
    }).collect()
}

#[test]
fn incremental_matches_naive() {
    let mut reused = 0;
    for seed in 0..30 {
        let alphabet: &[u8] = if seed % 2 == 0 { b"ab" } else { b"abcde" };
        let owned = random_chunks(seed, 200, alphabet);
        let chunks: Vec<(&[u8], i64)> = owned.iter().map(|(w, c)| (w.as_slice(), *c)).collect();
        let fast = train(chunks.iter().copied(), 256 + 60).unwrap();
        let slow = train_naive(&chunks, 256 + 60);
        assert_eq!(fast, slow, "seed {seed}");
        reused += fast.merges.len() - (fast.vocab.len() - 256);
        let mut v = fast.vocab.clone(); v.sort(); v.dedup();
        assert_eq!(v.len(), fast.vocab.len(), "tokens must be distinct byte strings");
    }
    println!("merges that reused an existing token: {reused}");
}

#[test]
fn most_frequent_pair_first_then_smallest_pair_on_ties() {
    // "ab" occurs 3 times, "cd" 3 times, "bc" once: the tie between (a,b) and (c,d) goes to (a,b).
    let t = train([(&b"abcd"[..], 1), (&b"ab"[..], 2), (&b"cd"[..], 2)], 258).unwrap();
    assert_eq!(t.merges, vec![((97, 98), 256), ((99, 100), 257)]);
    assert_eq!(t.vocab[257], b"cd".to_vec());
}

#[test]
fn overlapping_runs_merge_left_to_right() {
    // "aaaaa": (a,a) -> X merges positions 0-1 and 2-3, giving X X a; then (X,X) and (X,a) tie at 1
    // and the smaller pair (256, 97) wins
    let t = train([(&b"aaaaa"[..], 1)], 258).unwrap();
    assert_eq!(t.merges, vec![((97, 97), 256), ((256, 97), 257)]);
    assert_eq!(t.vocab[257], b"aaa".to_vec());
}

#[test]
fn stops_when_nothing_is_left_to_merge() {
    let t = train([(&b"abc"[..], 1)], 1000).unwrap();
    assert_eq!(t.vocab.len(), 258);
}

#[test]
fn rejects_a_vocab_smaller_than_the_bytes() {
    assert!(train(std::iter::empty(), 255).unwrap_err().contains("at least 256"));
}

#[test]
fn split_pattern_chunks() {
    let mut cc = ChunkCounter::new(SPLIT_PATTERN).unwrap();
    cc.add_texts(&["Hello world 12345!!\n\n  I'm   here"]).unwrap();
    let mut got: Vec<(&str, i64)> = cc.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    got.sort();
    let mut want = vec![("Hello", 1), (" world", 1), (" ", 1), ("12", 1), ("34", 1), ("5", 1), ("!!\n\n", 1),
                        (" ", 1), (" I", 1), ("'m", 1), ("  ", 1), (" here", 1)];
    // " " appears twice: before the digits and before " I"
    want.retain(|x| x.0 != " "); want.push((" ", 2)); want.sort();
    assert_eq!(got, want);
}

#[test]
fn counting_in_buffers_equals_counting_at_once() {
    let texts: Vec<String> = (0..500).map(|i| format!("doc {i}: the cat sat on the mat {} times", i % 7)).collect();
    let mut all = ChunkCounter::new(SPLIT_PATTERN).unwrap();
    all.add_texts(&texts).unwrap();
    let mut buffered = ChunkCounter::new(SPLIT_PATTERN).unwrap();
    for b in texts.chunks(37) { buffered.add_texts(b).unwrap(); }
    assert_eq!(all.counts, buffered.counts);
    assert_eq!(all.counts[" the"], 1000);
}

#[test]
fn bad_pattern_is_an_error_not_a_panic() {
    assert!(ChunkCounter::new("(unclosed").err().unwrap().contains("invalid split pattern"));
    assert!(matches!(Splitter::new(r"\w+").unwrap(), Splitter::Fancy(_)));
}

#[test]
fn dfa_split_equals_the_lookahead_pattern() {
    let fancy = Splitter::Fancy(Regex::new(SPLIT_PATTERN).unwrap());
    let dfa = Splitter::new(SPLIT_PATTERN).unwrap();
    assert!(matches!(dfa, Splitter::Dfa(_)));
    let pool: Vec<char> = "ab Z9 0.,!?'sdmtlvreSDLVRE\n\r\t\u{a0}\u{3000}\u{2003}é世界🙂\u{301}ſK_-(\"".chars().collect();
    let mut r = Lcg(7);
    let mut texts: Vec<String> = (0..3000).map(|_| (0..(r.next() % 30)).map(|_| pool[(r.next() % pool.len() as u64) as usize]).collect()).collect();
    texts.extend(["   x", "  \n  y", "a  \u{3000}b", "x   ", "I'm  here\t\tnow\r\n\r\n  ok", "12345  67"].map(String::from));
    for t in &texts {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        fancy.for_each(t, |c| a.push(c)).unwrap();
        dfa.for_each(t, |c| b.push(c)).unwrap();
        assert_eq!(a, b, "text {t:?}");
        assert_eq!(b.concat(), *t);
    }
}
