//! A study: a chain or table preset trained once per seed (by `headless::run_study`). Seed s is
//! an ordinary run (or table) directory OUT/seed-S, resumable, watchable and reportable on its
//! own, training exactly what `banbench run --seed S` trains; OUT/study.json says what the study
//! is, and OUT/results.json and results.md hold the statistics across seeds, rewritten after
//! every seed. Plain data: followers (the TUI, `report`) read studies without burn.

mod render;
pub mod results;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use render::render;
pub use results::{StudyResults, collect};

use crate::experiment::Preset;
use crate::run_dir::records::Task;
use crate::run_dir::write_atomic;
use crate::table;

/// What a study directory holds, as study.json records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyPlan {
    pub name: String,
    pub task: Task,
    pub seeds: Vec<u64>,
    /// The run directories of one seed, relative to its directory: "" for a chain, ROW/CHAIN
    /// for a table's.
    pub places: Vec<String>,
}

impl StudyPlan {
    pub fn of(preset: &Preset, seeds: Vec<u64>) -> StudyPlan {
        let (name, places) = match preset {
            Preset::Chain(e) => (e.name().to_string(), vec![String::new()]),
            Preset::Table(t) => {
                let places = t
                    .chains
                    .iter()
                    .map(|c| {
                        let dir = table::chain_dir(Path::new(""), c);
                        dir.to_string_lossy().into_owned()
                    })
                    .collect();
                (t.name(), places)
            }
        };
        StudyPlan {
            name,
            task: preset.experiments()[0].1.task(),
            seeds,
            places,
        }
    }

    pub fn path(out: &Path) -> PathBuf {
        out.join("study.json")
    }

    /// The study of directory `out`, if it is one.
    pub fn read(out: &Path) -> Result<Option<StudyPlan>> {
        let path = StudyPlan::path(out);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{}: not a banbench study file", path.display()))
    }
}

/// Seed `seed`'s directory in study `out`.
pub fn seed_dir(out: &Path, seed: u64) -> PathBuf {
    out.join(format!("seed-{seed}"))
}

/// results.json and results.md of the study, from what its seeds have finished.
pub fn write_results(out: &Path, plan: &StudyPlan) -> Result<StudyResults> {
    let study = collect(out, plan, "Teacher", None)?;
    write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&study)?.as_bytes(),
    )?;
    write_atomic(&out.join("results.md"), render(&study).as_bytes())?;
    Ok(study)
}
