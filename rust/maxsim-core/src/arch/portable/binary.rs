//! The portable ("scalar") Hamming kernels: the blocked algorithms over plain
//! Rust arrays with `u64::count_ones`. The baseline build is the reference
//! every SIMD path is tested against; the `popcnt` build is what the scalar
//! kernel runs on x86-64 CPUs that have `POPCNT`.

use crate::binary::blocked::tile_kernels;
use crate::binary::PortableU64;

tile_kernels!(PortableU64, 2);

/// The same vocabulary compiled with x86-64 `POPCNT`: one `popcnt` per `u64`.
#[cfg(target_arch = "x86_64")]
pub(crate) mod popcnt {
    use super::PortableU64;
    use crate::binary::blocked::tile_kernels;

    // One query row at a time: 8 lane counters already fill most of the
    // general-purpose registers.
    tile_kernels!(PortableU64, 1, "popcnt");
}
