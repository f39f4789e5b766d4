//! avx2 kernels.

pub mod argmax;
pub mod binary;
pub mod float;
pub mod reduced;
pub mod vector;
