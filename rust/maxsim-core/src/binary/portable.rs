//! The portable ("scalar") Hamming kernel: the blocked algorithms over plain
//! Rust arrays with `u64::count_ones`. It is the reference every SIMD path is
//! tested against.

use super::blocked::tile_kernels;
use super::popcount::PortableU64;

tile_kernels!(PortableU64, 2);
