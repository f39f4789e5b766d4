//! Sign quantization to packed bits, as sentence-transformers' `quantize_embeddings`.
//!
//! `ubinary`: bit `j` of a row is `x[j] > 0`, packed most significant bit
//! first into `ceil(dim / 8)` bytes, the last byte zero-padded — exactly
//! `np.packbits(x > 0, axis=-1)`. NaN and ±0 give 0. `binary` is the same bytes
//! with the top bit flipped, read as `int8` (`ubinary - 128`).

use crate::error::{invalid, Result};
use crate::threads;
use rayon::prelude::*;

/// An element that can be sign-quantized: `true` when strictly positive.
pub trait Positive: Copy + Send + Sync {
    /// `self > 0` (false for NaN and both zeros).
    fn positive(self) -> bool;
}

impl Positive for f32 {
    #[inline(always)]
    fn positive(self) -> bool {
        self > 0.0
    }
}

impl Positive for f64 {
    #[inline(always)]
    fn positive(self) -> bool {
        self > 0.0
    }
}

/// IEEE binary16 as raw bits (numpy `float16` viewed as `uint16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct F16Bits(pub u16);

impl F16Bits {
    /// Views raw `u16` bits (numpy `float16` viewed as `uint16`) as `F16Bits`
    /// without copying: a float16 database is borrowed, not duplicated.
    pub fn from_bits_slice(bits: &[u16]) -> &[F16Bits] {
        // SAFETY: `F16Bits` is `#[repr(transparent)]` over `u16`, so it has
        // the same size, alignment and validity (every bit pattern); the
        // returned slice borrows `bits` for the same lifetime and length.
        unsafe { std::slice::from_raw_parts(bits.as_ptr() as *const F16Bits, bits.len()) }
    }
}

impl Positive for F16Bits {
    #[inline(always)]
    fn positive(self) -> bool {
        // Sign clear, not ±0, not NaN (exponent all ones with a mantissa).
        let bits = self.0;
        bits & 0x8000 == 0 && bits != 0 && bits <= 0x7c00
    }
}

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 256;

/// Packs `n × dim` values (row-major) into `n × ceil(dim / 8)` ubinary bytes.
pub fn quantize_ubinary<T: Positive>(x: &[T], n: usize, dim: usize) -> Result<Vec<u8>> {
    if dim == 0 {
        return invalid!("x: dimension must be at least 1, got shape ({n}, 0)");
    }
    if n.checked_mul(dim) != Some(x.len()) {
        return invalid!(
            "x: buffer holds {} values but shape ({n}, {dim}) needs {}",
            x.len(),
            n.saturating_mul(dim)
        );
    }
    let n_bytes = dim.div_ceil(8);
    let mut out = vec![0u8; n * n_bytes];
    if n == 0 {
        return Ok(out);
    }
    let pack = |(rows, codes): (&[T], &mut [u8])| {
        for (row, code) in rows.chunks_exact(dim).zip(codes.chunks_exact_mut(n_bytes)) {
            pack_row(row, code);
        }
    };
    if n <= ROWS_PER_TASK {
        pack((x, &mut out[..]));
    } else {
        threads::install(|| {
            x.par_chunks(ROWS_PER_TASK * dim)
                .zip(out.par_chunks_mut(ROWS_PER_TASK * n_bytes))
                .for_each(pack)
        });
    }
    Ok(out)
}

#[inline]
fn pack_row<T: Positive>(row: &[T], code: &mut [u8]) {
    let mut chunks = row.chunks_exact(8);
    for (byte, chunk) in code.iter_mut().zip(&mut chunks) {
        let mut b = 0u8;
        for (j, &v) in chunk.iter().enumerate() {
            b |= (v.positive() as u8) << (7 - j);
        }
        *byte = b;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut b = 0u8;
        for (j, &v) in tail.iter().enumerate() {
            b |= (v.positive() as u8) << (7 - j);
        }
        code[row.len() / 8] = b;
    }
}

/// Flips the top bit of every byte: ubinary ⇄ binary (`int8`) codes.
pub fn flip_top_bits(codes: &mut [u8]) {
    for b in codes {
        *b ^= 0x80;
    }
}

/// Unpacks `n` codes of `n_bytes` into `n × dim` 0/1 bytes (`np.unpackbits(..., count=dim)`).
pub fn unpack(codes: &[u8], n: usize, n_bytes: usize, dim: usize) -> Result<Vec<u8>> {
    if n_bytes == 0 || n.checked_mul(n_bytes) != Some(codes.len()) {
        return invalid!(
            "codes: buffer holds {} bytes, not shape ({n}, {n_bytes})",
            codes.len()
        );
    }
    if dim == 0 || dim.div_ceil(8) != n_bytes {
        return invalid!(
            "dim: {dim} does not fit codes of {n_bytes} bytes (needs {} < dim <= {})",
            8 * (n_bytes - 1),
            8 * n_bytes
        );
    }
    let mut out = vec![0u8; n * dim];
    for (code, row) in codes.chunks_exact(n_bytes).zip(out.chunks_exact_mut(dim)) {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (code[j / 8] >> (7 - j % 8)) & 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_msb_first_with_zero_padding() {
        let x = [
            1.0f32,
            -1.0,
            0.0,
            2.0,
            f32::NAN,
            -0.0,
            3.0,
            1e-30,
            5.0,
            -2.0,
        ];
        let codes = quantize_ubinary(&x, 1, 10).unwrap();
        assert_eq!(codes, vec![0b1001_0011, 0b1000_0000]);
        assert_eq!(
            unpack(&codes, 1, 2, 10).unwrap(),
            vec![1, 0, 0, 1, 0, 0, 1, 1, 1, 0]
        );
    }

    #[test]
    fn f16_positive_from_bits() {
        // +1.0, -1.0, +0, -0, +inf, NaN, smallest subnormal, -smallest subnormal.
        let vals = [
            0x3c00u16, 0xbc00, 0x0000, 0x8000, 0x7c00, 0x7e00, 0x0001, 0x8001,
        ];
        let want = [true, false, false, false, true, false, true, false];
        for (v, w) in vals.iter().zip(want) {
            assert_eq!(F16Bits(*v).positive(), w, "bits {v:#06x}");
        }
    }
}
