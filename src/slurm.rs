//! `banbench slurm`: a table or study as Slurm job arrays on a shared directory, one array per
//! dependency level, each chained to the one before with `afterok`. Every array task runs one
//! unit (`banbench run PRESET --unit ID --out SHARED`); before its time limit Slurm sends it
//! USR1, the run saves at the next batch boundary and stops, and the task requeues itself to
//! resume there. Locks, heartbeats and atomic writes in the run directories make the shared
//! directory safe on NFS.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::units::Unit;

/// What the job scripts ask of Slurm.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub cpus_per_task: Option<u32>,
    /// HH:MM:SS (or anything `sbatch --time` takes).
    pub time: Option<String>,
    /// Array tasks of one level running at once.
    pub max_parallel: Option<usize>,
    /// Seconds before the time limit at which a task saves and requeues itself.
    pub signal_seconds: u32,
}

/// The units by dependency level: level 0 waits for nothing, level L for units of levels
/// below it only.
pub fn levels(units: &[Unit]) -> Vec<Vec<&Unit>> {
    let mut level_of: Vec<usize> = Vec::with_capacity(units.len());
    // `units` lists every unit after what it waits for.
    for unit in units {
        let level = unit
            .depends
            .iter()
            .filter_map(|d| units.iter().position(|u| &u.id == d))
            .map(|i| level_of.get(i).map_or(0, |l| l + 1))
            .max()
            .unwrap_or(0);
        level_of.push(level);
    }
    let count = level_of.iter().max().map_or(0, |l| l + 1);
    let mut out: Vec<Vec<&Unit>> = vec![Vec::new(); count];
    for (unit, level) in units.iter().zip(level_of) {
        out[level].push(unit);
    }
    out
}

/// `text` quoted for a POSIX shell.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The sbatch script of one level: one array task per unit.
pub fn script(
    name: &str,
    level: usize,
    units: &[&Unit],
    command: &[String],
    out: &Path,
    options: &SlurmOptions,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name=banbench-{name}-level-{level}");
    let parallel = options
        .max_parallel
        .map_or(String::new(), |k| format!("%{k}"));
    let _ = writeln!(s, "#SBATCH --array=0-{}{parallel}", units.len() - 1);
    let log = out
        .join("logs")
        .join(format!("slurm-level-{level}-%A_%a.log"));
    let _ = writeln!(s, "#SBATCH --output={}", log.display());
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    let _ = writeln!(s, "#SBATCH --signal=B:USR1@{}", options.signal_seconds);
    let _ = writeln!(s, "#SBATCH --requeue");
    if let Some(p) = &options.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(g) = options.gpus_per_task {
        let _ = writeln!(s, "#SBATCH --gpus-per-task={g}");
    }
    if let Some(c) = options.cpus_per_task {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={c}");
    }
    if let Some(t) = &options.time {
        let _ = writeln!(s, "#SBATCH --time={t}");
    }
    let _ = writeln!(
        s,
        "\n# Dependency level {level}: one unit per array task (`banbench plan` lists them)."
    );
    let ids: Vec<String> = units.iter().map(|u| quoted(&u.id)).collect();
    let _ = writeln!(s, "units=({})", ids.join(" "));
    s.push_str("unit=${units[$SLURM_ARRAY_TASK_ID]}\n");
    let command: Vec<String> = command.iter().map(|a| quoted(a)).collect();
    // The trap comes first: a signal before it would kill the shell and orphan the run.
    s.push_str(
        "# Before the time limit: the run saves at the next batch and stops (SIGTERM), and the\n\
         # task goes back in the queue to resume where it stopped.\n\
         trap 'echo \"banbench: time limit near; saving $unit and requeueing\"; kill -TERM \"$child\"; wait \"$child\"; \
         scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"; exit 0' USR1\n",
    );
    let _ = writeln!(s, "{} --unit \"$unit\" &", command.join(" "));
    s.push_str("child=$!\nwait \"$child\"\n");
    s
}

/// Writes every level's script into OUT/slurm/, and submit.sh that submits them chained with
/// `afterok`; returns the scripts' paths in level order.
pub fn write_scripts(
    name: &str,
    units: &[Unit],
    command: &[String],
    out: &Path,
    options: &SlurmOptions,
) -> Result<Vec<PathBuf>> {
    crate::units::write_manifest(out, units)?;
    let dir = out.join("slurm");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::create_dir_all(out.join("logs"))?;
    let mut paths = Vec::new();
    let mut submit = String::from(
        "#!/bin/bash\n# Submits the levels in order, each after the one before succeeded.\nset -euo pipefail\nprevious=\n",
    );
    for (level, level_units) in levels(units).iter().enumerate() {
        let path = dir.join(format!("level-{level}.sbatch"));
        let text = script(name, level, level_units, command, out, options);
        crate::run_dir::write_atomic(&path, text.as_bytes())?;
        let _ = writeln!(
            submit,
            "previous=$(sbatch --parsable ${{previous:+--dependency=afterok:$previous}} {} | cut -d';' -f1)\necho \"level {level}: job $previous\"",
            quoted(&path.display().to_string())
        );
        paths.push(path);
    }
    crate::run_dir::write_atomic(&dir.join("submit.sh"), submit.as_bytes())?;
    Ok(paths)
}

/// Submits the scripts with sbatch, each level after the one before; returns the job ids.
pub fn submit(scripts: &[PathBuf]) -> Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for script in scripts {
        let mut sbatch = std::process::Command::new("sbatch");
        sbatch.arg("--parsable");
        if let Some(previous) = ids.last() {
            sbatch.arg(format!("--dependency=afterok:{previous}"));
        }
        let output = sbatch
            .arg(script)
            .output()
            .context("running sbatch (is Slurm's client installed here?)")?;
        if !output.status.success() {
            bail!(
                "sbatch {}: {}",
                script.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let id = text.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() {
            bail!("sbatch {}: no job id in its answer", script.display());
        }
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quoted("a b"), "'a b'");
        assert_eq!(quoted("it's"), r"'it'\''s'");
    }
}
