//! NEON (Advanced SIMD) kernels; `sdot` where the CPU has `dotprod`.

pub(crate) mod argmax;
pub mod binary;
pub(crate) mod float;
pub(crate) mod reduced;
pub mod vector;

use crate::binary::HammingImpl;
use crate::dispatch::{Cpu, Env, Kernel, KernelTable};

/// The `neon` kernel's table. The quantizer runs its portable build, which
/// LLVM vectorises for NEON (part of the aarch64 baseline).
pub(crate) fn table(cpu: &Cpu, _env: &Env) -> KernelTable {
    KernelTable {
        kernel: Kernel::Neon,
        float: float::FLOAT,
        centroids: argmax::CENTROIDS,
        screen: None,
        screen_alternatives: &[],
        screen_on: false,
        f16: reduced::F16,
        bf16: reduced::BF16,
        bf16_tiles: None,
        int8: if cpu.dotprod {
            reduced::INT8_SDOT
        } else {
            reduced::INT8_SMLAL
        },
        int8_alternatives: if cpu.dotprod {
            &[reduced::INT8_SMLAL]
        } else {
            &[]
        },
        hamming: HammingImpl::Neon,
        quantize_rows: crate::reduced::quantize::quantize_rows_portable,
        quantize_name: "portable (NEON baseline)",
        fma_peak: Some(float::PEAK),
    }
}
