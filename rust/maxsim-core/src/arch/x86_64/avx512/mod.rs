//! AVX-512 kernels (F, BW and VL; VNNI, VPOPCNTDQ and BF16 where the CPU has them).

pub(crate) mod argmax;
pub mod binary;
pub(crate) mod float;
pub(crate) mod reduced;
pub(crate) mod screen;
pub mod vector;

use crate::binary::HammingImpl;
use crate::dispatch::{Cpu, Env, Kernel, KernelTable};

/// The `avx512` kernel's table.
///
/// The bf16 screen is on where `vdpbf16ps` retires twice the multiply-adds
/// of an fp32 FMA: AMD Zen 4 and Zen 5. On Intel (Cooper Lake, Sapphire
/// Rapids) it shares the FMA ports without doubling their rate, so the
/// screen would only add work. `MAXSIM_BF16_SCREEN=1|0` overrides. From
/// which query size it screens float32 documents differs between Zen 4 and
/// Zen 5 (`screen::screen_for`).
pub(crate) fn table(cpu: &Cpu, env: &Env) -> KernelTable {
    let screen = cpu.avx512bf16.then(|| screen::screen_for(cpu));
    KernelTable {
        kernel: Kernel::Avx512,
        float: float::FLOAT,
        centroids: argmax::CENTROIDS,
        screen,
        screen_alternatives: &[],
        screen_on: screen.is_some() && env.bf16_screen.unwrap_or(cpu.amd),
        f16: if cpu.f16c {
            reduced::F16
        } else {
            reduced::F16_WITHOUT_F16C
        },
        bf16: reduced::BF16,
        bf16_tiles: None,
        int8: if cpu.avx512vnni {
            reduced::INT8_VNNI
        } else {
            reduced::INT8_BW
        },
        int8_alternatives: if cpu.avx512vnni {
            &[reduced::INT8_BW]
        } else {
            &[]
        },
        hamming: if cpu.avx512vpopcntdq {
            HammingImpl::Avx512
        } else {
            HammingImpl::Avx2Lut
        },
        quantize_rows: super::avx2::reduced::QUANTIZE_ROWS,
        quantize_name: "avx2",
        fma_peak: Some(float::PEAK),
    }
}
