//! avx512 kernels.

pub mod argmax;
pub mod binary;
pub mod float;
pub mod reduced;
pub mod screen;
pub mod vector;
