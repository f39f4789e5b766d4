//! float16 / bfloat16 storage: the element trait, portable conversions, and
//! the conversion routines each kernel uses.
//!
//! Scoring widens each document tile to float32 inside the float tile loop
//! (exact: every f16 and bf16 value is an f32 value; see `half_blocked`), so
//! a reduced-precision document scores bitwise the same as its float32
//! widening would.

use crate::docs::DocSet;

/// The two 16-bit float formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HalfFormat {
    /// IEEE 754 binary16: 1 sign, 5 exponent, 10 mantissa bits.
    F16,
    /// bfloat16: the top 16 bits of an f32 (1 sign, 8 exponent, 7 mantissa bits).
    Bf16,
}

impl HalfFormat {
    /// `"float16"` or `"bfloat16"`.
    pub fn name(self) -> &'static str {
        match self {
            HalfFormat::F16 => "float16",
            HalfFormat::Bf16 => "bfloat16",
        }
    }
}

/// A 16-bit float storage type (`half::f16` or `half::bf16`).
pub trait HalfFloat: Copy + Send + Sync + 'static {
    /// Which format this is.
    const FORMAT: HalfFormat;
    /// The raw bits of a slice (no copy).
    fn as_bits(values: &[Self]) -> &[u16];
    /// The raw bits of a mutable slice (no copy).
    fn as_bits_mut(values: &mut [Self]) -> &mut [u16];
    /// Raw bits viewed as values (no copy).
    fn from_bits_slice(bits: &[u16]) -> &[Self];
    /// The documents as bfloat16, when this is bfloat16 (for kernels that
    /// exist only for bfloat16).
    fn as_bf16_docs<'d, 'a>(docs: &'d DocSet<'a, Self>) -> Option<&'d DocSet<'a, half::bf16>>;
}

/// Both formats reinterpret their slices through the `half` crate.
macro_rules! impl_half_float {
    ($($ty:ty => $format:ident, $as_bf16:expr),*) => {$(
        impl HalfFloat for $ty {
            const FORMAT: HalfFormat = HalfFormat::$format;
            fn as_bf16_docs<'d, 'a>(
                docs: &'d DocSet<'a, Self>,
            ) -> Option<&'d DocSet<'a, half::bf16>> {
                $as_bf16(docs)
            }
            fn as_bits(values: &[Self]) -> &[u16] {
                half::slice::HalfFloatSliceExt::reinterpret_cast(values)
            }
            fn as_bits_mut(values: &mut [Self]) -> &mut [u16] {
                half::slice::HalfFloatSliceExt::reinterpret_cast_mut(values)
            }
            fn from_bits_slice(bits: &[u16]) -> &[Self] {
                half::slice::HalfBitsSliceExt::reinterpret_cast(bits)
            }
        }
    )*};
}

impl_half_float!(
    half::f16 => F16, |_| None,
    half::bf16 => Bf16, Some
);

/// Narrows `n` f32 values at `src` to 16-bit values at `dst` (round to nearest even).
pub(crate) type FromF32Fn = unsafe fn(src: *const f32, dst: *mut u16, n: usize);

/// Exact f16 → f32 (the `half` crate's bit manipulation).
#[inline]
pub(crate) fn f16_bits_to_f32(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// Exact bf16 → f32: the bits become the top half of the f32 (NaN payloads kept).
#[inline]
pub(crate) fn bf16_bits_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// f32 → f16, round to nearest even; overflow gives ±inf, NaN stays NaN.
#[inline]
pub(crate) fn f32_to_f16_bits(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

/// f32 → bf16, round to nearest even; overflow gives ±inf, NaN stays (quiet) NaN.
#[inline]
pub(crate) fn f32_to_bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7FFF_FFFF > 0x7F80_0000 {
        return ((bits >> 16) | 0x0040) as u16;
    }
    let lsb = (bits >> 16) & 1;
    (bits.wrapping_add(0x7FFF + lsb) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding_matches_half_crate() {
        let specials = [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            1.0039062,
            1.0117188,
            3.4e38,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40,
        ];
        let mut state = 0x1234_5678_u32;
        let randoms = (0..10_000).map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            f32::from_bits(state)
        });
        for x in specials.into_iter().chain(randoms) {
            let ours = f32_to_bf16_bits(x);
            let theirs = half::bf16::from_f32(x).to_bits();
            if x.is_nan() {
                assert!(bf16_bits_to_f32(ours).is_nan());
            } else {
                assert_eq!(ours, theirs, "{x:e}");
            }
        }
    }

    #[test]
    fn widening_is_exact() {
        for bits in 0..=u16::MAX {
            let a = f16_bits_to_f32(bits);
            let b = half::f16::from_bits(bits).to_f64();
            assert!(a as f64 == b || (a.is_nan() && b.is_nan()));
            let c = bf16_bits_to_f32(bits);
            let d = half::bf16::from_bits(bits).to_f64();
            assert!(c as f64 == d || (c.is_nan() && d.is_nan()));
        }
    }
}
