//! The Python face of the trainer: `nanochat_rustbpe.train_from_iterator(texts, vocab_size, ...)`.
use crate::{train, ChunkCounter, SPLIT_PATTERN};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyString};

/// Train byte-level BPE on an iterable of strings.
///
/// Strings are pulled `buffer_size` at a time while holding the GIL, then split and counted in
/// parallel without it, so the corpus never has to sit in memory as one Python string.
/// Returns `(pattern, mergeable_ranks, merges)`: the split pattern, a dict `bytes -> rank` (token id)
/// for all `vocab_size` tokens (fewer if the corpus runs out of pairs), and the merges in learned
/// order as `(left_id, right_id, new_id)` tuples.
#[pyfunction(pattern = "None", buffer_size = "8192")]
#[pyo3(text_signature = "(texts, vocab_size, pattern=None, buffer_size=8192)")]
fn train_from_iterator(py: Python<'_>, texts: &PyAny, vocab_size: i64, pattern: Option<String>, buffer_size: usize)
    -> PyResult<(String, PyObject, Vec<(u32, u32, u32)>)> {
    if vocab_size < 256 {
        return Err(PyValueError::new_err(format!("vocab_size must be at least 256 (one token per byte), got {vocab_size}")));
    }
    if buffer_size == 0 { return Err(PyValueError::new_err("buffer_size must be at least 1")); }
    let pattern = pattern.unwrap_or_else(|| SPLIT_PATTERN.to_string());
    let mut counter = ChunkCounter::new(&pattern).map_err(PyValueError::new_err)?;
    let mut iter = PyIterator::from_object(py, texts)
        .map_err(|_| PyTypeError::new_err(format!("texts must be an iterable of str, got {}", texts.get_type().name().unwrap_or("?"))))?;
    let (mut buf, mut seen) = (Vec::with_capacity(buffer_size), 0usize);
    let mut done = false;
    while !done {
        buf.clear();
        while buf.len() < buffer_size {
            match iter.next() {
                None => { done = true; break; }
                Some(item) => {
                    let item = item?; // an exception raised inside the iterator propagates as is
                    let s: &PyString = item.downcast().map_err(|_| PyTypeError::new_err(format!(
                        "item {seen} of texts is a {}, expected str", item.get_type().name().unwrap_or("?"))))?;
                    buf.push(s.to_str()?.to_owned());
                    seen += 1;
                }
            }
        }
        py.allow_threads(|| counter.add_texts(&buf)).map_err(PyValueError::new_err)?;
    }
    let counts = counter.counts;
    let trained = py
        .allow_threads(|| train(counts.iter().map(|(k, &v)| (k.as_bytes(), v)), vocab_size as usize))
        .map_err(PyValueError::new_err)?;
    let ranks = PyDict::new(py);
    for (id, bytes) in trained.vocab.iter().enumerate() { ranks.set_item(PyBytes::new(py, bytes), id)?; }
    let merges = trained.merges.iter().map(|&((a, b), id)| (a, b, id)).collect();
    Ok((pattern, ranks.into(), merges))
}

#[pymodule]
fn nanochat_rustbpe(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add("SPLIT_PATTERN", SPLIT_PATTERN)?;
    m.add_function(wrap_pyfunction!(train_from_iterator, m)?)?;
    Ok(())
}
