//! AVX2 + FMA kernels.

pub(crate) mod argmax;
pub mod binary;
pub(crate) mod float;
pub(crate) mod hamming_lut;
pub(crate) mod int8_maddubs;
pub(crate) mod int8_vnni;
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

/// The `avx2` kernel's table. Where CPU families differ, the choice follows
/// the vendor (AMD Zen 2/3 against Intel Haswell to Alder Lake P-cores) or
/// a feature that marks the family (AVX-VNNI):
///
/// * **The int16 screen** (it needs F16C for float16 documents) is on by
///   default on AMD only. On Zen 2/3 `vpmaddwd` issues on two of the four
///   vector integer pipes and its accumulating `vpaddd` on the other two, so
///   a pair does 16 multiply-adds where an FMA does 8 on one of two FMA pipes:
///   twice the rate, enough to pay for quantizing every document (from the
///   query sizes in `screen::MIN_TOKENS`). Where the CPU has AVX-VNNI (AMD
///   from Zen 5, Intel from Alder Lake) the tile accumulates with one
///   `vpdpwssd` instead (`screen::SCREEN_VNNI`, about 7-15 % faster on Zen 5;
///   `vpmaddwd` stays an alternative the tests run). On Intel `vpmaddwd`
///   uses ports 0 and 1, the FMA ports, and the adds then queue on port 5
///   alone, so the tile's ceiling is 1.5 times the FMA rate; `vpdpwssd` on
///   the same two ports would lift it to twice, as on AMD, but neither has
///   been measured to pay after the quantization on an Intel CPU: off there
///   until it is. `MAXSIM_BF16_SCREEN=1|0` overrides; results are bitwise
///   the same either way.
/// * **int8**: AVX-VNNI `vpdpbusd` (`int8_vnni`) where the CPU has it
///   (Intel from Alder Lake, AMD from Zen 5): one accumulating instruction
///   per 32 multiply-adds, 3.7x the float32 kernel's speed on the fixed
///   workload where `vpmaddwd` gives 1.7x (Zen 5 with this kernel forced,
///   BENCHMARKS.md "AVX2 kernel on AMD Zen 5"). Without it (Zen 2/3, Intel
///   before Alder Lake), `vpmaddwd`; `vpmaddubsw` (`int8_maddubs`) is an
///   alternative the tests run, and all three give bitwise the same scores.
///   Per 32 multiply-adds `vpmaddwd` issues two multiplies and two `vpaddd`,
///   `vpmaddubsw` the same two multiplies (`vpmaddubsw`, then `vpmaddwd` by
///   ones) plus `vpsignb` and `vpaddd`: no fewer multiply uops, so no higher
///   ceiling, and on Zen 3 it measured level at best (BENCHMARKS.md "AVX2
///   (AMD Zen 3)"). On Intel `vpsignb` also takes ports 0 and 1 with both
///   multiplies (three uops there against two), which only widens the gap.
/// * **Hamming**: the nibble-table kernel on both. Its L1-resident rate on
///   Zen 3 is above both the `vpshufb` kernel's and scalar `popcnt`'s
///   (`examples/hamming_bounds.rs`, BENCHMARKS.md "AVX2 (AMD Zen 3)"), and Zen
///   3 is scalar `popcnt`'s best case (four per cycle; Intel issues one per
///   cycle, on port 1: 8 bytes), while Intel issues the lookups it is bound
///   by at one (Haswell to Skylake, port 5: 16 bytes) or two (Ice Lake and
///   Alder Lake P-cores, ports 1 and 5) per cycle. Harley-Seal carry-save
///   counting needs about 6.5 logic operations per 32 bytes against the
///   tables' 4, and its bare loop ran at 0.6x their whole search on Zen 5
///   (`examples/hamming_harley_seal.rs`): no such kernel.
pub(crate) fn table(cpu: &Cpu, env: &Env) -> KernelTable {
    let screen = cpu.f16c.then_some(if cpu.avxvnni {
        screen::SCREEN_VNNI
    } else {
        screen::SCREEN
    });
    KernelTable {
        kernel: Kernel::Avx2,
        float: float::FLOAT,
        centroids: argmax::CENTROIDS,
        screen,
        screen_alternatives: if cpu.f16c && cpu.avxvnni {
            &[screen::SCREEN]
        } else {
            &[]
        },
        screen_on: screen.is_some() && env.bf16_screen.unwrap_or(cpu.amd),
        f16: if cpu.f16c {
            reduced::F16
        } else {
            F16_WITHOUT_F16C
        },
        bf16: reduced::BF16,
        bf16_tiles: None,
        int8: if cpu.avxvnni {
            int8_vnni::INT8
        } else {
            reduced::INT8
        },
        int8_alternatives: if cpu.avxvnni {
            &[reduced::INT8, int8_maddubs::INT8]
        } else {
            &[int8_maddubs::INT8]
        },
        hamming: HammingImpl::Avx2Lut,
        quantize_rows: reduced::QUANTIZE_ROWS,
        quantize_name: "avx2",
        fma_peak: Some(float::PEAK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int16_screen_follows_avx_vnni() {
        // AVX-VNNI CPUs screen with `vpdpwssd` and keep `vpmaddwd` for the
        // tests; others have `vpmaddwd` alone; without F16C, no screen.
        let zen3 = Cpu {
            amd: true,
            avx2_fma: true,
            f16c: true,
            ..Cpu::default()
        };
        let zen5 = Cpu {
            avxvnni: true,
            ..zen3
        };
        let env = Env::default();
        let names = |cpu: &Cpu| {
            let t = table(cpu, &env);
            let own = t.screen.map(|s| s.name);
            let others: Vec<&str> = t.screen_alternatives.iter().map(|s| s.name).collect();
            (own, others)
        };
        assert_eq!(
            names(&zen5),
            (Some(screen::SCREEN_VNNI.name), vec![screen::SCREEN.name])
        );
        assert_eq!(names(&zen3), (Some(screen::SCREEN.name), vec![]));
        let no_f16c = Cpu {
            f16c: false,
            ..zen5
        };
        assert_eq!(names(&no_f16c), (None, vec![]));
        assert_ne!(screen::SCREEN_VNNI.name, screen::SCREEN.name);
    }
}
