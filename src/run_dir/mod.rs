//! The run directory: the contract between the worker and everything that reads a run.
//!
//! ```text
//! spec.toml        the resolved spec
//! metrics.jsonl    one EpochRecord per line
//! checkpoints/     gen-K.bpk, one per finished generation
//! logits/          gen-K.f32 (test logits, little-endian f32, samples x classes), labels.json
//! results.json     Results: every finished generation and ensemble
//! results.md       the same as a table
//! ```
//! Every file is written atomically (temporary file + rename), so a reader in another SSH
//! session, or a crash, never sees half a file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::ensemble::{Logits, Metrics};
use crate::events::{LanguageResults, Results};
use crate::spec::{Overrides, Spec};

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// Test labels and class names, stored once per run so ensembles need no dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestLabels {
    pub dataset: String,
    pub class_names: Vec<String>,
    pub labels: Vec<u16>,
}

#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// Opens an existing run directory for reading.
    pub fn open(root: &Path) -> Result<RunDir> {
        let dir = RunDir {
            root: root.to_path_buf(),
        };
        if !dir.spec_path().is_file() {
            bail!("{}: not a run directory (no spec.toml)", root.display());
        }
        Ok(dir)
    }

    /// Creates a run directory for `spec`, or reopens one that holds the same spec so that its
    /// finished generations are kept (resume). A directory holding another spec is an error.
    pub fn create(root: &Path, spec: &Spec) -> Result<RunDir> {
        let path = root.join("spec.toml");
        let same = |existing: &str| {
            Spec::parse(existing, &path, &Overrides::default()).is_ok_and(|e| &e == spec)
        };
        RunDir::create_with(root, &spec.to_toml(), same)
    }

    /// `create` for a language-model spec.
    pub fn create_language(root: &Path, spec: &crate::lm::spec::LmSpec) -> Result<RunDir> {
        let path = root.join("spec.toml");
        let same = |existing: &str| {
            crate::lm::spec::LmSpec::parse(existing, &path, &Overrides::default())
                .is_ok_and(|e| &e == spec)
        };
        RunDir::create_with(root, &spec.to_toml(), same)
    }

    /// How many generations a resumed run keeps: those its results list in order from the
    /// teacher (`listed`) whose checkpoint and saved test outputs (`outputs(k)`: logits or
    /// target probabilities) are both on disk.
    pub fn finished_generations(
        &self,
        listed: impl IntoIterator<Item = usize>,
        outputs: impl Fn(&RunDir, usize) -> PathBuf,
    ) -> usize {
        listed
            .into_iter()
            .enumerate()
            .take_while(|&(k, g)| {
                g == k && outputs(self, k).exists() && self.checkpoint_path(k).exists()
            })
            .count()
    }

    pub fn spec_path(&self) -> PathBuf {
        self.root.join("spec.toml")
    }
    pub fn checkpoint_path(&self, generation: usize) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("gen-{generation}.bpk"))
    }
    pub fn logits_path(&self, generation: usize) -> PathBuf {
        self.root
            .join("logits")
            .join(format!("gen-{generation}.f32"))
    }
    fn labels_path(&self) -> PathBuf {
        self.root.join("logits").join("labels.json")
    }
    fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn results_path(&self) -> PathBuf {
        self.root.join("results.json")
    }

    pub fn spec(&self) -> Result<Spec> {
        Ok(Spec::load(&self.spec_path(), &Overrides::default())?)
    }

    pub fn write_logits(&self, generation: usize, logits: &Logits) -> Result<()> {
        let bytes: Vec<u8> = logits.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let path = self.logits_path(generation);
        write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))
    }

    pub fn read_logits(&self, generation: usize, classes: usize, samples: usize) -> Result<Logits> {
        let path = self.logits_path(generation);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let expected = samples * classes * 4;
        if bytes.len() != expected {
            bail!(
                "{}: expected {expected} bytes ({samples} samples x {classes} classes of f32), found {}",
                path.display(),
                bytes.len()
            );
        }
        let values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Logits { classes, values })
    }

    pub fn write_labels(&self, labels: &TestLabels) -> Result<()> {
        write_json(&self.labels_path(), labels)
    }
    pub fn labels(&self) -> Result<TestLabels> {
        read_json(&self.labels_path())
    }

    /// Rewrites metrics.jsonl with `records` (atomically: the file is small). Vision runs store
    /// `EpochRecord`s, language runs `LanguageEpochRecord`s (which contain one).
    pub fn write_metrics<R: Serialize>(&self, records: &[R]) -> Result<()> {
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        let path = self.metrics_path();
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
    }

    /// metrics.jsonl, one record per line: `EpochRecord`s for any run, or `LanguageEpochRecord`s
    /// for a language run.
    pub fn metrics<R: for<'de> Deserialize<'de>>(&self) -> Result<Vec<R>> {
        let path = self.metrics_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))
            })
            .collect()
    }

    /// Writes results.json and results.md.
    pub fn write_results(&self, results: &Results, spec: &Spec) -> Result<()> {
        write_json(&self.results_path(), results)?;
        let path = self.root.join("results.md");
        write_atomic(&path, results_table(results, spec).as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn results(&self) -> Result<Option<Results>> {
        if !self.results_path().exists() {
            return Ok(None);
        }
        read_json(&self.results_path()).map(Some)
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid banbench file", path.display()))
}

fn paper_cells(paper: Option<f64>, measured: f64) -> (String, String) {
    match paper {
        Some(p) => (format!("{p:.2}"), format!("{:+.2}", measured - p)),
        None => ("".into(), "".into()),
    }
}

fn metric_cells(m: &Metrics) -> String {
    format!(
        "{:.2} | {:.2} | {:.4} | {:.2}",
        m.top1_error, m.top5_error, m.nll, m.ece
    )
}

/// results.md: one row per generation and ensemble, the paper's number beside the measured one
/// when the spec carries it.
pub fn results_table(results: &Results, spec: &Spec) -> String {
    let mut out = format!(
        "# {}\n\n{} test samples of {}, device {}, state {:?}.\n\
         Errors and ECE in %, NLL in nats. Delta: measured minus the paper.\n\n",
        results.name, results.test_samples, results.dataset, results.device, results.state
    );
    if !spec.description.is_empty() {
        out.push_str(&format!("{}\n\n", spec.description));
    }
    out.push_str("| Row | Model | Control | Params | Top-1 err | Top-5 err | NLL | ECE | vs teacher | Paper | Delta | Train s |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let teacher = results
        .generations
        .iter()
        .find(|g| g.generation == 0)
        .map(|g| g.metrics.top1_error);
    let delta_teacher = |e: f64| {
        teacher
            .map(|t| format!("{:+.2}", e - t))
            .unwrap_or_default()
    };
    for g in &results.generations {
        let (paper, delta) = paper_cells(g.paper_error, g.metrics.top1_error);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |\n",
            g.label,
            g.model,
            g.control,
            g.parameters,
            metric_cells(&g.metrics),
            if g.generation == 0 {
                String::new()
            } else {
                delta_teacher(g.metrics.top1_error)
            },
            paper,
            delta,
            g.train_seconds
        ));
    }
    for e in &results.ensembles {
        let (paper, delta) = paper_cells(e.paper_error, e.metrics.top1_error);
        let members = members_text(&e.members);
        out.push_str(&format!(
            "| {} | {} | mean of {} | | {} | {} | {} | {} | |\n",
            e.name,
            members,
            e.average,
            metric_cells(&e.metrics),
            delta_teacher(e.metrics.top1_error),
            paper,
            delta
        ));
    }
    out
}

// Language-model runs (src/lm) share the directory layout: spec.toml holds an `LmSpec`,
// metrics.jsonl `LanguageEpochRecord`s, logits/gen-K.target.f32 each test token's probability of
// its target under generation K (all a probability-averaged ensemble needs), and results.json a
// `LanguageResults`.
impl RunDir {
    /// Creates (or reopens, to resume) a run directory whose spec.toml is `spec_toml`; `same`
    /// tells whether an existing spec.toml holds the same spec.
    pub fn create_with(
        root: &Path,
        spec_toml: &str,
        same: impl Fn(&str) -> bool,
    ) -> Result<RunDir> {
        let dir = RunDir {
            root: root.to_path_buf(),
        };
        if dir.spec_path().is_file() {
            let existing = fs::read_to_string(dir.spec_path())
                .with_context(|| format!("reading {}", dir.spec_path().display()))?;
            if !same(&existing) {
                bail!(
                    "{}: holds a run of another spec; choose another --out directory, or give \
                     the same spec and options to resume it",
                    root.display()
                );
            }
        } else if root.is_dir() && fs::read_dir(root)?.next().is_some() {
            bail!(
                "{}: exists and is not empty; choose another --out directory",
                root.display()
            );
        }
        for sub in ["checkpoints", "logits"] {
            fs::create_dir_all(root.join(sub))
                .with_context(|| format!("creating {}", root.join(sub).display()))?;
        }
        write_atomic(&dir.spec_path(), spec_toml.as_bytes())
            .with_context(|| format!("writing {}", dir.spec_path().display()))?;
        Ok(dir)
    }

    pub fn target_probabilities_path(&self, generation: usize) -> PathBuf {
        self.root
            .join("logits")
            .join(format!("gen-{generation}.target.f32"))
    }

    pub fn write_target_probabilities(&self, generation: usize, probs: &[f32]) -> Result<()> {
        let bytes: Vec<u8> = probs.iter().flat_map(|v| v.to_le_bytes()).collect();
        let path = self.target_probabilities_path(generation);
        write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))
    }

    pub fn read_target_probabilities(&self, generation: usize, tokens: usize) -> Result<Vec<f32>> {
        let path = self.target_probabilities_path(generation);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() != tokens * 4 {
            bail!(
                "{}: expected {} bytes ({tokens} tokens of f32), found {}",
                path.display(),
                tokens * 4,
                bytes.len()
            );
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// Writes results.json and results.md of a language run.
    pub fn write_language_results(
        &self,
        results: &LanguageResults,
        description: &str,
    ) -> Result<()> {
        write_json(&self.results_path(), results)?;
        let path = self.root.join("results.md");
        write_atomic(
            &path,
            language_results_table(results, description).as_bytes(),
        )
        .with_context(|| format!("writing {}", path.display()))
    }

    pub fn language_results(&self) -> Result<Option<LanguageResults>> {
        if !self.results_path().exists() {
            return Ok(None);
        }
        read_json(&self.results_path()).map(Some)
    }
}

fn perplexity_cells(paper: Option<f64>, measured: f64) -> (String, String) {
    match paper {
        Some(p) => (format!("{p:.2}"), format!("{:+.2}", measured - p)),
        None => ("".into(), "".into()),
    }
}

/// results.md of a language run: perplexities where a vision run shows errors.
pub fn language_results_table(results: &LanguageResults, description: &str) -> String {
    let mut out = format!(
        "# {}\n\n{} test tokens of {} (vocabulary {}), device {}, state {:?}.\n\
         Perplexity of the best-validation checkpoint; next-token top-1 error in %. Delta: measured minus the paper.\n\n",
        results.name,
        results.test_tokens,
        results.corpus,
        results.vocabulary,
        results.device,
        results.state
    );
    if !description.is_empty() {
        out.push_str(&format!("{description}\n\n"));
    }
    out.push_str("| Row | Model | Control | Params | Val ppl | Paper val | Delta | Test ppl | Paper test | Delta | Test err | Best epoch | Train s |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for g in &results.generations {
        let (pv, dv) = perplexity_cells(g.paper_validation_perplexity, g.validation_perplexity);
        let (pt, dt) = perplexity_cells(g.paper_test_perplexity, g.test_perplexity);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {pv} | {dv} | {:.2} | {pt} | {dt} | {:.2} | {} | {:.0} |\n",
            g.label,
            g.model,
            g.control,
            g.parameters,
            g.validation_perplexity,
            g.test_perplexity,
            g.test_error,
            g.best_epoch,
            g.train_seconds
        ));
    }
    for e in &results.ensembles {
        let members = members_text(&e.members);
        out.push_str(&format!(
            "| {} | {} | mean of probabilities | | | | | {:.2} | | | | | |\n",
            e.name, members, e.test_perplexity
        ));
    }
    out
}

/// "Teacher + BAN-1 + BAN-2": an ensemble's members as results tables name them.
fn members_text(members: &[usize]) -> String {
    let labels: Vec<String> = members
        .iter()
        .map(|&m| crate::events::generation_label(m))
        .collect();
    labels.join(" + ")
}
