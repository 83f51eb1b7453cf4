//! The parameters of the two controls that read intermediate features and train in two stages
//! inside one generation: FitNets (`[generations.fitnets]`) and FSP (`[generations.fsp]`).
//! Sections are numbered from 1 as `arch::sections` lists them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// FitNets (Romero et al., ICLR 2015): stage 1 trains the student up to its guided section,
/// through a 1x1 convolutional regressor, towards the teacher's hint section; stage 2 trains
/// the whole student with KD, its soft term weighted by lambda annealed linearly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitnetsSpec {
    /// The teacher's section whose output is the hint.
    pub hint: usize,
    /// The student's section whose output the hint guides.
    pub guided: usize,
    /// Epochs of the hint stage (stage 1), before the schedule's epochs of KD.
    pub epochs: usize,
    /// The hint stage's learning rate (constant).
    pub lr: f64,
    /// KD's lambda at the first and the last epoch of stage 2 (the paper anneals it from 4 to 1).
    pub lambda: [f64; 2],
}

impl Default for FitnetsSpec {
    /// The middle section of a three-section network, and the paper's lambda; the stage's
    /// epochs and lr have no default (0 is refused).
    fn default() -> FitnetsSpec {
        FitnetsSpec {
            hint: 2,
            guided: 2,
            epochs: 0,
            lr: 0.0,
            lambda: [4.0, 1.0],
        }
    }
}

impl FitnetsSpec {
    /// Lambda at `progress` through the KD stage (0 at its first epoch, 1 at its last).
    pub fn lambda_at(&self, progress: f64) -> f64 {
        let [start, end] = self.lambda;
        start + (end - start) * progress.clamp(0.0, 1.0)
    }
}

/// FSP (Yim et al., CVPR 2017): stage 1 trains the student to match the teacher's FSP matrices
/// of `sections`; stage 2 trains it on labels alone from those weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FspSpec {
    /// The sections whose flow is matched; empty means every section both networks have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<usize>,
    /// Epochs of the FSP stage (stage 1), before the schedule's epochs on labels.
    pub epochs: usize,
    /// The FSP stage's learning rate (constant).
    pub lr: f64,
}

/// The most sections a section set can name.
pub const MAX_SECTIONS: usize = 32;

/// A set of section numbers (1-based), small enough to copy; empty means all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectionSet(u32);

impl SectionSet {
    /// The set of `sections`, or the number that does not fit.
    pub fn new(sections: &[usize]) -> Result<SectionSet, usize> {
        sections.iter().try_fold(SectionSet(0), |set, &s| match s {
            1..=MAX_SECTIONS => Ok(SectionSet(set.0 | 1 << (s - 1))),
            _ => Err(s),
        })
    }

    /// The sections in order, of the `available` the networks have when the set is empty.
    pub fn resolve(&self, available: usize) -> Vec<usize> {
        if self.0 == 0 {
            (1..=available).collect()
        } else {
            (1..=MAX_SECTIONS)
                .filter(|s| self.0 & 1 << (s - 1) != 0)
                .collect()
        }
    }
}

impl fmt::Display for SectionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("all");
        }
        let listed: Vec<String> = self
            .resolve(MAX_SECTIONS)
            .iter()
            .map(usize::to_string)
            .collect();
        f.write_str(&listed.join(","))
    }
}

/// The stage a two-stage control runs before the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirstStage {
    /// What stage 1 trains on, as the log and the Run screen name it.
    pub name: &'static str,
    /// What stage 2, the schedule's epochs, trains on.
    pub then: &'static str,
    /// The spec's table of the stage's parameters (`[generations.fitnets]`).
    pub table: &'static str,
    pub epochs: usize,
    pub lr: f64,
}

/// Checks a stage's epochs and learning rate; errors are (key, message).
pub(super) fn check_stage(
    table: &'static str,
    epochs: usize,
    lr: f64,
) -> Result<(), (&'static str, String)> {
    let [epochs_key, lr_key] = match table {
        "fitnets" => ["fitnets.epochs", "fitnets.lr"],
        _ => ["fsp.epochs", "fsp.lr"],
    };
    if epochs == 0 {
        return Err((
            epochs_key,
            format!(
                "expected at least 1 epoch of the {table} stage that trains before the schedule (give `[generations.{table}]` its epochs and lr)"
            ),
        ));
    }
    if epochs > 100_000 {
        return Err((
            epochs_key,
            format!("expected at most 100000, found {epochs}"),
        ));
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err((
            lr_key,
            format!("expected the {table} stage's positive learning rate, found {lr}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::{MINIMAL, parse};

    fn with_control(generations: &str) -> String {
        MINIMAL.replace("control = \"ban\"", generations)
    }

    #[test]
    fn two_stage_controls_need_their_stage_and_lengthen_the_generation() {
        let e = parse(&with_control("control = \"fitnets\"")).unwrap_err();
        assert_eq!(e.field, "generations.fitnets.epochs", "{e}");
        let e = parse(&with_control("control = \"fsp\"\nfsp = { epochs = 2 }")).unwrap_err();
        assert_eq!(e.field, "generations.fsp.lr", "{e}");
        let spec = parse(&with_control(
            "control = \"fitnets\"\nfitnets = { epochs = 3, lr = 0.01 }",
        ))
        .unwrap();
        assert_eq!([spec.epochs_of(0), spec.epochs_of(1)], [4, 7]);
        // The hint stage's own rate, then the schedule's from its first epoch (x0.2 at 2, 3).
        let rates: Vec<f64> = (0..7).map(|e| spec.lr_of(1, e)).collect();
        assert_eq!(rates[..4], [0.01, 0.01, 0.01, 0.1]);
        assert!((rates[5] - 0.02).abs() < 1e-12 && (rates[6] - 0.004).abs() < 1e-12);
        let e = parse(&with_control(
            "control = \"ban\"\nfsp = { epochs = 2, lr = 0.1 }",
        ))
        .unwrap_err();
        assert_eq!(e.field, "generations.fsp", "{e}");
    }

    #[test]
    fn a_section_a_network_lacks_is_refused_naming_it() {
        let e = parse(&with_control(
            "control = \"fitnets\"\nfitnets = { hint = 4, epochs = 1, lr = 0.01 }",
        ))
        .unwrap_err();
        assert_eq!(e.field, "generations.fitnets.hint", "{e}");
        assert!(
            e.message
                .contains("the teacher CNN-16 has no section 4 (it has 3"),
            "{e}"
        );
        let e = parse(
            &with_control("control = \"fitnets\"\nfitnets = { epochs = 1, lr = 0.01 }").replace(
                "[schedule]",
                "[student]\narch = \"mlp\"\nhidden = [8]\n[schedule]",
            ),
        )
        .unwrap_err();
        assert_eq!(e.field, "generations.fitnets.guided", "{e}");
        assert!(e.message.contains("the student MLP"), "{e}");
    }

    /// FitNets' regressor bridges a DenseNet teacher's channels and a ResNet student's; FSP
    /// cannot, and says which section differs in both networks.
    #[test]
    fn cross_architecture_pairs_bridge_channels_for_fitnets_but_not_for_fsp() {
        let cross = |control: &str| {
            with_control(control).replace(
                "[teacher]\narch = \"cnn\"",
                "[teacher]\narch = \"densenet-bc\"\ndepth = 10\ngrowth = 4\n[student]\narch = \"preact-resnet\"\ndepth = 8",
            )
        };
        assert!(
            parse(&cross(
                "control = \"fitnets\"\nfitnets = { epochs = 1, lr = 0.01 }"
            ))
            .is_ok()
        );
        let e = parse(&cross("control = \"fsp\"\nfsp = { epochs = 1, lr = 0.01 }")).unwrap_err();
        assert_eq!(e.field, "generations.fsp.sections", "{e}");
        assert!(
            e.message
                .contains("section 1's FSP matrices differ in shape")
                && e.message.contains("teacher DenseNet")
                && e.message.contains("student"),
            "{e}"
        );
    }

    #[test]
    fn section_sets_list_their_sections_or_all() {
        let set = SectionSet::new(&[3, 1]).unwrap();
        assert_eq!(set.resolve(5), vec![1, 3]);
        assert_eq!(set.to_string(), "1,3");
        assert_eq!(SectionSet::default().resolve(3), vec![1, 2, 3]);
        assert_eq!(SectionSet::default().to_string(), "all");
        assert_eq!(SectionSet::new(&[0]), Err(0));
        assert_eq!(SectionSet::new(&[33]), Err(33));
    }
}
