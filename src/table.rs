//! Paper-table presets, for both tasks: a grid of chains whose results fill the paper's rows
//! and columns.
//!
//! A table preset holds a `[base]` spec shared by every chain, `[profiles.NAME]` that change it
//! (`full`: the paper's protocol; `smoke`: the same structure shrunk), `[[chain]]` templates run
//! for every `[[row]]` (one chain `main` when none is given; a chain may start from another
//! chain's teacher, as the paper's controls all distill the same teacher), and `[table].cells`
//! mapping each column to a chain's row label and what to show: "main:Teacher" (the task's
//! primary metric: top-1 error, or test perplexity), "main:Teacher:valid" / ":test"
//! (perplexities), "main:Teacher:params". Each chain is an ordinary run directory under
//! `OUT/ROW/CHAIN`, so a stopped table resumes chain by chain and any chain opens in
//! `banbench report` and the TUI. Plain data: the runner is `headless::run_table`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use crate::experiment::{Experiment, from_merged};
use crate::run_dir::RunDir;
use crate::run_dir::records::{EpochRecord, Metric, Results, RunState};
use crate::spec::{ModelSpec, Overrides, check_name};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablePreset {
    pub table: TableHeader,
    /// Spec fields every chain starts from.
    pub base: toml::Table,
    pub profiles: BTreeMap<String, Profile>,
    #[serde(rename = "chain", default = "one_chain")]
    pub chains: Vec<ChainTemplate>,
    #[serde(rename = "row")]
    pub rows: Vec<Row>,
}

fn one_chain() -> Vec<ChainTemplate> {
    vec![ChainTemplate {
        name: "main".into(),
        teacher_from: None,
        set: toml::Table::new(),
    }]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableHeader {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Columns in the paper's order.
    pub columns: Vec<String>,
    /// Column -> "CHAIN:LABEL", "CHAIN:LABEL:valid", "CHAIN:LABEL:test" or "CHAIN:LABEL:params".
    pub cells: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub description: String,
    /// Replace every vision architecture by a narrow, shallow one of the same family.
    #[serde(default)]
    pub shrink: bool,
    /// Spec fields this profile changes.
    #[serde(default)]
    pub set: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainTemplate {
    pub name: String,
    /// Start from this earlier chain's teacher (generation 0) instead of training one.
    #[serde(default)]
    pub teacher_from: Option<String>,
    #[serde(default)]
    pub set: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub name: String,
    /// Read the chains of this earlier row instead of running new ones (a second line of the
    /// same experiments, e.g. Table 4's parameter counts).
    #[serde(default)]
    pub same_as: Option<String>,
    /// Column -> cell sources for this row, replacing `table.cells` where given.
    #[serde(default)]
    pub cells: BTreeMap<String, String>,
    #[serde(default)]
    pub set: toml::Table,
    /// Profile name -> spec fields this row changes under that profile (a smoke profile shrinks
    /// an LSTM and a CNN-LSTM differently).
    #[serde(default)]
    pub profile: BTreeMap<String, toml::Table>,
    /// The paper's numbers (errors, perplexities) or text (parameter counts) per column.
    #[serde(default)]
    pub paper: BTreeMap<String, toml::Value>,
}

/// One chain of one row, resolved to an experiment.
#[derive(Debug, Clone)]
pub struct Chain {
    pub row: String,
    pub name: String,
    pub teacher_from: Option<String>,
    pub experiment: Experiment,
}

/// What a cell shows of its chain's row label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shown {
    /// A metric; `None`: the task's primary one.
    Metric(Option<Metric>),
    Params,
}

/// A cell's source: chain, row label and what is shown. None when it is not of that form.
pub fn parse_cell(cell: &str) -> Option<(&str, &str, Shown)> {
    let mut parts = cell.splitn(3, ':');
    let (chain, label) = (parts.next()?, parts.next()?);
    let shown = match parts.next() {
        None => Shown::Metric(None),
        Some("params") => Shown::Params,
        Some("valid") => Shown::Metric(Some(Metric::ValidationPerplexity)),
        Some("test") => Shown::Metric(Some(Metric::TestPerplexity)),
        Some(_) => return None,
    };
    (!chain.is_empty() && !label.is_empty()).then_some((chain, label, shown))
}

/// A table preset's profile by name; the error names the file and the profiles it has.
fn pick_profile<'a>(
    profiles: &'a BTreeMap<String, Profile>,
    file: &Path,
    name: &str,
) -> Result<&'a Profile> {
    profiles.get(name).with_context(|| {
        let names: Vec<&str> = profiles.keys().map(String::as_str).collect();
        format!(
            "{}: no profile `{name}`; this table has {}",
            file.display(),
            names.join(", ")
        )
    })
}

/// Recursively merges `over` into `base`: tables merge, everything else is replaced.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

impl TablePreset {
    pub fn profile_names(&self) -> Vec<String> {
        self.profiles.keys().cloned().collect()
    }

    /// The cell source of `column` in `row`.
    fn cell_of<'a>(&'a self, row: &'a Row, column: &str) -> Option<&'a str> {
        row.cells
            .get(column)
            .or_else(|| self.table.cells.get(column))
            .map(String::as_str)
    }

    /// Every chain of every row under `profile`, validated; errors name the row, chain and field.
    pub fn chains(&self, file: &Path, profile: &str, overrides: &Overrides) -> Result<Vec<Chain>> {
        // The table's directory is runs/NAME-PROFILE: both must be plain directory names.
        check_name(&self.table.name).map_err(|m| anyhow!("{}: table.name: {m}", file.display()))?;
        for name in self.profiles.keys() {
            check_name(name).map_err(|m| anyhow!("{}: profiles.{name:?}: {m}", file.display()))?;
        }
        self.check_paper_values(file)?;
        let p = pick_profile(&self.profiles, file, profile)?;
        let row_cells = self.rows.iter().flat_map(|r| &r.cells);
        for (column, cell) in self.table.cells.iter().chain(row_cells) {
            let known = parse_cell(cell)
                .is_some_and(|(chain, _, _)| self.chains.iter().any(|c| c.name == chain));
            if !self.table.columns.contains(column) || !known {
                bail!(
                    "{}: cells.{column} = \"{cell}\": expected a column of table.columns and CHAIN:LABEL, CHAIN:LABEL:valid, CHAIN:LABEL:test or CHAIN:LABEL:params with an existing chain",
                    file.display()
                );
            }
        }
        let mut out = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            if let Some(same) = &row.same_as {
                if !self.rows[..i]
                    .iter()
                    .any(|r| &r.name == same && r.same_as.is_none())
                {
                    bail!(
                        "{}: row `{}`: same_as = \"{same}\" must name an earlier row that runs its own chains",
                        file.display(),
                        row.name
                    );
                }
                continue;
            }
            for (i, template) in self.chains.iter().enumerate() {
                if let Some(from) = &template.teacher_from
                    && !self.chains[..i].iter().any(|c| &c.name == from)
                {
                    bail!(
                        "{}: chain `{}`: teacher_from = \"{from}\" must name an earlier chain",
                        file.display(),
                        template.name
                    );
                }
                // The profile's changes override each row's (a smoke profile's epochs), and a
                // row's own changes for the profile come after both.
                let mut table = self.base.clone();
                merge(&mut table, &row.set);
                merge(&mut table, &p.set);
                if let Some(changes) = row.profile.get(profile) {
                    merge(&mut table, changes);
                }
                merge(&mut table, &template.set);
                table.insert(
                    "name".into(),
                    format!("{}-{}-{}", self.table.name, row.name, template.name).into(),
                );
                let place = PathBuf::from(format!(
                    "{} (row `{}`, chain `{}`)",
                    file.display(),
                    row.name,
                    template.name
                ));
                let mut experiment = from_merged(&table, place, overrides)?;
                if p.shrink
                    && let Experiment::Vision(spec) = &mut experiment
                {
                    spec.teacher = shrink(&spec.teacher);
                    spec.student = spec
                        .student
                        .as_ref()
                        .map(|s| shrink_student(s, &spec.teacher));
                }
                let task = experiment.task();
                for (column, value) in &row.paper {
                    let Some((chain, label, Shown::Metric(metric))) =
                        self.cell_of(row, column).and_then(parse_cell)
                    else {
                        continue;
                    };
                    let (true, Some(v)) = (chain == template.name, paper_number(value)) else {
                        continue;
                    };
                    let metric = metric.unwrap_or(task.primary());
                    let place = || {
                        format!(
                            "{}: row `{}`: paper.{column:?} (cell \"{}\")",
                            file.display(),
                            row.name,
                            self.cell_of(row, column).unwrap_or_default()
                        )
                    };
                    if !experiment.set_paper(label, metric, v) {
                        bail!(
                            "{}: a {task:?} chain has no {metric:?} to compare with",
                            place()
                        );
                    }
                    if let Some((_, message)) = experiment.paper_problem() {
                        bail!("{}: {message}", place());
                    }
                }
                out.push(Chain {
                    row: row.name.clone(),
                    name: template.name.clone(),
                    teacher_from: template.teacher_from.clone(),
                    experiment,
                });
            }
        }
        Ok(out)
    }
}

/// A paper value as a number, whether TOML wrote it as a float or an integer; `None` for text.
fn paper_number(value: &toml::Value) -> Option<f64> {
    value
        .as_float()
        .or_else(|| value.as_integer().map(|i| i as f64))
}

impl TablePreset {
    /// Every row's paper values: under columns of the table, numbers (finite, not negative) or
    /// text as the paper prints it ("22.4M", "/"). The numbers a chain compares with are checked
    /// again against its rows and metric once filled in (`Experiment::paper_problem`).
    fn check_paper_values(&self, file: &Path) -> Result<()> {
        for row in &self.rows {
            for (column, value) in &row.paper {
                let place = || format!("{}: row `{}`: paper.{column:?}", file.display(), row.name);
                if !self.table.columns.contains(column) {
                    bail!(
                        "{}: not a column of table.columns ({})",
                        place(),
                        self.table.columns.join(", ")
                    );
                }
                match (value, paper_number(value)) {
                    (_, Some(v)) if !(v.is_finite() && v >= 0.0) => {
                        bail!("{}: expected a finite number >= 0, found {v}", place())
                    }
                    (_, Some(_)) | (toml::Value::String(_), None) => {}
                    (other, None) => bail!(
                        "{}: expected the paper's number, or its text (\"22.4M\", \"/\"), found {other}",
                        place()
                    ),
                }
            }
        }
        Ok(())
    }
}

/// The smoke profile's rule: the same family, as narrow and shallow as it goes, so a table's
/// whole structure runs on 2 CPU cores in minutes. Relations between teacher and student that
/// a table compares (a deeper student, another compression) survive in miniature.
pub fn shrink(model: &ModelSpec) -> ModelSpec {
    match model {
        ModelSpec::Mlp { .. } => ModelSpec::Mlp { hidden: vec![16] },
        ModelSpec::Cnn { .. } => ModelSpec::Cnn { width: 4 },
        // Explicit stems and widths exist to match another model's: the shrunk DenseNet-BC's
        // (growth 2, a 4-channel stem) unless `shrink_student` knows the teacher.
        ModelSpec::PreactResnet { .. } => shrink_preact(model, 4, 4),
        ModelSpec::DensenetBc {
            depth,
            compression,
            block_layers,
            stem,
            ..
        } => {
            // One layer per block for the usual depths, more for a deeper student.
            let layers = |l: usize| l.div_ceil(12).max(1);
            let block_layers: Vec<usize> = block_layers.iter().map(|&l| layers(l)).collect();
            let depth = if block_layers.is_empty() {
                6 * layers((depth - 4) / 6) + 4
            } else {
                2 * block_layers.iter().sum::<usize>() + 4
            };
            ModelSpec::DensenetBc {
                depth,
                growth: 2,
                compression: *compression,
                block_layers,
                stem: stem.map(|_| 4),
            }
        }
        ModelSpec::WideResnet { dropout, .. } => ModelSpec::WideResnet {
            depth: 10,
            widen: 1,
            dropout: *dropout,
        },
    }
}

/// `shrink` for a student of the already shrunk `teacher`: a pre-activation ResNet that shares
/// its teacher's first conv and output layer (Table 5) takes the shrunk teacher's stem and
/// feature width, so sharing still works in miniature.
fn shrink_student(student: &ModelSpec, teacher: &ModelSpec) -> ModelSpec {
    match (student, crate::arch::shared_shapes(teacher)) {
        (ModelSpec::PreactResnet { .. }, Some(t)) => {
            shrink_preact(student, t.first_conv, t.features)
        }
        _ => shrink(student),
    }
}

/// The smallest pre-activation ResNet with the same kind of unit, one per stage; an explicit
/// stem becomes `to_stem`, explicit channels end at `features` with the other stages (and
/// explicit inner widths) in proportion to the last.
fn shrink_preact(model: &ModelSpec, to_stem: usize, features: usize) -> ModelSpec {
    let ModelSpec::PreactResnet {
        unit,
        inner,
        stem,
        channels,
        blocks,
        ..
    } = model
    else {
        unreachable!("called with a pre-activation ResNet spec")
    };
    let last = channels.last().copied().unwrap_or(1);
    let scale = |list: &[usize]| -> Vec<usize> {
        list.iter()
            .map(|&c| (features * c).div_ceil(last))
            .collect()
    };
    ModelSpec::PreactResnet {
        depth: 3 * unit.layers() + 2,
        width: 1,
        unit: *unit,
        // Inner widths follow explicit channels; with the default channels, the default inner.
        inner: if channels.is_empty() {
            vec![]
        } else {
            scale(inner)
        },
        stem: stem.map(|_| to_stem),
        channels: scale(channels),
        blocks: if blocks.is_empty() {
            vec![]
        } else {
            vec![1; 3]
        },
    }
}

/// A paper number as the table prints it: text as written, numbers as TOML writes them.
pub fn paper_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The paper's parameter counts with the models they count: a cell read as
/// "CHAIN:LABEL:params" names a generation of one of the row's chains (its model, as tables
/// name it), with the row and chain it belongs to.
pub fn paper_parameter_counts<'a>(
    preset: &TablePreset,
    chains: &'a [Chain],
) -> Vec<(&'a Chain, usize, String)> {
    let mut counts = Vec::new();
    for row in &preset.rows {
        let chains_of = row.same_as.as_ref().unwrap_or(&row.name);
        for column in &preset.table.columns {
            let Some((chain, label, Shown::Params)) =
                preset.cell_of(row, column).and_then(parse_cell)
            else {
                continue;
            };
            let Some(chain) = chains
                .iter()
                .find(|c| &c.row == chains_of && c.name == chain)
            else {
                continue;
            };
            let generation = if label == "Teacher" { 0 } else { 1 };
            if let Some(paper) = row.paper.get(column) {
                counts.push((chain, generation, paper_text(paper)));
            }
        }
    }
    counts
}

/// Where a chain's run directory lives inside a table's output directory.
pub fn chain_dir(out: &Path, chain: &Chain) -> PathBuf {
    out.join(sanitize(&chain.row)).join(sanitize(&chain.name))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether two chains train the same generation 0: the same spec once the students' parts are
/// left out.
fn same_teacher(a: &Experiment, b: &Experiment) -> bool {
    match (a, b) {
        (Experiment::Vision(a), Experiment::Vision(b)) => {
            a.teacher == b.teacher
                && a.data == b.data
                && a.schedule == b.schedule
                && a.seed == b.seed
        }
        (Experiment::Language(a), Experiment::Language(b)) => {
            a.model == b.model
                && a.corpus == b.corpus
                && a.schedule == b.schedule
                && a.seed == b.seed
        }
        _ => false,
    }
}

/// The chain whose teacher `chains[i]` adopts instead of training one: the one the preset
/// names, or else any earlier chain whose generation 0 is the same experiment (Table 5's rows
/// share theirs).
pub fn teacher_source(chains: &[Chain], i: usize) -> Option<&Chain> {
    let chain = &chains[i];
    match &chain.teacher_from {
        Some(from) => chains
            .iter()
            .find(|c| c.row == chain.row && &c.name == from),
        None => chains[..i]
            .iter()
            .find(|c| same_teacher(&c.experiment, &chain.experiment)),
    }
}

/// Seeds a chain's run directory with another chain's finished teacher, so that the generation
/// loop resumes after it instead of training a new one.
pub fn adopt_teacher(from: &RunDir, to: &RunDir, experiment: &Experiment) -> Result<()> {
    if to.results()?.is_some_and(|r| !r.generations.is_empty()) {
        return Ok(());
    }
    let source = from
        .results()?
        .context("the teacher's chain has no results")?;
    let teacher = source
        .generations
        .first()
        .filter(|g| g.generation == 0)
        .context("the teacher's chain has no finished teacher")?;
    if experiment.model_of(0) != teacher.model {
        bail!(
            "teacher_from: the chain's teacher is {}, the adopted one is {}",
            experiment.model_of(0),
            teacher.model
        );
    }
    let task = experiment.task();
    std::fs::copy(from.checkpoint_path(0), to.checkpoint_path(0))
        .context("copying the teacher's checkpoint")?;
    std::fs::copy(from.outputs_path(task, 0), to.outputs_path(task, 0))
        .context("copying the teacher's test outputs")?;
    let records: Vec<EpochRecord> = from
        .metrics()?
        .into_iter()
        .filter(|r| r.generation == 0)
        .collect();
    to.write_metrics(&records)?;
    let results = Results {
        name: experiment.name().to_string(),
        state: RunState::Stopped,
        generations: vec![teacher.clone()],
        ensembles: Vec::new(),
        ..source
    };
    to.write_results(&results, experiment.description())
}

/// One measured (and paper) cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub measured: Option<String>,
    pub paper: Option<String>,
    pub delta: Option<f64>,
}

/// The table as the paper lays it out, filled from the chains' results (by row and chain).
pub fn render(
    preset: &TablePreset,
    profile: &str,
    results: &BTreeMap<(String, String), Results>,
) -> String {
    let mut out = format!("# {}\n\nProfile `{profile}`.", preset.table.title);
    if let Some(p) = preset
        .profiles
        .get(profile)
        .filter(|p| !p.description.is_empty())
    {
        out.push_str(&format!(" {}", p.description));
    }
    out.push_str(
        " Each cell: measured (paper, measured - paper); errors in %, perplexities per token.\n\n",
    );
    if !preset.table.description.is_empty() {
        out.push_str(&format!("{}\n\n", preset.table.description));
    }
    out.push_str(&format!(
        "| {} | {} |\n",
        "Network",
        preset.table.columns.join(" | ")
    ));
    out.push_str(&format!(
        "|---|{}\n",
        "---|".repeat(preset.table.columns.len())
    ));
    for row in &preset.rows {
        let cells: Vec<String> = preset
            .table
            .columns
            .iter()
            .map(|column| {
                let cell = cell(preset, row, column, results);
                let measured = cell.measured.unwrap_or_else(|| "-".into());
                match (cell.paper, cell.delta) {
                    (Some(p), Some(d)) => format!("{measured} ({p}, {d:+.2})"),
                    (Some(p), None) => format!("{measured} ({p})"),
                    _ => measured,
                }
            })
            .collect();
        out.push_str(&format!("| {} | {} |\n", row.name, cells.join(" | ")));
    }
    out
}

fn format_parameters(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{:.2}M", n as f64 / 1e6)
    } else {
        format!("{:.1}K", n as f64 / 1e3)
    }
}

/// The measured value of `column` in `row`, beside the paper's.
pub fn cell(
    preset: &TablePreset,
    row: &Row,
    column: &str,
    results: &BTreeMap<(String, String), Results>,
) -> Cell {
    let paper_value = row.paper.get(column);
    let paper = paper_value.map(paper_text);
    let source = preset.cell_of(row, column).and_then(parse_cell);
    let chains_of = row.same_as.as_ref().unwrap_or(&row.name);
    let measured = source.and_then(|(chain, label, shown)| {
        let r = results.get(&(chains_of.clone(), chain.to_string()))?;
        let metric = match shown {
            Shown::Params => {
                let g = r.generations.iter().find(|g| g.label == label)?;
                return Some((format_parameters(g.parameters), None));
            }
            Shown::Metric(m) => m.unwrap_or(r.task.primary()),
        };
        let scores = r
            .generations
            .iter()
            .find(|g| g.label == label)
            .map(|g| &g.metrics)
            .or_else(|| {
                r.ensembles
                    .iter()
                    .find(|e| e.name == label)
                    .map(|e| &e.metrics)
            })?;
        let value = *scores.get(&metric)?;
        Some((metric.format(value), Some(value)))
    });
    let delta = measured
        .as_ref()
        .and_then(|(_, m)| Some((*m)? - paper_value?.as_float()?));
    Cell {
        measured: measured.map(|(m, _)| m),
        paper,
        delta,
    }
}
