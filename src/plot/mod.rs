//! `banbench plot`: SVG figures of what a run, a study or a table directory holds, for reading
//! at a glance and for a paper draft. Plain data to pictures: the directory is only read, and the
//! figures go into a folder of their own (DIR/figures by default).
//!
//! - a run directory (spec.toml): training curves and the gradient split per epoch (`run`);
//! - a study directory (study.json): per-seed values, means and intervals, differences from the
//!   teacher (`study`), and each seed's run figures in FIGDIR/seed-S/;
//! - a table directory (results.md, ROW/CHAIN/ run directories): each chain's run figures in
//!   FIGDIR/ROW/CHAIN/.
//!
//! SVG only: the SVG backend writes text as text, so no font files are needed, whereas PNG would
//! pull in an image encoder and a font rasteriser.

mod figure;
mod layout;
mod run;
mod study;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::run_dir::write_atomic;
use crate::study::StudyPlan;

/// Writes the figures of `dir` into `out` (default `dir/figures`), calling `say` with each file
/// written and with what has nothing to plot yet. A directory that is none of the three kinds is
/// an error naming it and what was expected.
pub fn plot(dir: &Path, out: Option<&Path>, say: &mut dyn FnMut(&str)) -> Result<()> {
    let figures = out.map_or_else(|| dir.join("figures"), Path::to_path_buf);
    if dir.join("spec.toml").is_file() {
        return run::plot_run(dir, &figures, say);
    }
    if let Some(plan) = StudyPlan::read(dir)? {
        return study::plot_study(dir, &plan, &figures, say);
    }
    let expected = "a run directory (spec.toml), a study directory (study.json) or a table \
                    directory (results.md and ROW/CHAIN/ run directories), as `banbench run` \
                    writes them";
    if !dir.is_dir() {
        bail!("{}: no such directory; expected {expected}", dir.display());
    }
    // A table's results.md tells it from any folder that happens to hold run directories two
    // levels down; it is written once the first chain has finished or stopped.
    let chains = if dir.join("results.md").is_file() {
        table_chains(dir)?
    } else {
        Vec::new()
    };
    if chains.is_empty() {
        bail!("{}: not {expected}", dir.display());
    }
    for place in chains {
        run::plot_run(&dir.join(&place), &figures.join(&place), say)?;
    }
    Ok(())
}

/// The ROW/CHAIN run directories of a table directory, in order.
fn table_chains(dir: &Path) -> Result<Vec<PathBuf>> {
    let subdirectories = |d: &Path| -> Result<Vec<PathBuf>> {
        let entries = std::fs::read_dir(d).with_context(|| format!("{}", d.display()))?;
        Ok(entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect())
    };
    let mut chains = Vec::new();
    for row in subdirectories(dir)? {
        for chain in subdirectories(&row)? {
            if chain.join("spec.toml").is_file() {
                chains.push(chain.strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    chains.sort();
    Ok(chains)
}

/// Writes one figure as `figures/file` and says so.
fn write(figures: &Path, file: &str, svg: &str, say: &mut dyn FnMut(&str)) -> Result<()> {
    std::fs::create_dir_all(figures).with_context(|| format!("creating {}", figures.display()))?;
    let path = figures.join(file);
    write_atomic(&path, svg.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    say(&path.display().to_string());
    Ok(())
}
