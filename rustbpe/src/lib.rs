//! nanochat's byte-level BPE trainer, GPT-4 style.
//!
//! 1. Split every text into chunks with a regex (so merges never cross a word/number/space boundary)
//!    and count each *unique* chunk, in parallel over documents (rayon). A corpus of millions of
//!    words has only ~1e5-1e6 distinct chunks, so the rest of the work is on those.
//! 2. Start from 256 byte tokens; count every adjacent pair (weighted by chunk count) once.
//! 3. Repeatedly merge the most frequent pair into a new token. Only the chunks containing that pair
//!    are touched, and only the pair counts around each merged position change (incremental update,
//!    no recount). The best pair comes from a max-heap with lazy deletion: an entry whose stored count
//!    is no longer the pair's true count is stale; it is re-pushed with the true count (or dropped).
//!
//! Tie-breaking (deterministic, independent of thread count and hash seeds): the highest count wins;
//! among equal counts, the smallest pair `(left_id, right_id)` in lexicographic order.
//! If a merged pair's bytes are already a token (`"a"+"bc"` after `"ab"+"c"`), the merge reuses that
//! token's id instead of minting a duplicate, so the vocabulary is a set of distinct byte strings,
//! exactly what a tiktoken-style `bytes -> rank` table needs.

use ahash::AHashMap;
use fancy_regex::Regex;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[cfg(feature = "python")]
mod python;

/// nanochat's variant of the GPT-4 (cl100k) split pattern: numbers in groups of 1-2 digits, not 1-3.
pub const SPLIT_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";

pub type Pair = (u32, u32);

/// `SPLIT_PATTERN` for the `regex` crate (a DFA, several times faster than a backtracking VM): the
/// lookahead alternative `\s+(?!\S)` is dropped and emulated by `Splitter::for_each`; the possessive
/// quantifiers become greedy ones, which changes nothing here (what follows them cannot use what
/// they would give back).
const SPLIT_PATTERN_DFA: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+";

/// Splits text into chunks: the default pattern runs on the `regex` crate, any other on `fancy_regex`.
pub enum Splitter { Dfa(regex::Regex), Fancy(Regex) }

impl Splitter {
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern == SPLIT_PATTERN {
            return Ok(Splitter::Dfa(regex::Regex::new(SPLIT_PATTERN_DFA).map_err(|e| e.to_string())?));
        }
        Regex::new(pattern).map(Splitter::Fancy).map_err(|e| format!("invalid split pattern {pattern:?}: {e}"))
    }

    /// Call `f` on every chunk of `text`, in order.
    pub fn for_each<'t>(&self, text: &'t str, mut f: impl FnMut(&'t str)) -> Result<(), String> {
        match self {
            Splitter::Fancy(re) => {
                for m in re.find_iter(text) { f(m.map_err(|e| format!("regex error while splitting: {e}"))?.as_str()); }
            }
            Splitter::Dfa(re) => {
                let mut pos = 0;
                while let Some(m) = re.find_at(text, pos) {
                    let (start, mut end) = (m.start(), m.end());
                    // `\s+(?!\S)`: a run of 2+ whitespace characters (no newline: those match `\s*[\r\n]`
                    // first) followed by a non-space leaves its last character to the next chunk,
                    // so that " word" keeps its leading space.
                    let piece = m.as_str();
                    if end < text.len() && piece.len() > 1 && piece.chars().all(|c| c.is_whitespace() && c != '\r' && c != '\n')
                        && !text[end..].chars().next().map_or(true, char::is_whitespace) {
                        let last = piece.chars().next_back().unwrap().len_utf8();
                        if piece.len() > last { end -= last; }
                    }
                    f(&text[start..end]);
                    pos = end;
                }
            }
        }
        Ok(())
    }
}

/// Counts of the distinct regex chunks seen so far; texts are added a buffer at a time.
pub struct ChunkCounter {
    splitter: Splitter,
    pub counts: AHashMap<String, i64>,
}

impl ChunkCounter {
    pub fn new(pattern: &str) -> Result<Self, String> {
        Ok(ChunkCounter { splitter: Splitter::new(pattern)?, counts: AHashMap::new() })
    }

    /// Split and count a buffer of texts in parallel, then fold the buffer's counts into the total.
    pub fn add_texts<S: AsRef<str> + Sync>(&mut self, texts: &[S]) -> Result<(), String> {
        let sp = &self.splitter;
        let local = texts
            .par_iter()
            .try_fold(AHashMap::<&str, i64>::new, |mut m, t| {
                sp.for_each(t.as_ref(), |c| *m.entry(c).or_insert(0) += 1)?;
                Ok::<_, String>(m)
            })
            .try_reduce(AHashMap::new, |a, b| {
                let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                for (k, v) in small { *big.entry(k).or_insert(0) += v; }
                Ok(big)
            })?;
        for (k, v) in local {
            match self.counts.get_mut(k) {
                Some(c) => *c += v,
                None => { self.counts.insert(k.to_owned(), v); }
            }
        }
        Ok(())
    }
}

/// A heap entry: a pair and the count it had when pushed. Max-heap order: count, then smaller pair.
#[derive(PartialEq, Eq)]
struct Job { count: i64, pair: Pair }
impl Ord for Job {
    fn cmp(&self, o: &Self) -> Ordering { self.count.cmp(&o.count).then_with(|| o.pair.cmp(&self.pair)) }
}
impl PartialOrd for Job {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> { Some(self.cmp(o)) }
}

/// The result of training: `vocab[id]` is the byte string of token `id` (ids 0..255 are the bytes);
/// `merges` lists `(pair, id)` in the order they were learned.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained { pub vocab: Vec<Vec<u8>>, pub merges: Vec<(Pair, u32)> }

/// Reusable buffers for `merge_word`.
#[derive(Default)]
struct Scratch { out: Vec<u32>, touched: Vec<bool>, fresh: Vec<bool> }

/// Merge every non-overlapping occurrence of `pair` in `w` (left to right) into `s.out`, and push the
/// pair-count changes to `changes`. An old pair disappears iff one of its two positions was consumed
/// by a merge; a new pair appears iff one of its two tokens is a freshly merged one. Every other pair
/// of the old word maps one-to-one onto a pair of the new word, so it does not change.
fn merge_word(w: &[u32], pair: Pair, id: u32, s: &mut Scratch, changes: &mut Vec<(Pair, i64)>) {
    s.out.clear(); s.fresh.clear(); s.touched.clear(); s.touched.resize(w.len(), false);
    let mut i = 0;
    while i < w.len() {
        if i + 1 < w.len() && (w[i], w[i + 1]) == pair {
            s.touched[i] = true; s.touched[i + 1] = true;
            s.out.push(id); s.fresh.push(true); i += 2;
        } else {
            s.out.push(w[i]); s.fresh.push(false); i += 1;
        }
    }
    for j in 1..w.len() {
        if s.touched[j - 1] || s.touched[j] { changes.push(((w[j - 1], w[j]), -1)); }
    }
    for k in 1..s.out.len() {
        if s.fresh[k - 1] || s.fresh[k] { changes.push(((s.out[k - 1], s.out[k]), 1)); }
    }
}

fn contains_pair(w: &[u32], pair: Pair) -> bool { w.windows(2).any(|p| (p[0], p[1]) == pair) }

/// Learn BPE merges until the vocabulary has `vocab_size` tokens (or no pair is left to merge).
/// `chunks` yields each distinct chunk's bytes with its count.
pub fn train<'a, I>(chunks: I, vocab_size: usize) -> Result<Trained, String>
where I: IntoIterator<Item = (&'a [u8], i64)> {
    if vocab_size < 256 { return Err(format!("vocab_size must be at least 256 (the byte tokens), got {vocab_size}")); }
    let (mut words, counts): (Vec<Vec<u32>>, Vec<i64>) =
        chunks.into_iter().filter(|(b, c)| b.len() >= 2 && *c > 0).map(|(b, c)| (b.iter().map(|&x| x as u32).collect(), c)).unzip();

    // Initial pair counts and, for each pair, the words it occurs in. `where_` lists may hold
    // duplicates and stale entries: a word is re-checked before it is merged.
    let mut pair_counts: AHashMap<Pair, i64> = AHashMap::new();
    let mut where_: AHashMap<Pair, Vec<u32>> = AHashMap::new();
    for (i, w) in words.iter().enumerate() {
        for p in w.windows(2) {
            let pair = (p[0], p[1]);
            *pair_counts.entry(pair).or_insert(0) += counts[i];
            let v = where_.entry(pair).or_insert_with(Vec::new);
            if v.last() != Some(&(i as u32)) { v.push(i as u32); }
        }
    }
    let mut heap: BinaryHeap<Job> = pair_counts.iter().map(|(&pair, &count)| Job { count, pair }).collect();

    let mut vocab: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let mut ids: AHashMap<Vec<u8>, u32> = vocab.iter().enumerate().map(|(i, b)| (b.clone(), i as u32)).collect();
    let mut merges = Vec::new();
    let (mut scratch, mut changes) = (Scratch::default(), Vec::new());
    let mut delta: AHashMap<Pair, i64> = AHashMap::new();

    while vocab.len() < vocab_size {
        let Some(Job { count, pair }) = heap.pop() else { break };
        let now = pair_counts.get(&pair).copied().unwrap_or(0);
        if now != count {
            // stale: a too-high entry is re-pushed with the true count; a too-low one is dropped,
            // because every increase of a count pushed its own entry.
            if now > 0 && now < count { heap.push(Job { count: now, pair }); }
            continue;
        }
        let bytes = [vocab[pair.0 as usize].as_slice(), vocab[pair.1 as usize].as_slice()].concat();
        let id = match ids.get(&bytes) {
            Some(&id) => id,
            None => { let id = vocab.len() as u32; ids.insert(bytes.clone(), id); vocab.push(bytes); id }
        };
        merges.push((pair, id));

        delta.clear();
        for i in where_.remove(&pair).unwrap_or_default() {
            let w = &mut words[i as usize];
            if !contains_pair(w, pair) { continue; }
            changes.clear();
            merge_word(w, pair, id, &mut scratch, &mut changes);
            std::mem::swap(w, &mut scratch.out);
            let c = counts[i as usize];
            for &(p, sign) in &changes {
                *delta.entry(p).or_insert(0) += sign * c;
                if sign > 0 {
                    let v = where_.entry(p).or_insert_with(Vec::new);
                    if v.last() != Some(&i) { v.push(i); }
                }
            }
        }
        for (&p, &d) in &delta {
            if d == 0 { continue; }
            let e = pair_counts.entry(p).or_insert(0);
            *e += d;
            let now = *e;
            if now == 0 { pair_counts.remove(&p); } else if d > 0 { heap.push(Job { count: now, pair: p }); }
        }
    }
    Ok(Trained { vocab, merges })
}

#[cfg(test)]
mod tests;
