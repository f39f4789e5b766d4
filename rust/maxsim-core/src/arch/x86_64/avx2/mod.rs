//! AVX2 + FMA kernels.

pub(crate) mod argmax;
pub mod binary;
pub(crate) mod float;
pub(crate) mod hamming_lut;
pub(crate) mod reduced;
pub(crate) mod screen;
pub mod vector;

use crate::arch::portable;
use crate::binary::HammingImpl;
use crate::dispatch::{Cpu, Env, HalfKernel, Kernel, KernelTable};

/// float16 documents on a CPU without F16C: the portable kernel.
const F16_WITHOUT_F16C: HalfKernel = HalfKernel {
    name: "avx2: scalar kernel (no f16c)",
    ..portable::reduced::F16
};

/// The `avx2` kernel's table.
///
/// The int16 screen (it needs F16C for float16 documents) is on by default:
/// `vpmaddwd` with its `vpaddd` does twice an FMA's multiply-adds per pair of
/// vector operations on AVX2 cores, AMD (Zen 2/3: four integer vector pipes
/// against two FMA pipes) and Intel (Skylake to Alder Lake P-cores: three
/// integer vector ports against two FMA ports). `MAXSIM_BF16_SCREEN=1|0`
/// overrides.
pub(crate) fn table(cpu: &Cpu, env: &Env) -> KernelTable {
    let screen = cpu.f16c.then_some(screen::SCREEN);
    KernelTable {
        kernel: Kernel::Avx2,
        float: float::FLOAT,
        centroids: argmax::CENTROIDS,
        screen,
        screen_on: screen.is_some() && env.bf16_screen.unwrap_or(true),
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
