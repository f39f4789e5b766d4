//! `MAXSIM_DISABLE_CPU_FEATURES`: a probed [`Cpu`] less the features a user
//! hides, and what needs them, so that one machine can run the paths of a CPU
//! without them (to compare kernels, or to work around one).

use super::cpu::FEATURES;
use super::Cpu;

impl Cpu {
    /// This CPU less the features named (as [`Cpu::feature_names`] lists
    /// them; other names are ignored here and rejected by
    /// [`crate::dispatch::selected_kernel`]) and the features that need them:
    /// without `avx2` (or `fma`) there is no AVX-512 or AVX-VNNI, without
    /// `avx512f` (or `bw`, `vl`) none of the AVX-512 extensions or AMX,
    /// without `neon` none of the aarch64 extensions.
    pub fn without(mut self, names: &[String]) -> Cpu {
        for (_, flag) in FEATURES
            .iter()
            .filter(|(name, _)| names.iter().any(|n| n == name))
        {
            *flag(&mut self) = false;
        }
        self.avx512 &= self.avx2_fma;
        self.avxvnni &= self.avx2_fma;
        for extension in [
            &mut self.avx512vnni,
            &mut self.avx512vpopcntdq,
            &mut self.avx512bf16,
            &mut self.avx512fp16,
            &mut self.amx,
        ] {
            *extension &= self.avx512;
        }
        for extension in [
            &mut self.dotprod,
            &mut self.fp16,
            &mut self.i8mm,
            &mut self.bf16,
            &mut self.sve,
            &mut self.sve2,
        ] {
            *extension &= self.neon;
        }
        self
    }

    /// Every name [`Cpu::feature_names`] can list, on any CPU.
    pub fn known_feature_names() -> Vec<&'static str> {
        FEATURES.iter().map(|&(name, _)| name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Cpu, FEATURES};

    /// A CPU with every feature flag set.
    fn with_every_feature() -> Cpu {
        let mut cpu = Cpu::default();
        for (_, flag) in FEATURES {
            *flag(&mut cpu) = true;
        }
        cpu
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn every_known_name_disables_its_feature() {
        let full = with_every_feature();
        assert_eq!(full.feature_names(), Cpu::known_feature_names());
        for name in Cpu::known_feature_names() {
            let left = full.without(&names(&[name])).feature_names();
            assert!(!left.contains(&name), "{name} still listed: {left:?}");
        }
    }

    #[test]
    fn features_that_need_a_disabled_one_go_with_it() {
        let full = with_every_feature();
        let no_vnni = full.without(&names(&["avxvnni"]));
        assert_eq!(
            no_vnni,
            Cpu {
                avxvnni: false,
                ..full
            }
        );
        let no_avx2 = full.without(&names(&["fma"]));
        assert!(!no_avx2.avx2_fma && !no_avx2.avx512 && !no_avx2.avxvnni && !no_avx2.amx);
        assert!(no_avx2.f16c && no_avx2.popcnt && no_avx2.neon);
        let no_avx512 = full.without(&names(&["avx512vl"]));
        let cleared = [
            no_avx512.avx512,
            no_avx512.avx512vnni,
            no_avx512.avx512vpopcntdq,
            no_avx512.avx512bf16,
            no_avx512.avx512fp16,
            no_avx512.amx,
        ];
        assert_eq!(cleared, [false; 6]);
        assert!(no_avx512.avx2_fma && no_avx512.avxvnni);
        let no_neon = full.without(&names(&["neon"]));
        assert_eq!(
            no_neon
                .feature_names()
                .iter()
                .filter(|n| ["dotprod", "sve"].contains(n))
                .count(),
            0
        );
        // Names that are no feature change nothing (dispatch rejects them).
        assert_eq!(full.without(&names(&["avx9", ""])), full);
    }
}
