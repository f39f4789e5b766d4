//! Run-time kernel selection: one table of function pointers per kernel family.
//!
//! Each ISA folder under `arch/` builds a [`KernelTable`] from the CPU's
//! features ([`cpu`]): the float, float16, bfloat16, int8, Hamming and
//! quantization kernels it runs, their tile shapes, whether the bf16 screen
//! is on, and a description of each for `maxsim.info()`. A table is built
//! once per process and cached; every entry point reads the table of the
//! kernel in force once per call, so a whole call runs one kernel, and what
//! `info()` prints is what runs.
//!
//! The kernel in force is the best one this CPU supports, unless
//! `MAXSIM_KERNEL` or [`set_kernel`] forces another; forcing one the CPU
//! lacks is an error rather than a crash. AMX is never chosen by default
//! (see [`Kernel::is_verified`]).
//!
//! Adding an ISA: a folder under `arch/` whose `mod.rs` returns its table, a
//! [`Kernel`] variant and one row in `FAMILIES` (and its feature probe in
//! [`cpu`] if it needs a new one).

pub mod cpu;
mod cpu_mask;
mod hamming;
mod table;

pub use cpu::{amx_permission, run_or_skip, Cpu, Env};
pub use hamming::HammingImpl;
pub use table::{
    CentroidKernel, FloatKernel, HalfKernel, HalfTiles, Int8Kernel, KernelTable, PeakProbe,
    ScreenKernel, ScreenKind, TileShape,
};

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// A family of kernels, one per instruction set. What the dispatcher knows of
/// each is its row in `FAMILIES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable Rust, any CPU.
    Scalar,
    /// x86-64 AVX2 + FMA (+ F16C where the reduced-precision kernels need it).
    Avx2,
    /// x86-64 AVX-512F (+ BW/VL/VNNI/VPOPCNTDQ where the binary and int8 kernels need them).
    Avx512,
    /// x86-64 AVX-512 plus AMX tiles for the reduced-precision kernels;
    /// float32 scoring runs the AVX-512 kernels.
    Amx,
    /// aarch64 NEON (Advanced SIMD).
    Neon,
}

/// One kernel family's row in [`FAMILIES`].
struct Family {
    kernel: Kernel,
    /// The name `MAXSIM_KERNEL` and `maxsim.info()` use.
    name: &'static str,
    /// Whether this CPU (and OS) can run it.
    supported: fn(&Cpu) -> bool,
    /// Whether it has passed the test suite on real hardware, which default
    /// selection requires.
    verified: bool,
    /// Its table on this CPU; called only when `supported` holds.
    build: fn(&Cpu, &Env) -> KernelTable,
}

/// `arch::<path>::table` where the build targets `arch`, else the portable
/// table (never built: such a kernel is never supported there).
macro_rules! table_of {
    ($arch:literal, $($path:ident)::+) => {{
        #[cfg(target_arch = $arch)]
        fn build(cpu: &Cpu, env: &Env) -> KernelTable {
            crate::arch::$($path)::+::table(cpu, env)
        }
        #[cfg(not(target_arch = $arch))]
        fn build(cpu: &Cpu, env: &Env) -> KernelTable {
            crate::arch::portable::table(cpu, env)
        }
        build as fn(&Cpu, &Env) -> KernelTable
    }};
}

/// Every kernel family, best first: the one place a kernel is registered and
/// chosen. Adding an ISA is a folder under `arch/` whose `mod.rs` returns its
/// table, a [`Kernel`] variant and one row here (plus its feature probe in
/// [`cpu`] if it needs a new one).
///
/// AMX is not verified: no machine the project is tested on has AMX, so its
/// kernels run only when forced (`MAXSIM_KERNEL=amx`), until
/// `benches/device_check.sh` passes on one.
#[rustfmt::skip]
const FAMILIES: [Family; 5] = [
    Family { kernel: Kernel::Amx, name: "amx", supported: |c| c.avx512 && c.amx, verified: false, build: table_of!("x86_64", x86_64::amx) },
    Family { kernel: Kernel::Avx512, name: "avx512", supported: |c| c.avx512, verified: true, build: table_of!("x86_64", x86_64::avx512) },
    Family { kernel: Kernel::Avx2, name: "avx2", supported: |c| c.avx2_fma, verified: true, build: table_of!("x86_64", x86_64::avx2) },
    Family { kernel: Kernel::Neon, name: "neon", supported: |c| c.neon, verified: true, build: table_of!("aarch64", aarch64::neon) },
    Family { kernel: Kernel::Scalar, name: "scalar", supported: |_| true, verified: true, build: crate::arch::portable::table },
];

impl Kernel {
    /// Every kernel, in order of preference (best first).
    pub const ALL: [Kernel; FAMILIES.len()] = {
        let mut all = [Kernel::Scalar; FAMILIES.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = FAMILIES[i].kernel;
            i += 1;
        }
        all
    };

    /// Its row in [`FAMILIES`] and that row's position.
    fn family(self) -> (usize, &'static Family) {
        FAMILIES
            .iter()
            .enumerate()
            .find(|(_, f)| f.kernel == self)
            .expect("every Kernel variant has a row in FAMILIES")
    }

    /// The name used by `MAXSIM_KERNEL` and `maxsim.info()`.
    pub fn name(self) -> &'static str {
        self.family().1.name
    }

    /// Parses a kernel name (case-insensitive).
    pub fn parse(name: &str) -> Result<Kernel> {
        let lower = name.trim().to_ascii_lowercase();
        Kernel::ALL
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| {
                let names: Vec<&str> = Kernel::ALL.iter().rev().map(|k| k.name()).collect();
                Error::InvalidArgument(format!(
                    "unknown kernel {name:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// Whether this CPU (and OS) can run the kernel.
    pub fn is_supported(self) -> bool {
        (self.family().1.supported)(Cpu::get())
    }

    /// Whether the kernel has passed the test suite on real hardware, which
    /// default selection requires (see `FAMILIES`).
    pub fn is_verified(self) -> bool {
        self.family().1.verified
    }

    /// Its slot in the table cache and in [`SELECTED`] (0 means none).
    fn id(self) -> u8 {
        self.family().0 as u8 + 1
    }

    fn from_id(id: u8) -> Option<Kernel> {
        FAMILIES
            .get(usize::from(id).checked_sub(1)?)
            .map(|f| f.kernel)
    }
}

/// The table of `kernel`, built on first use; `Unsupported` when this CPU
/// cannot run it.
pub fn table(kernel: Kernel) -> Result<&'static KernelTable> {
    static TABLES: [OnceLock<KernelTable>; FAMILIES.len()] =
        [const { OnceLock::new() }; FAMILIES.len()];
    check_supported(kernel, "kernel")?;
    let (slot, family) = kernel.family();
    Ok(TABLES[slot].get_or_init(|| (family.build)(Cpu::get(), Env::get())))
}

/// The table of the kernel in force.
pub fn selected_table() -> Result<&'static KernelTable> {
    table(selected_kernel()?)
}

/// The table whose screen the screened entry points run (the `_screened`
/// functions, for tests and benchmarks that force the screen): the most
/// preferred verified kernel this CPU supports that has one; `Unsupported`
/// where none does.
pub(crate) fn screen_table() -> Result<&'static KernelTable> {
    match screen_kernels().first() {
        Some(&kernel) => table(kernel),
        None => Err(Error::Unsupported(
            "no screen on this CPU: the bf16 screen needs AVX-512F/BW/VL and AVX512_BF16, the int16 screen AVX2".into(),
        )),
    }
}

/// Every verified kernel this CPU supports that has a screen, most
/// preferred first (the first is [`screen_kernel`]): for tests and
/// benchmarks that run each screen through the `_screened_with` entry
/// points, e.g. the AVX2 int16 screen on an AVX-512 CPU.
pub fn screen_kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_verified() && k.is_supported())
        .filter(|&k| table(k).is_ok_and(|t| t.screen.is_some()))
        .collect()
}

/// One screen this CPU runs: `kernel`'s own (`alternative` 0) or the
/// `alternative`-th of its table's `screen_alternatives` (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    /// The kernel family whose plain kernels the screen matches bitwise.
    pub kernel: Kernel,
    /// 0 for the family's own screen, `n` for its `n`-th alternative.
    pub alternative: usize,
}

impl Screen {
    /// Its name, as `maxsim.info()` prints a screen; `Unsupported` where it
    /// does not run here.
    pub fn name(self) -> Result<&'static str> {
        Ok(resolve_screen(self)?.1.name)
    }
}

/// Every screen this CPU runs, each kernel's own first (so the first is
/// [`screen_kernel`]'s), then its alternatives: for tests and benchmarks
/// that run each through the `_screened_with` entry points.
pub fn screens() -> Vec<Screen> {
    screen_kernels()
        .into_iter()
        .flat_map(|kernel| {
            let alternatives = table(kernel).map_or(0, |t| t.screen_alternatives.len());
            (0..=alternatives).map(move |alternative| Screen {
                kernel,
                alternative,
            })
        })
        .collect()
}

/// `screen`'s family table and its kernels, where it runs here;
/// `Unsupported` otherwise.
fn resolve_screen(screen: Screen) -> Result<(&'static KernelTable, ScreenKernel)> {
    let t = table(screen.kernel)?;
    let chosen = match screen.alternative {
        0 => t.screen,
        n => t.screen.and(t.screen_alternatives.get(n - 1).copied()),
    };
    chosen.map(|chosen| (t, chosen)).ok_or_else(|| {
        Error::Unsupported(format!(
            "the {} kernel has no screen {} on this CPU",
            screen.kernel.name(),
            screen.alternative
        ))
    })
}

/// A copy of `screen.kernel`'s table whose screen is `screen`, where it runs
/// here; `Unsupported` otherwise.
pub(crate) fn table_with_screen(screen: Screen) -> Result<KernelTable> {
    let (t, chosen) = resolve_screen(screen)?;
    Ok(KernelTable {
        screen: Some(chosen),
        ..t.clone()
    })
}

/// The kernel whose screen the `_screened` entry points run: the most
/// preferred verified kernel this CPU supports that has one (its plain
/// kernels give the results those entry points must match bitwise).
pub fn screen_kernel() -> Result<Kernel> {
    screen_table().map(|t| t.kernel)
}

/// The best verified kernel this CPU supports, ignoring any override.
pub fn detect_best() -> Kernel {
    Kernel::ALL
        .into_iter()
        .find(|k| k.is_verified() && k.is_supported())
        .unwrap_or(Kernel::Scalar)
}

/// 0 = not chosen yet; otherwise a `Kernel::id`.
static SELECTED: AtomicU8 = AtomicU8::new(0);

/// The kernel in force: the `MAXSIM_KERNEL` override if set (an error if
/// the CPU lacks it or the name is unknown), else the best detected one.
/// An unknown name in `MAXSIM_DISABLE_CPU_FEATURES` is an error too.
pub fn selected_kernel() -> Result<Kernel> {
    if let Some(kernel) = Kernel::from_id(SELECTED.load(Ordering::Relaxed)) {
        return Ok(kernel);
    }
    let known = Cpu::known_feature_names();
    let unknown: Vec<&str> = Env::get()
        .disabled_features
        .iter()
        .map(String::as_str)
        .filter(|name| !known.contains(name))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "MAXSIM_DISABLE_CPU_FEATURES: unknown feature {}; known: {}",
            unknown.join(", "),
            known.join(", ")
        )));
    }
    let kernel = match &Env::get().kernel {
        Some(name) => {
            let kernel = Kernel::parse(name)
                .map_err(|e| Error::InvalidArgument(format!("MAXSIM_KERNEL: {e}")))?;
            check_supported(kernel, "MAXSIM_KERNEL")?;
            kernel
        }
        None => detect_best(),
    };
    SELECTED.store(kernel.id(), Ordering::Relaxed);
    Ok(kernel)
}

fn check_supported(kernel: Kernel, source: &str) -> Result<()> {
    if kernel.is_supported() {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{source}: kernel {:?} is not supported by this CPU (features: {}); supported kernels: {}",
            kernel.name(),
            cpu_features().join(", "),
            Kernel::ALL
                .into_iter()
                .filter(|k| k.is_supported())
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Forces a kernel for every later call (process-wide).
pub fn set_kernel(kernel: Kernel) -> Result<()> {
    check_supported(kernel, "set_kernel")?;
    SELECTED.store(kernel.id(), Ordering::Relaxed);
    Ok(())
}

/// Names of the SIMD features relevant to maxsim that this CPU reports.
pub fn cpu_features() -> Vec<&'static str> {
    Cpu::get().feature_names()
}

/// The names in `MAXSIM_REQUIRE_ISA` that this machine lacks: each must be a
/// supported kernel (`avx512`, `amx`, ...) or a feature `cpu_features` lists.
pub fn missing_required_isas() -> Vec<String> {
    let features = cpu_features();
    Env::get()
        .require_isa
        .iter()
        .filter(|name| {
            let kernel = Kernel::parse(name).is_ok_and(|k| k.is_supported());
            !(kernel || features.contains(&name.as_str()))
        })
        .cloned()
        .collect()
}

/// The state of AMX on this machine, for `maxsim.info()`.
pub fn amx_status() -> &'static str {
    if !Kernel::Amx.is_supported() {
        "absent"
    } else if !amx_permission() {
        "present, but the OS denied tile permission"
    } else if selected_kernel() == Ok(Kernel::Amx) {
        "in use (forced; not yet verified on real hardware)"
    } else {
        "present, unverified: off by default (MAXSIM_KERNEL=amx to opt in)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kernel::ALL {
            assert_eq!(Kernel::parse(k.name()).unwrap(), k);
            assert_eq!(Kernel::parse(&k.name().to_uppercase()).unwrap(), k);
        }
        assert!(Kernel::parse("sse9").is_err());
    }

    #[test]
    fn scalar_always_supported_and_best_is_supported() {
        assert!(Kernel::Scalar.is_supported());
        assert!(detect_best().is_supported());
    }

    #[test]
    fn required_isas_are_present() {
        let missing = missing_required_isas();
        assert!(
            missing.is_empty(),
            "MAXSIM_REQUIRE_ISA names {missing:?}, which this machine lacks (features: {:?})",
            cpu_features()
        );
    }

    #[test]
    fn amx_is_never_the_default() {
        assert_ne!(detect_best(), Kernel::Amx);
    }

    #[test]
    fn every_supported_kernel_has_a_table_of_its_own() {
        for kernel in Kernel::ALL {
            match table(kernel) {
                Ok(t) => {
                    assert!(kernel.is_supported());
                    assert_eq!(t.kernel, kernel);
                    assert!(t.describe().iter().all(|(_, text)| !text.is_empty()));
                }
                Err(Error::Unsupported(_)) => assert!(!kernel.is_supported()),
                Err(e) => panic!("{kernel:?}: {e}"),
            }
        }
    }
}
