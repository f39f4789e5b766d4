//! Code layouts: row-major bytes as callers hold them, and the interleaved
//! word layout the kernels read.
//!
//! A code of `n_bytes` bytes is read as `w = ceil(n_bytes / 8)` little-endian
//! `u64` words, the last one zero-padded (padding bits are zero on both sides
//! of every XOR, so they never count). In the **interleaved** layout codes are
//! stored in groups of [`GROUP`]: group `g` is `w × GROUP` words, word `k` of
//! code `g * GROUP + i` at position `k * GROUP + i`. One vector load then holds
//! the same word of eight codes, so a broadcast query word, an XOR and a
//! popcount give eight distances with no horizontal sum. Lanes past the last
//! code of the last group are zero and are never reported.

use crate::error::{invalid, Result};

/// Codes per interleaved group (one AVX-512 register of `u64`).
pub const GROUP: usize = 8;

/// Longest code accepted, in bytes: distances must fit an `i32` with room to spare.
pub const MAX_CODE_BYTES: usize = 1 << 24;

/// `u64` words per code of `n_bytes` bytes.
#[inline]
pub fn words_per_code(n_bytes: usize) -> usize {
    n_bytes.div_ceil(8)
}

/// Words of an interleaved buffer holding `n` codes of `n_bytes` bytes.
#[inline]
pub fn interleaved_len(n: usize, n_bytes: usize) -> usize {
    n.div_ceil(GROUP) * words_per_code(n_bytes) * GROUP
}

/// Word `k` of a code: bytes `8k..8k+8` little-endian, zero-padded past the end.
#[inline(always)]
pub(crate) fn code_word(code: &[u8], k: usize) -> u64 {
    let start = k * 8;
    if start + 8 <= code.len() {
        u64::from_le_bytes(code[start..start + 8].try_into().expect("8 bytes"))
    } else {
        let mut bytes = [0u8; 8];
        let tail = &code[start.min(code.len())..];
        bytes[..tail.len()].copy_from_slice(tail);
        u64::from_le_bytes(bytes)
    }
}

/// A borrowed set of binary codes.
#[derive(Debug, Clone, Copy)]
pub enum Codes<'a> {
    /// `n` codes of `n_bytes` bytes each, row-major (numpy's `(n, n_bytes)` uint8).
    Rows {
        data: &'a [u8],
        n: usize,
        n_bytes: usize,
    },
    /// `n` codes in the interleaved word layout ([`interleave`]).
    Interleaved {
        words: &'a [u64],
        n: usize,
        n_bytes: usize,
    },
}

fn check_code_bytes(name: &str, n_bytes: usize) -> Result<()> {
    if n_bytes == 0 {
        return invalid!("{name}: codes must have at least one byte, got 0 bytes per code");
    }
    if n_bytes > MAX_CODE_BYTES {
        return invalid!(
            "{name}: codes of {n_bytes} bytes are longer than the supported {MAX_CODE_BYTES}"
        );
    }
    Ok(())
}

impl<'a> Codes<'a> {
    /// Row-major codes; `data.len()` must be `n * n_bytes`. `name` is used in errors.
    pub fn rows(name: &str, data: &'a [u8], n: usize, n_bytes: usize) -> Result<Self> {
        check_code_bytes(name, n_bytes)?;
        if n.checked_mul(n_bytes) != Some(data.len()) {
            return invalid!(
                "{name}: buffer holds {} bytes but shape ({n}, {n_bytes}) needs {}",
                data.len(),
                n.saturating_mul(n_bytes)
            );
        }
        Ok(Codes::Rows { data, n, n_bytes })
    }

    /// Interleaved codes; `words.len()` must be [`interleaved_len`]`(n, n_bytes)`.
    pub fn interleaved(name: &str, words: &'a [u64], n: usize, n_bytes: usize) -> Result<Self> {
        check_code_bytes(name, n_bytes)?;
        let expected = n
            .div_ceil(GROUP)
            .checked_mul(words_per_code(n_bytes))
            .and_then(|x| x.checked_mul(GROUP));
        if expected != Some(words.len()) {
            return invalid!(
                "{name}: interleaved buffer holds {} words but {n} codes of {n_bytes} bytes need {:?}",
                words.len(),
                expected
            );
        }
        Ok(Codes::Interleaved { words, n, n_bytes })
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        match self {
            Codes::Rows { n, .. } | Codes::Interleaved { n, .. } => *n,
        }
    }

    /// True when there are no codes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per code.
    pub fn n_bytes(&self) -> usize {
        match self {
            Codes::Rows { n_bytes, .. } | Codes::Interleaved { n_bytes, .. } => *n_bytes,
        }
    }

    /// Word `k` of code `i` (no bounds beyond the slices' own).
    #[inline]
    pub(crate) fn word(&self, i: usize, k: usize) -> u64 {
        match self {
            Codes::Rows { data, n_bytes, .. } => {
                code_word(&data[i * n_bytes..(i + 1) * n_bytes], k)
            }
            Codes::Interleaved { words, n_bytes, .. } => {
                let w = words_per_code(*n_bytes);
                words[(i / GROUP) * w * GROUP + k * GROUP + i % GROUP]
            }
        }
    }

    /// Copies code `i` into `out` (`n_bytes` bytes).
    pub fn code(&self, i: usize, out: &mut [u8]) {
        let n_bytes = self.n_bytes();
        for (k, chunk) in out[..n_bytes].chunks_mut(8).enumerate() {
            let bytes = self.word(i, k).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Interleaves codes `start..end` of row-major `data` into `out`, which holds
/// `ceil((end - start) / GROUP)` groups; lanes past `end` are zeroed.
pub(crate) fn interleave_into(
    data: &[u8],
    n_bytes: usize,
    start: usize,
    end: usize,
    out: &mut [u64],
) {
    let w = words_per_code(n_bytes);
    let n_groups = (end - start).div_ceil(GROUP);
    let out = &mut out[..n_groups * w * GROUP];
    if !(end - start).is_multiple_of(GROUP) {
        let last = &mut out[(n_groups - 1) * w * GROUP..];
        last.fill(0);
    }
    let rows = &data[start * n_bytes..end * n_bytes];
    let count = end - start;
    if n_bytes.is_multiple_of(8) {
        // Group by group, word by word: sequential stores, eight read streams.
        let full = count / GROUP;
        let src = rows.as_ptr();
        let dst = out.as_mut_ptr();
        for g in 0..full {
            // SAFETY: group `g < full` covers rows `g*GROUP..(g+1)*GROUP` of
            // `rows` (`count * n_bytes` bytes), each `w * 8 = n_bytes` bytes, so
            // every read `lane * n_bytes + 8k + 8 <= GROUP * n_bytes` is inside
            // the group's rows; the writes `k * GROUP + lane < w * GROUP` are
            // inside the group's slice of `out`, which holds `n_groups` groups.
            unsafe {
                let group_src = src.add(g * GROUP * n_bytes);
                let group_dst = dst.add(g * w * GROUP);
                for k in 0..w {
                    let d = group_dst.add(k * GROUP);
                    for lane in 0..GROUP {
                        let word =
                            (group_src.add(lane * n_bytes + 8 * k) as *const u64).read_unaligned();
                        d.add(lane).write(u64::from_le(word));
                    }
                }
            }
        }
        for c in full * GROUP..count {
            let row = &rows[c * n_bytes..(c + 1) * n_bytes];
            let base = (c / GROUP) * w * GROUP + c % GROUP;
            for (k, word) in row.chunks_exact(8).enumerate() {
                out[base + k * GROUP] = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            }
        }
    } else {
        for (c, row) in rows.chunks_exact(n_bytes).enumerate() {
            let base = (c / GROUP) * w * GROUP + c % GROUP;
            for k in 0..w {
                out[base + k * GROUP] = code_word(row, k);
            }
        }
    }
}

/// Converts `n` row-major codes of `n_bytes` bytes to the interleaved layout.
pub fn interleave(data: &[u8], n: usize, n_bytes: usize) -> Result<Vec<u64>> {
    Codes::rows("codes", data, n, n_bytes)?;
    let mut out = vec![0u64; interleaved_len(n, n_bytes)];
    if n > 0 {
        interleave_into(data, n_bytes, 0, n, &mut out);
    }
    Ok(out)
}

/// `n` codes as row-major words (`n × words_per_code(n_bytes)`), zero-padded.
pub(crate) fn row_words(codes: &Codes<'_>) -> Vec<u64> {
    let w = words_per_code(codes.n_bytes());
    let mut out = vec![0u64; codes.len() * w];
    for (i, row) in out.chunks_exact_mut(w).enumerate() {
        for (k, slot) in row.iter_mut().enumerate() {
            *slot = codes.word(i, k);
        }
    }
    out
}
