//! Everything the kernel table is chosen from: the CPU's features (CPUID and
//! the OS's consent), its vendor, and the environment variables.
//!
//! Probed once per process and cached; nothing else in the crate asks the CPU
//! or the environment, so what a table describes is what it was built from.
//! `MAXSIM_DISABLE_CPU_FEATURES` hides features from the probe, so that one
//! machine can run (and compare) the paths of a CPU without them.

use std::sync::OnceLock;

/// The features of this CPU (and OS) that some kernel needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// `AuthenticAMD`: on AMD Zen 4/5 `vdpbf16ps` doubles the fp32 FMA rate,
    /// which decides whether the bf16 screen pays (see `float::screen`).
    pub amd: bool,
    /// x86 display family (CPUID leaf 1, base plus extended family): 0x19
    /// for AMD Zen 3/4, 0x1A for Zen 5, whose full-width 512-bit FMA moves
    /// where the bf16 screen starts to pay. 0 elsewhere.
    pub family: u32,
    /// x86-64 `POPCNT`.
    pub popcnt: bool,
    /// x86-64 AVX2 and FMA (the `avx2` kernel needs both).
    pub avx2_fma: bool,
    /// x86-64 F16C (`vcvtph2ps`), for float16 documents on AVX2.
    pub f16c: bool,
    /// x86-64 AVX-512 F, BW and VL on top of AVX2 + FMA (the `avx512` kernel).
    pub avx512: bool,
    /// AVX512_VNNI (`vpdpbusd`), for int8 documents.
    pub avx512vnni: bool,
    /// AVX-VNNI (VEX `vpdpbusd` on 256 bits, without AVX-512: Intel from
    /// Alder Lake, AMD from Zen 5), for int8 documents on the `avx2` kernel.
    pub avxvnni: bool,
    /// AVX512_VPOPCNTDQ (`vpopcntq`), for Hamming distances.
    pub avx512vpopcntdq: bool,
    /// AVX512_BF16 (`vdpbf16ps`), for the bf16 screen.
    pub avx512bf16: bool,
    /// AVX512_FP16 (reported only; no kernel uses it).
    pub avx512fp16: bool,
    /// AMX-TILE, AMX-BF16 and AMX-INT8 in CPUID with tile state enabled in
    /// XCR0. Linux also wants a per-process permission: [`amx_permission`].
    pub amx: bool,
    /// aarch64 Advanced SIMD.
    pub neon: bool,
    /// aarch64 `sdot` (FEAT_DotProd), for int8 documents.
    pub dotprod: bool,
    /// aarch64 half-precision arithmetic (reported only).
    pub fp16: bool,
    /// aarch64 `smmla` (reported only).
    pub i8mm: bool,
    /// aarch64 BF16 instructions (reported only).
    pub bf16: bool,
    /// aarch64 SVE (reported only).
    pub sve: bool,
    /// aarch64 SVE2 (reported only).
    pub sve2: bool,
}

impl Cpu {
    /// This CPU, probed on first use, less the features
    /// `MAXSIM_DISABLE_CPU_FEATURES` names ([`Cpu::without`]).
    pub fn get() -> &'static Cpu {
        static CPU: OnceLock<Cpu> = OnceLock::new();
        CPU.get_or_init(|| Cpu::probe().without(&Env::get().disabled_features))
    }

    #[cfg(target_arch = "x86_64")]
    fn probe() -> Cpu {
        use std::arch::is_x86_feature_detected as has;
        let avx2_fma = has!("avx2") && has!("fma");
        Cpu {
            amd: x86::is_amd(),
            family: x86::family(),
            popcnt: has!("popcnt"),
            avx2_fma,
            f16c: has!("f16c"),
            avx512: avx2_fma && has!("avx512f") && has!("avx512bw") && has!("avx512vl"),
            avx512vnni: has!("avx512vnni"),
            avxvnni: avx2_fma && has!("avxvnni"),
            avx512vpopcntdq: has!("avx512vpopcntdq"),
            avx512bf16: has!("avx512bf16"),
            avx512fp16: has!("avx512fp16"),
            amx: x86::has_amx(),
            ..Cpu::default()
        }
    }

    #[cfg(target_arch = "aarch64")]
    fn probe() -> Cpu {
        use std::arch::is_aarch64_feature_detected as has;
        Cpu {
            neon: has!("neon"),
            dotprod: has!("dotprod"),
            fp16: has!("fp16"),
            i8mm: has!("i8mm"),
            bf16: has!("bf16"),
            sve: has!("sve"),
            sve2: has!("sve2"),
            ..Cpu::default()
        }
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn probe() -> Cpu {
        Cpu::default()
    }

    /// The names of the features found, as `maxsim.info()["cpu_features"]` lists them.
    pub fn feature_names(&self) -> Vec<&'static str> {
        let mut cpu = *self;
        FEATURES
            .iter()
            .filter(|(_, flag)| *flag(&mut cpu))
            .map(|&(name, _)| name)
            .collect()
    }
}

/// Where a feature's flag lives in a [`Cpu`].
pub(super) type FeatureFlag = fn(&mut Cpu) -> &mut bool;

/// Every feature flag under the names `maxsim.info()["cpu_features"]` lists
/// (and `MAXSIM_DISABLE_CPU_FEATURES` takes), in that order: x86-64, then
/// aarch64. A flag that stands for several features has a name for each.
pub(super) const FEATURES: [(&str, FeatureFlag); 22] = [
    ("popcnt", |c| &mut c.popcnt),
    ("avx2", |c| &mut c.avx2_fma),
    ("fma", |c| &mut c.avx2_fma),
    ("f16c", |c| &mut c.f16c),
    ("avx512f", |c| &mut c.avx512),
    ("avx512bw", |c| &mut c.avx512),
    ("avx512vl", |c| &mut c.avx512),
    ("avx512vnni", |c| &mut c.avx512vnni),
    ("avxvnni", |c| &mut c.avxvnni),
    ("avx512vpopcntdq", |c| &mut c.avx512vpopcntdq),
    ("avx512bf16", |c| &mut c.avx512bf16),
    ("avx512fp16", |c| &mut c.avx512fp16),
    ("amx-tile", |c| &mut c.amx),
    ("amx-bf16", |c| &mut c.amx),
    ("amx-int8", |c| &mut c.amx),
    ("neon", |c| &mut c.neon),
    ("fp16", |c| &mut c.fp16),
    ("dotprod", |c| &mut c.dotprod),
    ("i8mm", |c| &mut c.i8mm),
    ("bf16", |c| &mut c.bf16),
    ("sve", |c| &mut c.sve),
    ("sve2", |c| &mut c.sve2),
];

/// Whether this process may use AMX tile data: asked of Linux once
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); other systems
/// enable tile state for every process whose XCR0 has it. `false` without AMX.
pub fn amx_permission() -> bool {
    static GRANTED: OnceLock<bool> = OnceLock::new();
    *GRANTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            Cpu::get().amx && x86::request_amx_permission()
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// The environment variables maxsim reads, each read once.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `MAXSIM_KERNEL`: a kernel name to force (validated by dispatch).
    pub kernel: Option<String>,
    /// `MAXSIM_BF16_SCREEN`: `Some(true)` for `1`, `Some(false)` for `0`.
    pub bf16_screen: Option<bool>,
    /// `MAXSIM_NUM_THREADS`: a thread count of at least 1.
    pub num_threads: Option<usize>,
    /// `MAXSIM_REQUIRE_ISA`: comma-separated kernel or feature names (`avx512`,
    /// `avx512bf16`, `amx`, `neon`, ...) that tests must not skip for lack
    /// of: a CI run on a machine that should have them fails instead.
    pub require_isa: Vec<String>,
    /// `MAXSIM_DISABLE_CPU_FEATURES`: comma-separated feature names (as
    /// `maxsim.info()["cpu_features"]` lists them) to hide from dispatch.
    pub disabled_features: Vec<String>,
}

impl Env {
    /// The environment, read on first use.
    pub fn get() -> &'static Env {
        static ENV: OnceLock<Env> = OnceLock::new();
        ENV.get_or_init(|| {
            let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string());
            let list = |name: &str| {
                var(name)
                    .map(|v| {
                        v.split(',')
                            .map(|item| item.trim().to_ascii_lowercase())
                            .filter(|item| !item.is_empty())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Env {
                kernel: var("MAXSIM_KERNEL").filter(|v| !v.is_empty()),
                bf16_screen: match var("MAXSIM_BF16_SCREEN").as_deref() {
                    Some("1") => Some(true),
                    Some("0") => Some(false),
                    _ => None,
                },
                num_threads: var("MAXSIM_NUM_THREADS")
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|&n| n >= 1),
                require_isa: list("MAXSIM_REQUIRE_ISA"),
                disabled_features: list("MAXSIM_DISABLE_CPU_FEATURES"),
            }
        })
    }
}

/// For tests that need an ISA this CPU may lack: `true` (run the test) when
/// `present`; otherwise prints why the test is skipped and returns `false`,
/// or panics when `MAXSIM_REQUIRE_ISA` names `isa`.
pub fn run_or_skip(isa: &str, present: bool, test: &str) -> bool {
    if present {
        return true;
    }
    assert!(
        !Env::get().require_isa.iter().any(|name| name == isa),
        "{test}: MAXSIM_REQUIRE_ISA names {isa}, which this CPU lacks (features: {:?})",
        Cpu::get().feature_names()
    );
    eprintln!("{test}: skipped, this CPU lacks {isa}");
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};

    /// The display family: the base family, plus the extended family where
    /// the base is 0xF (Intel SDM and AMD APM, CPUID leaf 1 EAX).
    pub(super) fn family() -> u32 {
        // SAFETY: CPUID leaf 1 exists on every x86-64 CPU.
        #[allow(unused_unsafe)]
        let eax = unsafe { __cpuid(1) }.eax;
        let base = (eax >> 8) & 0xF;
        if base == 0xF {
            base + ((eax >> 20) & 0xFF)
        } else {
            base
        }
    }

    pub(super) fn is_amd() -> bool {
        // SAFETY: CPUID leaf 0 exists on every x86-64 CPU. (`__cpuid` is a
        // safe function from Rust 1.94; `rust-version` is older.)
        #[allow(unused_unsafe)]
        let leaf0 = unsafe { __cpuid(0) };
        let vendor: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        vendor == b"AuthenticAMD"
    }

    /// AMX-TILE, AMX-BF16 and AMX-INT8 reported by CPUID and tile state
    /// enabled in XCR0.
    pub(super) fn has_amx() -> bool {
        // SAFETY: CPUID is available on every x86-64 CPU; leaf 7 is only read
        // when the maximum leaf says it exists. XGETBV is only executed when
        // CPUID reports OSXSAVE (leaf 1 ECX bit 27), its documented precondition.
        #[allow(unused_unsafe)]
        unsafe {
            if __cpuid(0).eax < 7 {
                return false;
            }
            let leaf7 = __cpuid_count(7, 0);
            let amx_bf16 = leaf7.edx & (1 << 22) != 0;
            let amx_tile = leaf7.edx & (1 << 24) != 0;
            let amx_int8 = leaf7.edx & (1 << 25) != 0;
            let osxsave = __cpuid(1).ecx & (1 << 27) != 0;
            if !(amx_bf16 && amx_tile && amx_int8 && osxsave) {
                return false;
            }
            // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA).
            let xcr0 = _xgetbv(0);
            xcr0 & (0b11 << 17) == (0b11 << 17)
        }
    }

    /// Asks Linux for permission to use tile data (the kernel grants it
    /// process-wide). Returns whether it was granted.
    pub(super) fn request_amx_permission() -> bool {
        #[cfg(target_os = "linux")]
        {
            /// Linux `arch_prctl` request for permission to use an XSAVE feature.
            const ARCH_REQ_XCOMP_PERM: u64 = 0x1023;
            /// XSAVE feature number of AMX tile data.
            const XFEATURE_XTILEDATA: u64 = 18;
            /// `arch_prctl` syscall number on x86-64 Linux.
            const SYS_ARCH_PRCTL: u64 = 158;
            let ret: i64;
            // SAFETY: a raw `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`
            // syscall: it takes two integers, touches no user memory, and only
            // changes the process's XSAVE permissions. The kernel clobbers rcx
            // and r11 (declared); an unknown request returns -EINVAL.
            unsafe {
                std::arch::asm!(
                    "syscall",
                    inlateout("rax") SYS_ARCH_PRCTL => ret,
                    in("rdi") ARCH_REQ_XCOMP_PERM,
                    in("rsi") XFEATURE_XTILEDATA,
                    lateout("rcx") _,
                    lateout("r11") _,
                    options(nostack)
                );
            }
            ret == 0
        }
        #[cfg(not(target_os = "linux"))]
        {
            true
        }
    }
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod tests {
    use super::Cpu;

    #[test]
    fn family_matches_linux_cpuinfo() {
        // Linux computes "cpu family" from the same CPUID leaf independently.
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let family: u32 = info
            .lines()
            .find_map(|line| line.strip_prefix("cpu family"))
            .and_then(|rest| rest.split(':').nth(1))
            .map(|value| value.trim().parse().unwrap())
            .expect("a cpu family line");
        assert_eq!(Cpu::get().family, family);
    }
}
