//! A table on a real single-node Slurm (`.ci/slurm-up.sh` brings one up; CI runs this with
//! `--ignored`): `banbench slurm --submit` writes one job array per dependency level chained with
//! afterok, a task sent its time-limit signal early saves, requeues itself and resumes within
//! its generation, and the table ends as a sequential `banbench run` writes it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod fixtures;

fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The job ids of `jobs` still queued or running (array tasks as JOB_TASK).
fn queued(jobs: &[String]) -> Vec<(String, String)> {
    let o = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i %T", "-j", &jobs.join(",")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once(' ')?;
            Some((id.to_string(), state.to_string()))
        })
        .collect()
}

#[test]
#[ignore = "needs a running Slurm: .ci/slurm-up.sh"]
fn a_table_on_slurm_with_a_requeued_task_ends_as_a_sequential_run() {
    let banbench = env!("CARGO_BIN_EXE_banbench");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Four epochs on 1,500 images: long enough for a task to be signalled while it trains.
    let table = fixtures::TINY_TABLE
        .replace(
            "train_samples = 400, test_samples = 200",
            "train_samples = 1500, test_samples = 300",
        )
        .replace(
            "epochs = 1, batch_size = 50, lr = 0.05, milestones = []",
            "epochs = 4, batch_size = 50, lr = 0.05, milestones = [3]",
        );
    std::fs::write(d.join("t.toml"), table).unwrap();
    let o = run(banbench, &["run", "t.toml", "--out", "sequential"], d);
    assert!(o.status.success(), "{}", text(&o));

    let o = run(
        banbench,
        &[
            "slurm",
            "t.toml",
            "--out",
            "shared",
            "--cpus-per-task",
            "1",
            "--time",
            "00:20:00",
            "--max-parallel",
            "2",
            "--submit",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let jobs: Vec<String> = text(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("submitted level ")?.split("job ").nth(1))
        .map(str::to_string)
        .collect();
    assert_eq!(jobs.len(), 2, "two dependency levels: {}", text(&o));
    let script = std::fs::read_to_string(d.join("shared/slurm/level-1.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3%2"), "{script}");
    assert!(script.contains("--signal=B:USR1@120"), "{script}");

    // Once a student of level 1 trains, send its task the time-limit signal early. scancel may
    // report "try again later" and still deliver it: the task's log says whether it arrived.
    let started = Instant::now();
    let student = d.join("shared/CNN-4/cwtm");
    let task = format!("{}_1", jobs[1]);
    let level_1_logs = || -> String {
        std::fs::read_dir(d.join("shared/logs"))
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("slurm-level-1-")
            })
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    };
    let mut sent: Option<Instant> = None;
    while !level_1_logs().contains("time limit near; saving CNN-4/cwtm") {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the signal never arrived"
        );
        let training = std::fs::read_to_string(student.join("progress.json"))
            .is_ok_and(|p| p.contains("\"generation\": 1") || p.contains("\"generation\":1"));
        let running = queued(&jobs)
            .iter()
            .any(|(id, state)| id == &task && state == "RUNNING");
        if training && running && sent.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            run("scancel", &["--signal=USR1", "--batch", &task], d);
            sent = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    while !queued(&jobs).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(1200),
            "{:?}",
            queued(&jobs)
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    let logs = level_1_logs();
    assert!(logs.contains("resuming BAN-1 at epoch"), "{logs}");
    let table = |name: &str| std::fs::read_to_string(d.join(name).join("results.md")).unwrap();
    assert_eq!(table("shared"), table("sequential"));
}
