//! The int8 quantizer and the float16 / bfloat16 narrowing used by `maxsim.quantize`.
//!
//! int8 scheme (per token, symmetric, "absmax"):
//!
//! ```text
//! s    = max_k |x_k| / 127                      (f32 division, round to nearest even)
//! c_k  = clamp(round_half_even(x_k / s), -127, 127)
//! x_k ≈ s · c_k,   |x_k − s · c_k| ≤ s / 2 · (1 + 2⁻²⁰)
//! ```
//!
//! Codes stay in `[-127, 127]` (−128 is never produced), so negation is exact
//! and the integer kernels cannot overflow for `dim ≤` [`MAX_INT8_DIM`]. A token
//! whose largest magnitude is below [`MIN_INT8_ABSMAX`] (including an all-zero
//! token) gets scale 0 and all-zero codes. NaN or ±inf cannot be quantized and
//! are rejected with the token's index.

use super::half::{HalfFloat, HalfFormat};
use crate::dispatch::selected_table;
use crate::error::{invalid, Result};
use crate::threads;
use rayon::prelude::*;

/// Tokens whose largest magnitude is below this quantize to scale 0 and zero
/// codes (their `max/127` would be subnormal).
pub const MIN_INT8_ABSMAX: f32 = 1e-30;

/// The widest int8 rows the kernels accept: `127² · dim` must fit in int32.
pub const MAX_INT8_DIM: usize = 65_536;

/// 1.5 · 2²³: adding and subtracting it rounds an f32 of magnitude below 2²²
/// to the nearest integer, ties to even, without SSE4.1 or a libm call.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Quantizes one token. Returns its scale, or `Err(k)` for the first
/// non-finite value at position `k`.
pub fn quantize_row(row: &[f32], codes: &mut [i8]) -> std::result::Result<f32, usize> {
    quantize_row_inline(row, codes)
}

/// Quantizes consecutive `dim`-wide rows into `codes` / `scales`; returns the
/// first failing `(row, dimension)`. Unsafe: a build may need CPU features
/// (the kernel table holds the one for this CPU).
pub(crate) type RowsFn = unsafe fn(&[f32], usize, &mut [i8], &mut [f32]) -> Option<(usize, usize)>;

/// The row loop every build instantiates (IEEE operations only, so every
/// build returns the same codes and scales).
#[inline(always)]
pub(crate) fn quantize_rows_inline(
    values: &[f32],
    dim: usize,
    codes: &mut [i8],
    scales: &mut [f32],
) -> Option<(usize, usize)> {
    for (r, (c, s)) in codes
        .chunks_exact_mut(dim)
        .zip(scales.iter_mut())
        .enumerate()
    {
        match quantize_row_inline(&values[r * dim..(r + 1) * dim], c) {
            Ok(scale) => *s = scale,
            Err(k) => return Some((r, k)),
        }
    }
    None
}

/// The portable build of [`quantize_rows_inline`]: needs no CPU feature.
///
/// # Safety
/// None: it is `unsafe` only to share [`RowsFn`] with builds that need features.
pub(crate) unsafe fn quantize_rows_portable(
    values: &[f32],
    dim: usize,
    codes: &mut [i8],
    scales: &mut [f32],
) -> Option<(usize, usize)> {
    quantize_rows_inline(values, dim, codes, scales)
}

#[inline(always)]
fn quantize_row_inline(row: &[f32], codes: &mut [i8]) -> std::result::Result<f32, usize> {
    debug_assert_eq!(row.len(), codes.len());
    // Written so that LLVM vectorises every loop: integer exponent tests for
    // finiteness, plain compares for the maximum and the clamp, and the
    // rounded value read back from the bits of `v + 1.5·2²³`.
    const EXPONENT: u32 = 0x7F80_0000;
    // Eight independent running maxima: one accumulator is a serial chain
    // that LLVM keeps scalar (reassociating a max needs fast-math flags); eight
    // are plain lane-wise operations it turns into one `vmaxps`. The maximum
    // of finite values does not depend on the order, so the result is the same.
    const LANES: usize = 8;
    let mut lane_max = [0.0f32; LANES];
    let mut lane_nonfinite = [false; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for ((m, bad), &x) in lane_max.iter_mut().zip(&mut lane_nonfinite).zip(chunk) {
            *bad |= x.to_bits() & EXPONENT == EXPONENT;
            let a = x.abs();
            *m = if a > *m { a } else { *m };
        }
    }
    let mut amax = 0.0f32;
    let mut nonfinite = lane_nonfinite.iter().any(|&bad| bad);
    for &x in tail.iter().chain(&lane_max) {
        nonfinite |= x.to_bits() & EXPONENT == EXPONENT;
        let a = x.abs();
        amax = if a > amax { a } else { amax };
    }
    if nonfinite {
        return Err(row.iter().position(|x| !x.is_finite()).unwrap_or(0));
    }
    if amax < MIN_INT8_ABSMAX {
        codes.fill(0);
        return Ok(0.0);
    }
    let scale = amax / 127.0;
    for (c, &x) in codes.iter_mut().zip(row) {
        let v = x / scale;
        // Clamping before rounding gives the same code as after: round(±127) = ±127.
        let v = v.clamp(-127.0, 127.0);
        // |v| <= 127 < 2²²: the sum's low mantissa bits hold round_half_even(v).
        let bits = (v + ROUND_MAGIC).to_bits() as i32;
        *c = (bits - ROUND_MAGIC.to_bits() as i32) as i8;
    }
    Ok(scale)
}

/// Quantizes `values` (row-major, `dim` wide) token by token, in parallel.
/// Returns `(codes, scales)` with one scale per row.
pub fn quantize_int8(values: &[f32], dim: usize) -> Result<(Vec<i8>, Vec<f32>)> {
    let rows = values.len().checked_div(dim).unwrap_or(0);
    let mut codes = vec![0i8; values.len()];
    let mut scales = vec![0.0f32; rows];
    quantize_int8_into(values, dim, &mut codes, &mut scales)?;
    Ok((codes, scales))
}

/// As [`quantize_int8`], into caller-provided buffers: `codes` of
/// `values.len()` and `scales` of one entry per row (their previous contents
/// are overwritten; on an error they are unspecified). The Python binding
/// passes numpy-allocated outputs, which numpy backs with huge pages: a
/// fresh `Vec` of tens of MB spent a third of the call in page faults.
pub fn quantize_int8_into(
    values: &[f32],
    dim: usize,
    codes: &mut [i8],
    scales: &mut [f32],
) -> Result<()> {
    if dim == 0 {
        return invalid!("docs: dimension must be at least 1");
    }
    if !values.len().is_multiple_of(dim) {
        return invalid!(
            "docs: {} values is not a whole number of rows of dim {dim}",
            values.len()
        );
    }
    if dim > MAX_INT8_DIM {
        return invalid!(
            "docs: dimension {dim} is larger than the int8 kernels support ({MAX_INT8_DIM})"
        );
    }
    let rows = values.len() / dim;
    if codes.len() != values.len() || scales.len() != rows {
        return invalid!(
            "out: {} codes and {} scales for {} values in {rows} rows",
            codes.len(),
            scales.len(),
            values.len()
        );
    }
    let rows_per_task = 1024;
    let quantize_rows = selected_table()?.quantize_rows;
    let failure = threads::install(|| {
        codes
            .par_chunks_mut(rows_per_task * dim)
            .zip(scales.par_chunks_mut(rows_per_task))
            .enumerate()
            .map(|(task, (codes, scales))| {
                let first = task * rows_per_task;
                let values = &values[first * dim..(first + scales.len()) * dim];
                // SAFETY: the table of the kernel in force holds a build this
                // CPU runs (dispatch checked the kernel is supported).
                unsafe { quantize_rows(values, dim, codes, scales) }.map(|(r, k)| (first + r, k))
            })
            .find_first(|f| f.is_some())
            .flatten()
    });
    if let Some((row, k)) = failure {
        return invalid!(
            "docs: token {row} has a non-finite value ({}) at dimension {k}; int8 quantization needs finite values",
            values[row * dim + k]
        );
    }
    Ok(())
}

/// Narrows `values` to a 16-bit float format (round to nearest even; NaN
/// stays NaN), in parallel with the selected kernel's conversion
/// instructions. A finite value beyond the format's range (±65504 for
/// float16) is an error naming its index rather than a silent ±inf.
pub fn to_half<T: HalfFloat>(values: &[f32], out: &mut [T]) -> Result<()> {
    to_half_bits(values, T::as_bits_mut(out), T::FORMAT)
}

/// As [`to_half`], writing raw bits.
pub fn to_half_bits(values: &[f32], out: &mut [u16], format: HalfFormat) -> Result<()> {
    if values.len() != out.len() {
        return invalid!(
            "out: has {} elements for {} values",
            out.len(),
            values.len()
        );
    }
    let narrow = selected_table()?.half(format).narrow;
    let per_task = 1 << 16;
    let inf = match format {
        HalfFormat::F16 => 0x7C00,
        HalfFormat::Bf16 => 0x7F80,
    };
    let overflow = threads::install(|| {
        out.par_chunks_mut(per_task)
            .zip(values.par_chunks(per_task))
            .enumerate()
            .map(|(task, (dst, src))| {
                // SAFETY: `src` and `dst` have the same length (chunks of
                // equal-length slices), and `narrow` needs only features of the
                // kernel in force, which dispatch checked is supported.
                unsafe { narrow(src.as_ptr(), dst.as_mut_ptr(), src.len()) };
                // Infinity in the output where the input was finite: overflow.
                // (A vectorised scan for infinities first; the exact position
                // only in the rare case there is one.)
                let any_inf = dst
                    .iter()
                    .fold(false, |seen, &h| seen | (h & 0x7FFF == inf));
                if !any_inf {
                    return None;
                }
                dst.iter()
                    .zip(src)
                    .position(|(&h, x)| h & 0x7FFF == inf && x.is_finite())
                    .map(|i| task * per_task + i)
            })
            .find_first(|o| o.is_some())
            .flatten()
    });
    if let Some(i) = overflow {
        return invalid!(
            "docs: value {} at flat index {i} is outside the {} range (largest finite {}); scale the embeddings or use another dtype",
            values[i],
            format.name(),
            match format {
                HalfFormat::F16 => "65504",
                HalfFormat::Bf16 => "3.39e38",
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_bounds_and_extremes() {
        let row = [0.5f32, -1.0, 0.25, 1e-3, -0.999];
        let mut codes = [0i8; 5];
        let s = quantize_row(&row, &mut codes).unwrap();
        assert_eq!(s, 1.0 / 127.0);
        assert_eq!(codes[1], -127);
        for (x, c) in row.iter().zip(codes) {
            assert!((*x as f64 - s as f64 * c as f64).abs() <= s as f64 * 0.5 * (1.0 + 1e-6));
        }
        let mut z = [1i8; 3];
        assert_eq!(quantize_row(&[0.0, -0.0, 1e-38], &mut z), Ok(0.0));
        assert_eq!(z, [0, 0, 0]);
        assert_eq!(quantize_row(&[0.0, f32::NAN], &mut z[..2]), Err(1));
    }

    #[test]
    fn ties_round_to_even() {
        // amax 127 → scale 1: x/s is exact, so ties are visible.
        let row = [127.0f32, 2.5, -2.5, 3.5, 0.5, -0.5];
        let mut codes = [0i8; 6];
        assert_eq!(quantize_row(&row, &mut codes), Ok(1.0));
        assert_eq!(codes, [127, 2, -2, 4, 0, 0]);
    }
}
