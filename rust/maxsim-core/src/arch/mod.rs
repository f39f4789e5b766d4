//! One folder per instruction set. Each implements the vocabulary of
//! [`crate::vector`] for its registers and instantiates the portable
//! algorithms inside `#[target_feature]` entry points.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
