//! The SIMD vocabulary of the binary kernels: Hamming distances of one query
//! word against an interleaved group of [`GROUP`] codes.
//!
//! Each ISA folder implements [`Popcount8`]; the algorithms in
//! [`super::blocked`] are generic over it and are instantiated inside
//! `#[target_feature]` functions. [`PortableU64`] is the plain-Rust
//! implementation (`u64::count_ones`), also instantiated with the `popcnt`
//! feature on x86-64.

use super::layout::GROUP;

/// Eight `u32` Hamming distances, lane `i` belonging to code `i` of a group.
///
/// Distances are accumulated in two levels: `Partial` absorbs up to
/// `PARTIAL_WORDS` code words (byte-wise counters for the `pshufb` and
/// `vcnt` kernels, exact counters where the ISA has a 64-bit popcount), then
/// [`Popcount8::add_partial`] widens it into the exact `u32` lanes.
///
/// # Safety
/// Implementations use ISA intrinsics: callers must only use a type inside a
/// function compiled with (and running on a CPU with) the matching features,
/// and `load_group`/`store` pointers must be valid for [`GROUP`] values.
/// That contract covers every method (hence no per-method `# Safety`).
#[allow(clippy::missing_safety_doc)]
pub unsafe trait Popcount8: Copy {
    /// Word `k` of the eight codes of a group, as loaded once and shared by every query.
    type Group: Copy;
    /// Counts of a few words, not yet widened.
    type Partial: Copy;
    /// Words a `Partial` may absorb before it must be widened.
    const PARTIAL_WORDS: usize;
    /// All distances zero.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: u32) -> Self;
    /// Loads word `k` of the eight codes (eight consecutive `u64`).
    unsafe fn load_group(ptr: *const u64) -> Self::Group;
    /// An empty partial count.
    unsafe fn partial_zero() -> Self::Partial;
    /// `p + popcount(q ^ g)`, lane by lane.
    unsafe fn accumulate(p: Self::Partial, q: u64, g: Self::Group) -> Self::Partial;
    /// `self + p`, widened to exact `u32` lanes.
    unsafe fn add_partial(self, p: Self::Partial) -> Self;
    /// Bit `i` set where lane `i` is `< threshold` (unsigned).
    unsafe fn lt_mask(self, threshold: u32) -> u32;
    /// Lane-wise minimum.
    unsafe fn min(self, other: Self) -> Self;
    /// Unaligned store of the eight lanes.
    unsafe fn store(self, out: *mut u32);
    /// Distances of one query (`w` words at `q`) to eight row-major codes of
    /// `w` words each, code `i` at `rows + i * stride` bytes (unaligned). The
    /// default counts `u64` words with `count_ones`; ISAs without a vector
    /// popcount override it. `w` is at most `ROWS_MAX_WORDS`.
    #[inline(always)]
    unsafe fn rows8(q: *const u64, w: usize, rows: *const u8, stride: usize) -> Self {
        let mut lanes = [0u32; GROUP];
        for (i, lane) in lanes.iter_mut().enumerate() {
            let row = rows.add(i * stride) as *const u64;
            for k in 0..w {
                *lane += (*q.add(k) ^ u64::from_le(row.add(k).read_unaligned())).count_ones();
            }
        }
        Self::load(lanes.as_ptr())
    }
    /// Unaligned load of eight lanes.
    unsafe fn load(ptr: *const u32) -> Self;
}

/// Longest code (in `u64` words) the row-major `rows8` path handles: 124
/// words, so 31 chunks of four words keep byte counters below 256.
pub const ROWS_MAX_WORDS: usize = 124;

/// Eight lanes in plain Rust: `u64::count_ones` per code word. Compiled for
/// the baseline target it is the portable reference; instantiated under
/// `#[target_feature(enable = "popcnt")]` it is the scalar `POPCNT` kernel.
#[derive(Clone, Copy)]
pub struct PortableU64([u32; GROUP]);

// SAFETY: plain array arithmetic; `load_group`/`store` touch exactly eight
// values, which the trait contract makes the caller guarantee.
unsafe impl Popcount8 for PortableU64 {
    type Group = [u64; GROUP];
    type Partial = [u32; GROUP];
    const PARTIAL_WORDS: usize = usize::MAX;
    #[inline(always)]
    unsafe fn zero() -> Self {
        PortableU64([0; GROUP])
    }
    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        PortableU64([x; GROUP])
    }
    #[inline(always)]
    unsafe fn load_group(ptr: *const u64) -> Self::Group {
        std::ptr::read_unaligned(ptr as *const [u64; GROUP])
    }
    #[inline(always)]
    unsafe fn partial_zero() -> Self::Partial {
        [0; GROUP]
    }
    #[inline(always)]
    unsafe fn accumulate(mut p: Self::Partial, q: u64, g: Self::Group) -> Self::Partial {
        for (count, word) in p.iter_mut().zip(g) {
            *count += (q ^ word).count_ones();
        }
        p
    }
    #[inline(always)]
    unsafe fn add_partial(mut self, p: Self::Partial) -> Self {
        for (total, count) in self.0.iter_mut().zip(p) {
            *total += count;
        }
        self
    }
    #[inline(always)]
    unsafe fn lt_mask(self, threshold: u32) -> u32 {
        self.0
            .iter()
            .enumerate()
            .fold(0, |mask, (i, &d)| mask | (((d < threshold) as u32) << i))
    }
    #[inline(always)]
    unsafe fn min(mut self, other: Self) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = (*a).min(b);
        }
        self
    }
    #[inline(always)]
    unsafe fn store(self, out: *mut u32) {
        std::ptr::write_unaligned(out as *mut [u32; GROUP], self.0)
    }
    #[inline(always)]
    unsafe fn load(ptr: *const u32) -> Self {
        PortableU64(std::ptr::read_unaligned(ptr as *const [u32; GROUP]))
    }
}
