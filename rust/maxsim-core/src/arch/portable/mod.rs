//! The portable ("scalar") kernels: the generic algorithms over plain Rust
//! arrays, for any CPU. They are also the reference the SIMD kernels are
//! tested against.

pub(crate) mod argmax;
pub(crate) mod binary;
pub(crate) mod float;
pub(crate) mod reduced;

use crate::binary::HammingImpl;
use crate::dispatch::{Cpu, Env, FloatKernel, Kernel, KernelTable};

/// The scalar kernel's table. On x86-64 its Hamming loop uses `POPCNT`
/// where the CPU has it (a baseline instruction of every x86-64-v2 CPU).
pub(crate) fn table(cpu: &Cpu, _env: &Env) -> KernelTable {
    KernelTable {
        kernel: Kernel::Scalar,
        float: FloatKernel {
            doc_maxes: float::doc_maxes,
            name: "scalar",
        },
        centroids: argmax::CENTROIDS,
        screen: None,
        screen_alternatives: &[],
        screen_on: false,
        f16: reduced::F16,
        bf16: reduced::BF16,
        bf16_tiles: None,
        int8: reduced::INT8,
        int8_alternatives: &[],
        hamming: if cpu.popcnt {
            HammingImpl::Popcnt
        } else {
            HammingImpl::Portable
        },
        quantize_rows: crate::reduced::quantize::quantize_rows_portable,
        quantize_name: "scalar",
        fma_peak: None,
    }
}
