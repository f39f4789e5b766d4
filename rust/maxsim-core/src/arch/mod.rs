//! One folder per instruction set. Each implements the vocabulary of
//! [`crate::vector`] for its registers, instantiates the generic algorithms
//! inside `#[target_feature]` entry points, and returns its
//! [`KernelTable`](crate::dispatch::KernelTable) from `mod.rs`.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
