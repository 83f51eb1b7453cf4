//! Experiment specs, as plain data: TOML files read with serde and validated, with errors that
//! name the file and line. The vision chain's spec is in `vision`, the model architectures a
//! spec names in `model`; the language spec lives in `crate::lm::spec` and shares what is here:
//! the error type and its locating, TOML reading, overrides and ensembles.
//!
//! Parsing rejects unknown keys and ill-typed values (serde + toml report the line); a spec's
//! `validate` pass checks what types cannot (ranges, cross-field rules) and reports the line of
//! the offending key by looking it up in the source text.

mod feature_controls;
mod model;
mod vision;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use feature_controls::{FirstStage, FitnetsSpec, FspSpec, SectionSet};
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
        SpecError::at_nth(file, source, field, 0, message)
    }

    /// A problem with `field` ("section.key") of the `nth` (0-based) `[[section]]` of an array
    /// of tables, such as the second `[[ensemble]]`: at the key's line in that table, or at its
    /// header when the key is absent.
    pub(crate) fn at_nth(
        file: &Path,
        source: &str,
        field: String,
        nth: usize,
        message: String,
    ) -> SpecError {
        let (section, key) = field.split_once('.').unwrap_or(("", &field));
        SpecError {
            file: file.to_path_buf(),
            line: locate(source, section, key, nth),
            field,
            message,
        }
    }
}

/// Why `name` cannot name a run: it becomes a directory under runs/ (and a table's chains' names
/// under the table's directory), so it must be one plain directory name.
pub fn check_name(name: &str) -> Result<(), String> {
    let expected =
        "expected one directory name: no `/`, `\\`, `..`, leading `.` or control characters";
    if name.trim().is_empty() {
        return Err("expected a non-empty name".into());
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{name:?} holds a control character: {expected}"));
    }
    if name.contains(['/', '\\']) || name.contains("..") || name.starts_with('.') {
        return Err(format!(
            "`{name}` would put the run directory outside runs/ or hide it: {expected}"
        ));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "expected at most {MAX_NAME_BYTES} bytes (a directory name with a date after it), found {}",
            name.len()
        ));
    }
    Ok(())
}

/// The longest name a run may have: its directory adds the date and time (and a counter), and
/// file systems take 255 bytes per name.
const MAX_NAME_BYTES: usize = 200;

/// Whether `label` is a generation's row label ("Teacher", or "BAN-k" for any k), which an
/// ensemble must not take.
fn is_generation_label(label: &str) -> bool {
    label.eq_ignore_ascii_case("teacher")
        || label
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("ban-"))
            && label.len() > 4
            && label[4..].bytes().all(|b| b.is_ascii_digit())
}

/// The row labels a chain of `students` generations after the teacher has: "Teacher", "BAN-1"
/// .. "BAN-students", and its ensembles' names (the defaults' when it lists none): the keys its
/// `[paper]` values may have.
pub(crate) fn row_labels(students: usize, ensembles: &[EnsembleSpec]) -> Vec<String> {
    let mut labels = vec!["Teacher".to_string()];
    labels.extend((1..=students).map(|k| format!("BAN-{k}")));
    labels.extend(
        ensembles_or_default(ensembles, students)
            .into_iter()
            .map(|e| e.name),
    );
    labels
}

/// Why `label` is not a row label of the chain, naming those it has.
pub(crate) fn check_paper_label(
    label: &str,
    students: usize,
    ensembles: &[EnsembleSpec],
) -> Result<(), String> {
    let labels = row_labels(students, ensembles);
    if labels.iter().any(|l| l == label) {
        return Ok(());
    }
    Err(format!(
        "`{label}` is not a row of this run; expected one of {}",
        labels.join(", ")
    ))
}

/// Why a paper value cannot be shown beside a measured one: it must be a finite number in
/// `range` (`what` says what it is).
pub(crate) fn check_paper_value(
    value: f64,
    range: std::ops::RangeInclusive<f64>,
    what: &str,
) -> Result<(), String> {
    if value.is_finite() && range.contains(&value) {
        return Ok(());
    }
    let (low, high) = (range.start(), range.end());
    Err(if high.is_finite() {
        format!("expected {what} between {low} and {high}, found {value}")
    } else {
        format!("expected {what} of at least {low}, found {value}")
    })
}

/// Checks the ensembles of a chain of `students` generations after the teacher: each names at
/// least two distinct existing generations, and has a name of its own (not empty, not another
/// ensemble's, not a generation's row label, no control characters). Errors are (index of the
/// ensemble, key, message).
pub(crate) fn check_ensembles(
    ensembles: &[EnsembleSpec],
    students: usize,
) -> Result<(), (usize, &'static str, String)> {
    for (i, e) in ensembles.iter().enumerate() {
        let name = &e.name;
        if name.trim().is_empty() {
            return Err((i, "name", "expected a non-empty ensemble name".into()));
        }
        if name.chars().any(char::is_control) {
            return Err((
                i,
                "name",
                format!("{name:?}: expected a name without newlines or control characters"),
            ));
        }
        if is_generation_label(name) {
            return Err((
                i,
                "name",
                format!(
                    "`{name}` is a generation's row label (Teacher, BAN-1, ...); expected another name"
                ),
            ));
        }
        if ensembles[..i].iter().any(|other| &other.name == name) {
            return Err((
                i,
                "name",
                format!("`{name}`: two ensembles have this name; expected distinct names"),
            ));
        }
        if let Some(&m) = e.members.iter().find(|&&m| m > students) {
            return Err((
                i,
                "members",
                format!(
                    "ensemble `{name}` names generation {m}, but the run has generations 0..={students}"
                ),
            ));
        }
        let mut sorted = e.members.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != e.members.len() {
            return Err((
                i,
                "members",
                format!("ensemble `{name}` lists a generation twice"),
            ));
        }
        if sorted.len() < 2 {
            return Err((
                i,
                "members",
                format!("ensemble `{name}` needs at least 2 distinct members"),
            ));
        }
    }
    Ok(())
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

/// A study's seeds: `seeds = 5` (the experiment's seed and the four after it) or
/// `seeds = [1, 2, 3]`. Each seed trains the whole chain (or table) once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

/// By hand, so that a wrong value says what `seeds` takes (serde's untagged enums only say
/// that nothing matched).
impl<'de> Deserialize<'de> for Seeds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seeds, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Seeds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a count of seeds (5) or a list of seeds ([1, 2, 3])")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Seeds, E> {
                Ok(Seeds::Count(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Seeds, E> {
                u64::try_from(n)
                    .map(Seeds::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Seeds, A::Error> {
                let mut list = Vec::new();
                while let Some(seed) = seq.next_element::<u64>()? {
                    list.push(seed);
                }
                Ok(Seeds::List(list))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The most seeds one study takes: each is a whole chain or table of trainings.
pub const MAX_SEEDS: u64 = 1000;

impl Seeds {
    /// The seeds in order, counting on from `base` for a count; why not, for a count of 0 or
    /// beyond `MAX_SEEDS`, an empty list or a seed listed twice.
    pub fn resolve(&self, base: u64) -> Result<Vec<u64>, String> {
        let seeds = match self {
            Seeds::Count(n) if (1..=MAX_SEEDS).contains(n) => {
                (0..*n).map(|i| base.wrapping_add(i)).collect()
            }
            Seeds::Count(n) => return Err(format!("expected 1 to {MAX_SEEDS} seeds, found {n}")),
            Seeds::List(list) => list.clone(),
        };
        if seeds.is_empty() || seeds.len() as u64 > MAX_SEEDS {
            return Err(format!(
                "expected a list of 1 to {MAX_SEEDS} seeds, found {}",
                seeds.len()
            ));
        }
        for (i, s) in seeds.iter().enumerate() {
            if seeds[..i].contains(s) {
                return Err(format!("seed {s} is listed twice"));
            }
        }
        Ok(seeds)
    }
}

/// As `--seeds` takes it: `5` or `1,2,3`.
impl std::fmt::Display for Seeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seeds::Count(n) => write!(f, "{n}"),
            Seeds::List(list) => {
                let list: Vec<String> = list.iter().map(u64::to_string).collect();
                f.write_str(&list.join(","))
            }
        }
    }
}

impl std::str::FromStr for Seeds {
    type Err = String;
    /// `--seeds 5` or `--seeds 1,2,3`.
    fn from_str(text: &str) -> Result<Seeds, String> {
        let expected = || format!("`{text}`: expected a count (5) or a list of seeds (1,2,3)");
        if !text.contains(',') {
            return text
                .trim()
                .parse()
                .map(Seeds::Count)
                .map_err(|_| expected());
        }
        text.split(',')
            .map(|s| s.trim().parse::<u64>().map_err(|_| expected()))
            .collect::<Result<_, _>>()
            .map(Seeds::List)
    }
}

/// Command-line overrides applied to a spec before validation.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub seed: Option<u64>,
    /// A study's seeds, replacing the preset's `seeds`.
    pub seeds: Option<Seeds>,
    /// Directory of the data files (`data.path`).
    pub data: Option<PathBuf>,
}

fn line_of_offset(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// The 1-based line of `key` inside the `nth` (0-based) `[section]` (or `[[section]]`), or of
/// a `[section.key]` header, or of the section header when the key is absent (a default value
/// was wrong, or the key came from an override). Quoted keys (`"Ens*2" = 3.1`) are found too.
fn locate(source: &str, section: &str, key: &str, nth: usize) -> Option<usize> {
    let unquote = |s: &str| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
    let mut current = String::new();
    // Which occurrence of `section` the lines are in.
    let mut occurrence = None;
    let mut occurrences = 0;
    let mut header_line = None;
    for (i, line) in source.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            occurrence = None;
            if current == section {
                occurrence = Some(occurrences);
                occurrences += 1;
                if occurrence == Some(nth) {
                    header_line = Some(i + 1);
                }
            } else if let Some((s, k)) = current.split_once('.')
                && nth == 0
                && s.trim() == section
                && unquote(k) == key
            {
                return Some(i + 1);
            }
            continue;
        }
        let name = unquote(t.split('=').next().unwrap_or(""));
        let here = if section.is_empty() {
            current.is_empty()
        } else {
            occurrence == Some(nth)
        };
        if here && name == key {
            return Some(i + 1);
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Child processes get `--seeds` as the parent read it.
    #[test]
    fn seeds_print_as_they_are_written() {
        for text in ["5", "1,2,3"] {
            assert_eq!(text.parse::<Seeds>().unwrap().to_string(), text);
        }
    }

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

    #[test]
    fn names_are_one_plain_directory_name() {
        for ok in [
            "quick",
            "a b+c-0.5",
            "Ens*2",
            "table1-cifar10-WRN-28-1-main",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "  ", "/abs", "../../x", "a/b", "a\\b", "..", "a..b", ".x", "a\nb", "a\u{7}",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn generation_labels_are_teacher_and_ban_k() {
        for label in ["Teacher", "teacher", "BAN-1", "ban-17", "BAN-0"] {
            assert!(is_generation_label(label), "{label}");
        }
        for label in ["BAN-", "BAN-x", "BAN+L", "Ens*2", "Teacher+BAN-1", "BAN-1a"] {
            assert!(!is_generation_label(label), "{label}");
        }
        let labels = row_labels(2, &[]);
        assert_eq!(labels, ["Teacher", "BAN-1", "BAN-2", "Ens*2"]);
    }

    #[test]
    fn errors_of_a_later_array_table_point_at_its_own_line() {
        let text = "name = \"t\"\n[[ensemble]]\nname = \"a\"\nmembers = [1, 2]\n\n[[ensemble]]\nname = \"b\"\nmembers = [1]\n[paper]\n\"Ens*2\" = 1.0\n[paper.Teacher]\nvalid = 1.0\n";
        assert_eq!(locate(text, "ensemble", "members", 0), Some(4));
        assert_eq!(locate(text, "ensemble", "members", 1), Some(8));
        assert_eq!(
            locate(text, "ensemble", "average", 1),
            Some(6),
            "the header"
        );
        assert_eq!(locate(text, "paper", "Ens*2", 0), Some(10), "a quoted key");
        assert_eq!(locate(text, "paper", "Teacher", 0), Some(11), "a sub-table");
        assert_eq!(locate(text, "", "name", 0), Some(1));
    }
}
