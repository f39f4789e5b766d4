//! AVX2 + FMA kernels.

pub mod binary;
pub(crate) mod float;
pub(crate) mod hamming_lut;
pub(crate) mod reduced;
pub mod vector;

use crate::arch::portable;
use crate::binary::HammingImpl;
use crate::dispatch::{Cpu, HalfKernel, Kernel, KernelTable};

/// float16 documents on a CPU without F16C: the portable kernel.
const F16_WITHOUT_F16C: HalfKernel = HalfKernel {
    name: "avx2: scalar kernel (no f16c)",
    ..portable::reduced::F16
};

/// The `avx2` kernel's table.
pub(crate) fn table(cpu: &Cpu) -> KernelTable {
    KernelTable {
        kernel: Kernel::Avx2,
        float: float::FLOAT,
        screen: None,
        screen_on: false,
        f16: if cpu.f16c {
            reduced::F16
        } else {
            F16_WITHOUT_F16C
        },
        bf16: reduced::BF16,
        bf16_tiles: None,
        int8: reduced::INT8,
        int8_alternatives: &[],
        hamming: HammingImpl::Avx2Lut,
        quantize_rows: reduced::QUANTIZE_ROWS,
        quantize_name: "avx2",
        fma_peak: Some(float::PEAK),
    }
}
