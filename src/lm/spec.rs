//! The TOML spec of a language-model run: `[corpus]` (where a vision spec has `[data]`),
//! `[model]`, `[schedule]`, `[generations]`, `[[ensemble]]`, `[paper]`. Unknown fields are
//! errors; every error names the file, the line where it can, and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::language::LmModelSpec;
use crate::spec::{
    Averaging, EnsembleSpec, Overrides, Seeds, SpecError, check_ensembles, check_name,
    check_paper_label, check_paper_value, from_toml,
};

/// The most generations after the teacher, as for vision runs.
const MAX_GENERATIONS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "one")]
    pub seed: u64,
    /// A study: the whole chain once per seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Seeds>,
    pub corpus: CorpusSpec,
    pub model: LmModelSpec,
    pub schedule: LmSchedule,
    #[serde(default)]
    pub generations: LmGenerations,
    #[serde(default, rename = "ensemble", skip_serializing_if = "Vec::is_empty")]
    pub ensembles: Vec<EnsembleSpec>,
    /// The paper's perplexities by row label ("Teacher", "BAN-1").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paper: BTreeMap<String, PaperPerplexity>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusSpec {
    /// A directory with ptb.train.txt, ptb.valid.txt and ptb.test.txt.
    pub path: PathBuf,
    /// Use only the first N tokens of each split (quick runs); absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmSchedule {
    pub epochs: usize,
    pub batch_size: usize,
    /// Truncated backpropagation through time: steps per window (35 in the paper).
    #[serde(default = "bptt")]
    pub bptt: usize,
    pub lr: f64,
    /// The learning rate is multiplied by this when validation perplexity does not improve.
    pub plateau_factor: f64,
    /// ... by at least this much (0 for the LSTM, 0.5 for the CNN-LSTM in the paper).
    #[serde(default)]
    pub plateau_threshold: f64,
    /// Gradients are rescaled to this global L2 norm when larger.
    pub clip: f64,
    /// Batch size of validation and test passes.
    #[serde(default = "eval_batch")]
    pub eval_batch_size: usize,
    /// Weights start uniform in [-init_range, init_range].
    #[serde(default = "init_range")]
    pub init_range: f64,
}

fn bptt() -> usize {
    35
}
fn eval_batch() -> usize {
    10
}
fn init_range() -> f64 {
    0.05
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmGenerations {
    /// Born-again generations after the teacher.
    pub count: usize,
    /// Only "ban+l": the paper finds only BAN+L works for language models (Section 4.3).
    pub control: String,
}

impl Default for LmGenerations {
    fn default() -> Self {
        LmGenerations {
            count: 1,
            control: "ban+l".into(),
        }
    }
}

/// The paper's perplexities of one row label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperPerplexity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<f64>,
}

impl LmSpec {
    pub fn load(path: &Path, overrides: &Overrides) -> Result<LmSpec, SpecError> {
        let source = std::fs::read_to_string(path).map_err(|e| SpecError::unreadable(path, e))?;
        LmSpec::parse(&source, path, overrides)
    }

    pub fn parse(source: &str, file: &Path, overrides: &Overrides) -> Result<LmSpec, SpecError> {
        let mut spec: LmSpec = from_toml(source, file)?;
        if let Some(seed) = overrides.seed {
            spec.seed = seed;
        }
        if let Some(seeds) = &overrides.seeds {
            spec.seeds = Some(seeds.clone());
        }
        if let Some(epochs) = overrides.epochs {
            spec.schedule.epochs = epochs;
        }
        if let Some(dir) = &overrides.data {
            spec.corpus.path = dir.clone();
        }
        if let Some((field, message)) = spec.problems().into_iter().next() {
            return Err(SpecError::at(file, source, field, message));
        }
        check_ensembles(&spec.ensembles, spec.generations.count).map_err(|(i, key, message)| {
            SpecError::at_nth(file, source, format!("ensemble.{key}"), i, message)
        })?;
        if let Some((label, message)) = spec.paper_problem() {
            return Err(SpecError::at(
                file,
                source,
                format!("paper.{label}"),
                message,
            ));
        }
        Ok(spec)
    }

    /// The first `[paper]` entry that is not perplexities (finite, at least 1) of one of the
    /// run's rows, as (label, message). Tables fill `paper` from their cells, and check it here
    /// too.
    pub(crate) fn paper_problem(&self) -> Option<(String, String)> {
        self.paper.iter().find_map(|(label, p)| {
            check_paper_label(label, self.generations.count, &self.ensembles)
                .and_then(|()| {
                    [("valid", p.valid), ("test", p.test)]
                        .into_iter()
                        .filter_map(|(key, v)| Some((key, v?)))
                        .try_for_each(|(key, v)| {
                            check_paper_value(v, 1.0..=f64::INFINITY, "a perplexity")
                                .map_err(|m| format!("{key}: {m}"))
                        })
                })
                .err()
                .map(|message| (label.clone(), message))
        })
    }

    /// Tokens a split needs for one full window of `bptt` steps in each of `rows` rows (a
    /// window reads `bptt + 1` tokens of its row: inputs and the targets one later); `None` when
    /// that overflows.
    pub fn tokens_needed(rows: usize, bptt: usize) -> Option<usize> {
        bptt.checked_add(1)?.checked_mul(rows)
    }

    /// Everything serde's types cannot check, as (field, message).
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = self.model.problems();
        let s = &self.schedule;
        if let Err(message) = check_name(&self.name) {
            out.push(("name".into(), message));
        }
        if let Some(Err(message)) = self.seeds.as_ref().map(|s| s.resolve(self.seed)) {
            out.push(("seeds".into(), message));
        }
        let mut bad = |field: &str, ok: bool, message: String| {
            if !ok {
                out.push((field.to_string(), message));
            }
        };
        bad(
            "schedule.epochs",
            s.epochs > 0,
            "expected at least 1 epoch".into(),
        );
        bad(
            "schedule.batch_size",
            s.batch_size > 0,
            "expected a positive batch size".into(),
        );
        bad(
            "schedule.bptt",
            s.bptt > 0,
            "expected a positive number of steps".into(),
        );
        bad(
            "schedule.eval_batch_size",
            s.eval_batch_size > 0,
            "expected a positive batch size".into(),
        );
        bad(
            "schedule.lr",
            s.lr > 0.0 && s.lr.is_finite(),
            format!("{} is not a positive learning rate", s.lr),
        );
        bad(
            "schedule.plateau_factor",
            s.plateau_factor > 0.0 && s.plateau_factor <= 1.0,
            format!("{} is not in (0, 1]", s.plateau_factor),
        );
        bad(
            "schedule.plateau_threshold",
            s.plateau_threshold >= 0.0 && s.plateau_threshold.is_finite(),
            format!(
                "expected a finite threshold >= 0, found {}",
                s.plateau_threshold
            ),
        );
        bad(
            "schedule.clip",
            s.clip > 0.0 && s.clip.is_finite(),
            format!("expected a finite positive gradient norm, found {}", s.clip),
        );
        // Weights start uniform in [-r, r]: burn's uniform distribution needs a finite range,
        // and past 1 the tied embedding saturates every gate from the first step.
        bad(
            "schedule.init_range",
            s.init_range > 0.0 && s.init_range <= 1.0,
            format!(
                "expected 0 < init_range <= 1 (the papers: 0.04 to 0.1), found {}",
                s.init_range
            ),
        );
        bad(
            "generations.count",
            self.generations.count <= MAX_GENERATIONS,
            format!(
                "expected 0..={MAX_GENERATIONS} generations, found {}",
                self.generations.count
            ),
        );
        bad(
            "generations.control",
            self.generations.control == "ban+l",
            format!(
                "`{}`: language models support only \"ban+l\" (the paper: only BAN+L works for them)",
                self.generations.control
            ),
        );
        bad(
            "corpus.max_tokens",
            self.corpus.max_tokens.is_none_or(|n| n > 0),
            "expected a positive token count".into(),
        );
        // Every split is cut to max_tokens: each must still hold one full window per row of
        // the training and of the evaluation batches.
        if let (Some(n), true) = (self.corpus.max_tokens, s.bptt > 0) {
            let rows = s.batch_size.max(s.eval_batch_size);
            match LmSpec::tokens_needed(rows, s.bptt) {
                None => bad(
                    "schedule.bptt",
                    false,
                    format!(
                        "{rows} rows of {} steps are more tokens than can be counted",
                        s.bptt
                    ),
                ),
                Some(needed) => bad(
                    "corpus.max_tokens",
                    n >= needed,
                    format!(
                        "{n} tokens per split cannot fill one window of schedule.bptt = {} steps in each of {rows} rows (the larger of schedule.batch_size = {} and schedule.eval_batch_size = {}): expected at least {needed}",
                        s.bptt, s.batch_size, s.eval_batch_size
                    ),
                ),
            }
        }
        for e in &self.ensembles {
            // Only the target token's probability is saved per generation, which is all a
            // probability average needs; a logit average would need whole distributions.
            bad(
                "ensemble.average",
                e.average == Averaging::Probabilities,
                format!(
                    "ensemble `{}`: language models average probabilities only",
                    e.name
                ),
            );
        }
        out
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("an LmSpec always serialises to TOML")
    }

    /// The spec's ensembles, or Ens*k = BAN-1..BAN-k for k >= 2, as for vision runs.
    pub fn ensembles(&self) -> Vec<EnsembleSpec> {
        crate::spec::ensembles_or_default(&self.ensembles, self.generations.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "t"
[corpus]
path = "c"
[model]
arch = "lstm"
layers = 1
hidden = 8
dropout = 0.1
[schedule]
epochs = 1
batch_size = 4
lr = 1.0
plateau_factor = 0.25
clip = 5.0
"#;

    #[test]
    fn errors_name_the_field_and_line() {
        let file = Path::new("x.toml");
        let spec = LmSpec::parse(SPEC, file, &Overrides::default()).unwrap();
        assert_eq!(spec.schedule.bptt, 35);
        assert_eq!(
            LmSpec::parse(&spec.to_toml(), file, &Overrides::default()).unwrap(),
            spec
        );
        let e = LmSpec::parse(
            &SPEC.replace("lr = 1.0", "lr = -1.0"),
            file,
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("schedule.lr", Some(13)), "{e}");
        let e = LmSpec::parse(
            &format!("{SPEC}[generations]\ncount = 1\ncontrol = \"ban\"\n"),
            file,
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("only \"ban+l\""), "{e}");
        let e = LmSpec::parse(
            &SPEC.replace("clip = 5.0", "clip = 5.0\nmomentum = 0.9"),
            file,
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("momentum"), "{e}");
    }
}
