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

/// Seconds a task gives its run to save after the signal before requeueing regardless: three
/// quarters of the warning, leaving the rest for the requeue itself.
fn save_grace(signal_seconds: u32) -> u32 {
    (signal_seconds * 3 / 4).max(1)
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
    let grace = save_grace(options.signal_seconds);
    let _ = write!(
        s,
        "# Before the time limit: the run saves at the next batch and stops (SIGTERM), and the\n\
         # task goes back in the queue to resume where it stopped. A save that outlasts {grace} s\n\
         # is requeued anyway, since at the limit Slurm would end the task TIMEOUT for good: it\n\
         # then resumes from its last save (`--save-every`).\n\
         task=\"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\"\n\
         on_time_limit() {{\n\
         \x20   echo \"banbench: time limit near; saving $unit and requeueing\"\n\
         \x20   kill -TERM \"$child\"\n\
         \x20   ( sleep {grace}; echo \"banbench: the save outlasted {grace} s; requeueing from the last save\"; scontrol requeue \"$task\" ) &\n\
         \x20   watchdog=$!\n\
         \x20   wait \"$child\"\n\
         \x20   kill \"$watchdog\" 2>/dev/null\n\
         \x20   scontrol requeue \"$task\"\n\
         \x20   exit 0\n\
         }}\n\
         trap on_time_limit USR1\n"
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
    use crate::experiment::Experiment;

    /// Runs a level's script under bash as Slurm would start array task 0, with `run` standing
    /// in for banbench and a `scontrol` that records its arguments; sends USR1 once the stand-in
    /// runs. Returns the script's output and what scontrol was asked.
    fn time_limit_reached(run: &str, signal_seconds: u32) -> (String, String) {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fake = d.join("bin");
        std::fs::create_dir(&fake).unwrap();
        let asked = d.join("scontrol.args");
        let scontrol = fake.join("scontrol");
        std::fs::write(
            &scontrol,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", asked.display()),
        )
        .unwrap();
        std::fs::set_permissions(
            &scontrol,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let unit = Unit {
            id: "ROW/main".into(),
            dir: "ROW/main".into(),
            experiment: Experiment::parse(
                include_str!("../presets/quick.toml"),
                Path::new("quick.toml"),
                &Default::default(),
            )
            .unwrap(),
            teacher_only: false,
            adopts: None,
            depends: vec![],
            cost: None,
        };
        let started = d.join("started");
        let command: Vec<String> = [
            "sh",
            "-c",
            &format!("touch {}; {run}", started.display()),
            "stand-in",
        ]
        .map(String::from)
        .to_vec();
        let options = SlurmOptions {
            signal_seconds,
            ..Default::default()
        };
        let script = d.join("level-0.sbatch");
        std::fs::write(
            &script,
            super::script("t", 0, &[&unit], &command, d, &options),
        )
        .unwrap();
        let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
        let bash = Command::new("bash")
            .arg(&script)
            .process_group(0)
            .env("PATH", path)
            .env("SLURM_ARRAY_JOB_ID", "7")
            .env("SLURM_ARRAY_TASK_ID", "0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !started.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(bash.id() as libc::pid_t, libc::SIGUSR1) };
        while !asked.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The real requeue ends the task (every process of it); here the test does.
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on the process group our child leads.
        unsafe { libc::kill(-(bash.id() as libc::pid_t), libc::SIGKILL) };
        let output = bash.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            std::fs::read_to_string(&asked).unwrap_or_default(),
        )
    }

    #[test]
    fn a_task_near_its_time_limit_stops_its_run_then_requeues_itself() {
        // The stand-in stops at SIGTERM as banbench does once it has saved.
        let (out, asked) = time_limit_reached("sleep 30", 40);
        assert!(out.contains("time limit near; saving ROW/main"), "{out}");
        assert!(!out.contains("outlasted"), "{out}");
        assert_eq!(asked, "requeue 7_0\n");
    }

    #[test]
    fn a_save_that_outlasts_the_warning_is_requeued_anyway() {
        // A stand-in that ignores SIGTERM: its save never ends.
        let (out, asked) = time_limit_reached("trap '' TERM; sleep 30", 2);
        assert!(out.contains("the save outlasted 1 s"), "{out}");
        assert_eq!(asked, "requeue 7_0\n");
    }

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quoted("a b"), "'a b'");
        assert_eq!(quoted("it's"), r"'it'\''s'");
    }
}
