//! Table 6 presets: language-model rows (a teacher and its BAN+L student each) filling the
//! paper's columns of validation and test perplexity. The layout follows the vision table
//! presets (`[table]`, `[base]`, `[profiles.NAME]`, `[[row]]`) with a `[corpus]` in the base; a
//! row may change its spec per profile (`[row.profile.smoke]`), since the smoke profile shrinks
//! an LSTM and a CNN-LSTM differently. Each row is an ordinary run directory under `OUT/ROW`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::spec::{LmSpec, PaperPerplexity};
use super::train;
use crate::device::DeviceChoice;
use crate::events::{LanguageResults, RunState};
use crate::run_dir::{RunDir, write_atomic};
use crate::spec::Overrides;
use crate::table::{TableHeader, merge, pick_profile};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmTablePreset {
    /// Its cells read "LABEL:valid", "LABEL:test" or "LABEL:params" (LABEL: Teacher, BAN-1, ...).
    pub table: TableHeader,
    pub base: toml::Table,
    pub profiles: BTreeMap<String, Profile>,
    #[serde(rename = "row")]
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub set: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub name: String,
    #[serde(default)]
    pub set: toml::Table,
    /// Profile name -> spec fields this row changes under that profile.
    #[serde(default)]
    pub profile: BTreeMap<String, toml::Table>,
    /// The paper's perplexities, or text for a parameter column.
    #[serde(default)]
    pub paper: BTreeMap<String, toml::Value>,
}

/// One row, resolved to a spec.
#[derive(Debug, Clone)]
pub struct LmRow {
    pub name: String,
    pub spec: LmSpec,
}

/// (label, what) of a cell: what is "valid", "test" or "params".
fn cell(spec: &str) -> Option<(&str, &str)> {
    spec.split_once(':')
        .filter(|(_, w)| ["valid", "test", "params"].contains(w))
}

impl LmTablePreset {
    pub fn load(path: &Path) -> Result<LmTablePreset> {
        Ok(crate::spec::read_toml(path)?)
    }

    pub fn profile_names(&self) -> Vec<String> {
        self.profiles.keys().cloned().collect()
    }

    /// Every row's spec under `profile`, validated; errors name the row and field.
    pub fn rows(&self, file: &Path, profile: &str, overrides: &Overrides) -> Result<Vec<LmRow>> {
        let p = pick_profile(&self.profiles, file, profile)?;
        for (column, spec) in &self.table.cells {
            if !self.table.columns.contains(column) || cell(spec).is_none() {
                bail!(
                    "{}: cells.{column} = \"{spec}\": expected a column of table.columns and LABEL:valid, LABEL:test or LABEL:params",
                    file.display()
                );
            }
        }
        let mut out = Vec::new();
        for row in &self.rows {
            // A profile's changes apply to every row (a smoke profile's epochs and batch size
            // override each row's), and a row's own changes for the profile come last.
            let mut table = self.base.clone();
            merge(&mut table, &row.set);
            merge(&mut table, &p.set);
            if let Some(changes) = row.profile.get(profile) {
                merge(&mut table, changes);
            }
            table.insert(
                "name".into(),
                format!("{}-{}", self.table.name, row.name).into(),
            );
            let mut paper: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
            for (column, value) in &row.paper {
                if let (Some((label, what)), Some(v)) = (
                    self.table.cells.get(column).and_then(|c| cell(c)),
                    value.as_float(),
                ) {
                    let entry = paper.entry(label.to_string()).or_default();
                    match what {
                        "valid" => entry.0 = Some(v),
                        "test" => entry.1 = Some(v),
                        _ => {}
                    }
                }
            }
            let text = toml::to_string(&table).context("a merged table serialises")?;
            let place = PathBuf::from(format!("{} (row `{}`)", file.display(), row.name));
            let mut spec = LmSpec::parse(&text, &place, overrides).map_err(|mut e| {
                e.line = None; // lines of the merged text mean nothing to the reader
                e
            })?;
            spec.paper = paper
                .into_iter()
                .filter_map(|(label, (valid, test))| {
                    Some((
                        label,
                        PaperPerplexity {
                            valid: valid?,
                            test: test?,
                        },
                    ))
                })
                .collect();
            out.push(LmRow {
                name: row.name.clone(),
                spec,
            });
        }
        Ok(out)
    }

    /// The table as markdown: each cell measured, with the paper's number beside it.
    pub fn render(
        &self,
        rows: &[LmRow],
        results: &[Option<LanguageResults>],
        profile: &str,
    ) -> String {
        let mut out = format!("# {}\n\nProfile `{profile}`.", self.table.title);
        if let Some(p) = self
            .profiles
            .get(profile)
            .filter(|p| !p.description.is_empty())
        {
            out.push_str(&format!(" {}", p.description));
        }
        out.push_str("\nEach cell: measured (paper). Perplexities of the best-validation checkpoints.\n\n| Network |");
        for c in &self.table.columns {
            out.push_str(&format!(" {c} |"));
        }
        out.push_str(&format!(
            "\n|---|{}\n",
            "---|".repeat(self.table.columns.len())
        ));
        for (row, results) in rows.iter().zip(results) {
            let preset_row = self
                .rows
                .iter()
                .find(|r| r.name == row.name)
                .expect("rows come from the preset");
            out.push_str(&format!("| {} |", row.name));
            for column in &self.table.columns {
                let measured =
                    self.table
                        .cells
                        .get(column)
                        .and_then(|c| cell(c))
                        .and_then(|(label, what)| {
                            if what == "params" {
                                let n = row_params(&row.spec)?;
                                return Some(if n >= 1_000_000 {
                                    format!("{:.1}M", n as f64 / 1e6)
                                } else {
                                    n.to_string()
                                });
                            }
                            let g = results
                                .as_ref()?
                                .generations
                                .iter()
                                .find(|g| g.label == label)?;
                            Some(format!(
                                "{:.2}",
                                if what == "valid" {
                                    g.validation_perplexity
                                } else {
                                    g.test_perplexity
                                }
                            ))
                        });
                let paper = preset_row
                    .paper
                    .get(column)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
                out.push_str(&format!(
                    " {} ({}) |",
                    measured.unwrap_or_else(|| "-".into()),
                    paper.unwrap_or_else(|| "-".into())
                ));
            }
            out.push('\n');
        }
        out
    }
}

/// A row's parameter count needs its corpus's vocabulary.
fn row_params(spec: &LmSpec) -> Option<usize> {
    let corpus = train::load_corpus(spec).ok()?;
    Some(train::parameter_count(spec, &corpus))
}

/// Runs every row into `out/ROW` (resuming finished ones), writes `out/results.md` (as the vision tables do), and returns
/// the rendered table and whether every row finished.
pub fn run(
    preset: &LmTablePreset,
    rows: &[LmRow],
    profile: &str,
    device: DeviceChoice,
    out: &Path,
) -> Result<(String, bool)> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut all = Vec::new();
    let mut finished = true;
    for row in rows {
        println!("\n### row `{}`", row.name);
        let corpus = train::load_corpus(&row.spec)?;
        let run_dir = RunDir::create_language(&out.join(&row.name), &row.spec)?;
        let results = super::headless::run(&row.spec, corpus, device, &run_dir)?;
        let done = results.state == RunState::Finished;
        all.push(Some(results));
        if !done {
            finished = false;
            break;
        }
    }
    all.resize(rows.len(), None);
    let rendered = preset.render(rows, &all, profile);
    let path = out.join("results.md");
    write_atomic(&path, rendered.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((rendered, finished))
}
