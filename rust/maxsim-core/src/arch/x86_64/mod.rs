//! x86-64 kernels.

pub mod amx;
pub mod avx2;
pub mod avx512;
