//! One experiment type for both tasks, parsed once: a preset file is one chain of generations
//! (a vision or a language spec) or a paper table of chains. Whether a spec is a language one is
//! decided here and nowhere else: it names a `[corpus]` where a vision spec has `[data]`.
//! Plain data: nothing here uses burn.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::lm::spec::LmSpec;
use crate::run_dir::records::{Metric, Scores, Task};
use crate::spec::{EnsembleSpec, Overrides, Spec, SpecError};
use crate::table::{Chain, TablePreset};

/// One chain of generations (teacher, BAN-1, ..., BAN-k) and its ensembles, for either task.
#[derive(Debug, Clone, PartialEq)]
pub enum Experiment {
    Vision(Box<Spec>),
    Language(Box<LmSpec>),
}

/// Whether a spec's TOML table describes a language model.
fn names_a_corpus(table: &toml::Table) -> bool {
    table.contains_key("corpus")
}

impl Experiment {
    /// Parses a spec from TOML text; `file` names it in errors.
    pub fn parse(
        source: &str,
        file: &Path,
        overrides: &Overrides,
    ) -> Result<Experiment, SpecError> {
        let table: toml::Table = crate::spec::from_toml(source, file)?;
        Ok(if names_a_corpus(&table) {
            Experiment::Language(Box::new(LmSpec::parse(source, file, overrides)?))
        } else {
            Experiment::Vision(Box::new(Spec::parse(source, file, overrides)?))
        })
    }

    pub fn load(path: &Path, overrides: &Overrides) -> Result<Experiment, SpecError> {
        let source = std::fs::read_to_string(path).map_err(|e| SpecError::unreadable(path, e))?;
        Experiment::parse(&source, path, overrides)
    }

    pub fn task(&self) -> Task {
        match self {
            Experiment::Vision(_) => Task::Vision,
            Experiment::Language(_) => Task::Language,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Experiment::Vision(s) => &s.name,
            Experiment::Language(s) => &s.name,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Experiment::Vision(s) => &s.description,
            Experiment::Language(s) => &s.description,
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            Experiment::Vision(s) => s.seed,
            Experiment::Language(s) => s.seed,
        }
    }

    /// A study's seeds, resolved (validation has checked them).
    pub fn seeds(&self) -> Option<Vec<u64>> {
        let (seeds, base) = match self {
            Experiment::Vision(s) => (s.seeds.as_ref(), s.seed),
            Experiment::Language(s) => (s.seeds.as_ref(), s.seed),
        };
        seeds.and_then(|s| s.resolve(base).ok())
    }

    /// The experiment as seed `seed` of a study trains it: that seed, no study of its own.
    pub fn with_seed(&self, seed: u64) -> Experiment {
        let mut e = self.clone();
        match &mut e {
            Experiment::Vision(s) => (s.seed, s.seeds) = (seed, None),
            Experiment::Language(s) => (s.seed, s.seeds) = (seed, None),
        }
        e
    }

    /// Student generations after the teacher.
    pub fn students(&self) -> usize {
        match self {
            Experiment::Vision(s) => s.generations.count,
            Experiment::Language(s) => s.generations.count,
        }
    }

    /// Sets the generations after the teacher; the ensembles that name a generation no longer
    /// trained go with it, and so do the paper's values of rows no longer there.
    pub fn set_students(&mut self, count: usize) {
        let (students, ensembles) = match self {
            Experiment::Vision(s) => (&mut s.generations.count, &mut s.ensembles),
            Experiment::Language(s) => (&mut s.generations.count, &mut s.ensembles),
        };
        *students = count;
        ensembles.retain(|e| e.members.iter().all(|&m| m <= count));
        let labels = crate::spec::row_labels(count, ensembles);
        match self {
            Experiment::Vision(s) => s.paper.retain(|label, _| labels.contains(label)),
            Experiment::Language(s) => s.paper.retain(|label, _| labels.contains(label)),
        }
    }

    /// The row labels of the chain: "Teacher", "BAN-1" .. and its ensembles' names.
    pub fn row_labels(&self) -> Vec<String> {
        crate::spec::row_labels(
            self.students(),
            match self {
                Experiment::Vision(s) => &s.ensembles,
                Experiment::Language(s) => &s.ensembles,
            },
        )
    }

    /// The first paper value that is not a valid number of one of the chain's rows, as (label,
    /// message): what a spec's `[paper]` is checked for, and a table's cells after filling it.
    pub fn paper_problem(&self) -> Option<(String, String)> {
        match self {
            Experiment::Vision(s) => s.paper_problem(),
            Experiment::Language(s) => s.paper_problem(),
        }
    }

    /// Epochs of every generation.
    pub fn epochs(&self) -> usize {
        match self {
            Experiment::Vision(s) => s.schedule.epochs,
            Experiment::Language(s) => s.schedule.epochs,
        }
    }

    /// Epochs of generation `k`: more than `epochs` for a two-stage control (FitNets, FSP),
    /// whose first stage trains before the schedule.
    pub fn epochs_of(&self, k: usize) -> usize {
        match self {
            Experiment::Vision(s) => s.epochs_of(k),
            Experiment::Language(s) => s.schedule.epochs,
        }
    }

    /// Epochs of generations `0..k` together.
    pub fn epochs_before(&self, k: usize) -> usize {
        (0..k).map(|g| self.epochs_of(g)).sum()
    }

    /// The stage `epoch` (0-based) of generation `k` belongs to, for a two-stage control: its
    /// name and number ("hint", 1; then "KD", 2).
    pub fn stage_of(&self, k: usize, epoch: usize) -> Option<(&'static str, usize)> {
        let Experiment::Vision(s) = self else {
            return None;
        };
        let stage = (k > 0).then(|| s.generations.control_of(k).first_stage())??;
        Some(if epoch < stage.epochs {
            (stage.name, 1)
        } else {
            (stage.then, 2)
        })
    }

    pub fn batch_size(&self) -> usize {
        match self {
            Experiment::Vision(s) => s.schedule.batch_size,
            Experiment::Language(s) => s.schedule.batch_size,
        }
    }

    /// The architecture of generation `k`, as tables name it.
    pub fn model_of(&self, k: usize) -> String {
        match self {
            Experiment::Vision(s) => s.model_of(k).to_string(),
            Experiment::Language(s) => s.model.to_string(),
        }
    }

    /// What generation `k` is trained on ("labels" for the teacher).
    pub fn control_of(&self, k: usize) -> String {
        match (self, k) {
            (_, 0) => "labels".into(),
            (Experiment::Vision(s), k) => s.generations.control_of(k).name(),
            (Experiment::Language(_), _) => "BAN+L".into(),
        }
    }

    /// The ensembles to evaluate: the spec's, or Ens*k = BAN-1..BAN-k for k >= 2.
    pub fn ensembles(&self) -> Vec<EnsembleSpec> {
        match self {
            Experiment::Vision(s) => s.ensembles(),
            Experiment::Language(s) => s.ensembles(),
        }
    }

    /// The paper's values for a row label ("Teacher", "BAN-1", "Ens*2").
    pub fn paper(&self, label: &str) -> Scores {
        match self {
            Experiment::Vision(s) => s
                .paper
                .get(label)
                .map(|&e| Scores::from([(Metric::Top1Error, e)]))
                .unwrap_or_default(),
            Experiment::Language(s) => s
                .paper
                .get(label)
                .map(|p| {
                    [
                        (Metric::ValidationPerplexity, p.valid),
                        (Metric::TestPerplexity, p.test),
                    ]
                    .into_iter()
                    .filter_map(|(m, v)| Some((m, v?)))
                    .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Records the paper's `value` of `metric` for a row label (a table's cell); false when
    /// the spec has no place for that metric.
    pub fn set_paper(&mut self, label: &str, metric: Metric, value: f64) -> bool {
        match (self, metric) {
            (Experiment::Vision(s), Metric::Top1Error) => {
                s.paper.insert(label.into(), value);
            }
            (Experiment::Language(s), Metric::ValidationPerplexity) => {
                s.paper.entry(label.into()).or_default().valid = Some(value);
            }
            (Experiment::Language(s), Metric::TestPerplexity) => {
                s.paper.entry(label.into()).or_default().test = Some(value);
            }
            _ => return false,
        }
        true
    }

    /// The resolved spec as TOML (what a run directory stores).
    pub fn to_toml(&self) -> String {
        match self {
            Experiment::Vision(s) => s.to_toml(),
            Experiment::Language(s) => s.to_toml(),
        }
    }

    /// The schedule in one line, as `check` shows it.
    pub fn schedule_summary(&self) -> String {
        match self {
            Experiment::Vision(spec) => {
                let s = &spec.schedule;
                let evaluated = match s.evaluate_every {
                    1 => String::new(),
                    n => format!(", test set evaluated every {n} epochs and at the last"),
                };
                format!(
                    "{} epochs, batch {}, SGD lr {} (x{} at {:?}), momentum {}{}, weight decay {}{evaluated}",
                    s.epochs,
                    s.batch_size,
                    s.lr,
                    s.lr_factor,
                    s.milestones,
                    s.momentum,
                    if s.nesterov { " Nesterov" } else { "" },
                    s.weight_decay
                )
            }
            Experiment::Language(spec) => {
                let s = &spec.schedule;
                format!(
                    "{} epochs, batch {}, BPTT {} steps, SGD lr {} (x{} when validation perplexity does not improve by {}), gradient norm clipped at {}",
                    s.epochs,
                    s.batch_size,
                    s.bptt,
                    s.lr,
                    s.plateau_factor,
                    s.plateau_threshold,
                    s.clip
                )
            }
        }
    }

    /// The data set's directory, when it is read from disk.
    pub fn data_path(&self) -> Option<&Path> {
        match self {
            Experiment::Vision(s) => s.data.path.as_deref(),
            Experiment::Language(s) => Some(&s.corpus.path),
        }
    }
}

/// What a preset file holds.
#[derive(Debug, Clone)]
pub enum Preset {
    Chain(Experiment),
    Table(Box<TableRun>),
}

/// A paper table preset resolved under one profile.
#[derive(Debug, Clone)]
pub struct TableRun {
    pub preset: TablePreset,
    pub profile: String,
    pub chains: Vec<Chain>,
}

impl TableRun {
    /// The table's default output directory name.
    pub fn name(&self) -> String {
        format!("{}-{}", self.preset.table.name, self.profile)
    }
}

impl Preset {
    /// Reads a preset: a table (it has a `[table]` section) under `profile` (default `full`),
    /// or one chain; every spec validated, with `overrides` applied.
    pub fn load(path: &Path, profile: Option<&str>, overrides: &Overrides) -> Result<Preset> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("{}: cannot read the preset: {e}", path.display()))?;
        let table: toml::Table = crate::spec::from_toml(&source, path)?;
        if table.contains_key("table") {
            let preset: TablePreset = crate::spec::from_toml(&source, path)?;
            let profile = profile.unwrap_or("full").to_string();
            let chains = preset.chains(path, &profile, overrides)?;
            return Ok(Preset::Table(Box::new(TableRun {
                preset,
                profile,
                chains,
            })));
        }
        if let Some(p) = profile {
            bail!(
                "{}: --profile {p}: only paper table presets have profiles",
                path.display()
            );
        }
        Ok(Preset::Chain(Experiment::parse(&source, path, overrides)?))
    }

    /// A study's seeds: the chain's, or those every chain of a table shares (from `[base]`).
    pub fn seeds(&self) -> Result<Option<Vec<u64>>> {
        let experiments = self.experiments();
        let seeds = experiments[0].1.seeds();
        // Every chain of seed s trains from seed s; a count counts from the first chain's seed.
        if let Some((place, _)) = experiments
            .iter()
            .find(|(_, e)| e.seeds().is_some() != seeds.is_some())
        {
            bail!("{place}: `seeds` is set for some chains only: a study's chains share one list");
        }
        Ok(seeds)
    }

    /// The preset as seed `seed` of a study trains it.
    pub fn with_seed(&self, seed: u64) -> Preset {
        match self {
            Preset::Chain(e) => Preset::Chain(e.with_seed(seed)),
            Preset::Table(t) => {
                let mut t = t.clone();
                for chain in &mut t.chains {
                    chain.experiment = chain.experiment.with_seed(seed);
                }
                Preset::Table(t)
            }
        }
    }

    /// Every chain of the preset, with the place it is known by in messages.
    pub fn experiments(&self) -> Vec<(String, &Experiment)> {
        match self {
            Preset::Chain(e) => vec![(String::new(), e)],
            Preset::Table(t) => t
                .chains
                .iter()
                .map(|c| {
                    (
                        format!("row `{}`, chain `{}`", c.row, c.name),
                        &c.experiment,
                    )
                })
                .collect(),
        }
    }
}

/// A spec merged from a table's parts, parsed as the experiment it describes; errors name
/// `place` (the file with its row and chain) rather than lines of the merged text.
pub fn from_merged(
    table: &toml::Table,
    place: PathBuf,
    overrides: &Overrides,
) -> Result<Experiment> {
    let text = toml::to_string(table).context("a merged table serialises")?;
    Experiment::parse(&text, &place, overrides).map_err(|mut e| {
        e.line = None;
        e.into()
    })
}
