//! A run directory has one owner: a second `banbench run` on a live directory is refused with
//! exit 2 naming the owner; after the owner is killed with -9, a new run takes the stale lock
//! over and resumes; two runs started in the same second get directories of their own.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use banbench::run_dir::RunDir;
use banbench::run_dir::records::RunState;

/// Long enough per generation (a few seconds) to act while it trains.
const SLOW: &str = r#"
name = "slow"
seed = 5

[data]
source = "embedded"
train_samples = 2000
test_samples = 200

[teacher]
arch = "cnn"
width = 8

[schedule]
epochs = 3
batch_size = 25
lr = 0.05

[generations]
count = 1
control = "ban"
"#;

fn banbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_banbench"))
}

fn output(args: &[&str], cwd: &Path) -> Output {
    banbench()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

fn spawn(args: &[&str], cwd: &Path) -> Child {
    banbench()
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts")
}

/// Waits until `ready` holds, for at most `timeout`.
fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_live_run_directory_is_refused_and_a_killed_owner_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow.toml"), SLOW).unwrap();
    let out = dir.path().join("run");
    let args = ["run", "slow.toml", "--out", "run"];
    let mut owner = spawn(&args, dir.path());
    wait_until("the owner's lock", Duration::from_secs(30), || {
        out.join("lock").exists() && out.join("metrics.jsonl").exists()
    });

    let second = output(&args, dir.path());
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains("in use by") && err.contains(&format!("pid {}", owner.id())),
        "{err}"
    );

    // kill -9: the lock stays behind, its owner gone.
    owner.kill().unwrap();
    owner.wait().unwrap();
    assert!(out.join("lock").exists());
    let resumed = output(&args, dir.path());
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("took over the lock"), "{err}");
    let results = RunDir::open(&out).unwrap().results().unwrap().unwrap();
    assert_eq!(results.state, RunState::Finished);
    assert_eq!(results.generations.len(), 2);
    // A run that ended released its directory.
    assert!(!out.join("lock").exists());
}

#[test]
fn runs_started_in_the_same_second_get_their_own_directories() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = SLOW
        .replace("train_samples = 2000", "train_samples = 100")
        .replace("epochs = 3", "epochs = 1");
    std::fs::write(dir.path().join("tiny.toml"), tiny).unwrap();
    let runs: Vec<Child> = (0..3)
        .map(|_| spawn(&["run", "tiny.toml"], dir.path()))
        .collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success());
    }
    let dirs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    for d in dirs {
        let results = RunDir::open(&d.path()).unwrap().results().unwrap().unwrap();
        assert_eq!(results.state, RunState::Finished, "{}", d.path().display());
    }
}
