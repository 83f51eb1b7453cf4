//! Experiment specs, as plain data: TOML files read with serde and validated, with errors that
//! name the file and line. The vision chain's spec is in `vision`, the model architectures a
//! spec names in `model`; the language spec lives in `crate::lm::spec` and shares what is here:
//! the error type and its locating, TOML reading, overrides and ensembles.
//!
//! Parsing rejects unknown keys and ill-typed values (serde + toml report the line); a spec's
//! `validate` pass checks what types cannot (ranges, cross-field rules) and reports the line of
//! the offending key by looking it up in the source text.

mod model;
mod vision;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use model::{ModelSpec, ResidualUnit};
pub use vision::{
    Cifar100Labels, Control, ControlKind, DataSource, DataSpec, Generations, Schedule, Spec,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Averaging {
    /// Mean of the members' softmax outputs (the default).
    #[default]
    Probabilities,
    /// Mean of the members' logits, then softmax.
    Logits,
}

impl fmt::Display for Averaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Averaging::Probabilities => "probabilities",
            Averaging::Logits => "logits",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleSpec {
    pub name: String,
    /// Generation indices: 0 is the teacher, k is BAN-k.
    pub members: Vec<usize>,
    #[serde(default)]
    pub average: Averaging,
}

/// A spec error: where (file, line when known, field) and what was expected.
#[derive(Debug, thiserror::Error)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl SpecError {
    /// A file that cannot be read.
    pub(crate) fn unreadable(path: &Path, e: std::io::Error) -> SpecError {
        SpecError {
            file: path.to_path_buf(),
            line: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        }
    }

    /// A problem with `field` ("section.key", or a top-level key), at the key's line in
    /// `source` (the section's when the key is absent).
    pub(crate) fn at(file: &Path, source: &str, field: String, message: String) -> SpecError {
        let (section, key) = field.split_once('.').unwrap_or(("", &field));
        SpecError {
            file: file.to_path_buf(),
            line: locate(source, section, key),
            field,
            message,
        }
    }
}

/// Deserializes TOML text; `file` names it in errors.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(
    source: &str,
    file: &Path,
) -> Result<T, SpecError> {
    toml::from_str(source).map_err(|e| SpecError {
        file: file.to_path_buf(),
        line: e.span().map(|s| line_of_offset(source, s.start)),
        field: String::new(),
        message: e.message().trim().to_string(),
    })
}

/// A spec's ensembles, or by default Ens*k = BAN-1..BAN-k (probabilities averaged) for every
/// k >= 2 up to `students` (vision and language runs alike).
pub(crate) fn ensembles_or_default(given: &[EnsembleSpec], students: usize) -> Vec<EnsembleSpec> {
    if !given.is_empty() {
        return given.to_vec();
    }
    (2..=students)
        .map(|k| EnsembleSpec {
            name: format!("Ens*{k}"),
            members: (1..=k).collect(),
            average: Averaging::Probabilities,
        })
        .collect()
}

/// Command-line overrides applied to a spec before validation.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub seed: Option<u64>,
    /// Directory of the data files (`data.path`).
    pub data: Option<PathBuf>,
}

fn line_of_offset(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// The 1-based line of `key` inside `[section]` (or `[[section]]`), or of the section header
/// when the key is absent (a default value was wrong, or the key came from an override).
fn locate(source: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    let mut header_line = None;
    for (i, line) in source.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if current == section && header_line.is_none() {
                header_line = Some(i + 1);
            }
            continue;
        }
        let name = t.split('=').next().unwrap_or("").trim();
        if current == section && name == key {
            return Some(i + 1);
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal vision spec, which the tests of every spec file vary.
    pub(super) const MINIMAL: &str = r#"
name = "t"
[data]
source = "embedded"
[teacher]
arch = "cnn"
[schedule]
epochs = 4
batch_size = 32
lr = 0.1
milestones = [2, 3]
[generations]
count = 2
control = "ban"
"#;

    pub(super) fn parse(s: &str) -> Result<Spec, SpecError> {
        Spec::parse(s, Path::new("x.toml"), &Overrides::default())
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let bad = MINIMAL.replace("batch_size = 32", "batch_size = 32\nbatchsize = 3");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("x.toml:10:"), "{err}");
        assert!(err.contains("batchsize"), "{err}");
    }
}
