//! Runs outlive the terminal: a run started from Setup goes on when its tmux server is killed
//! (as an SSH drop does) and finishes with the numbers a headless run gets; `banbench tui
//! RUN_DIR` in a new session shows it, and pause and cancel from an attached session reach a
//! run that another process owns. Needs tmux.

mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use banbench::run_dir::RunDir;
use banbench::run_dir::records::{Metric, Results, RunState};
use tmux::Tmux;

/// presets/quick.toml's chain (teacher and two BAN generations of the CNN on the embedded
/// data), shrunk to seconds per generation.
const SHRUNK_QUICK: &str = r#"
name = "shrunk"
seed = 1

[data]
source = "embedded"
train_samples = 1500
test_samples = 300

[teacher]
arch = "cnn"
width = 8

[schedule]
epochs = 3
batch_size = 50
lr = 0.05
milestones = [2]

[generations]
count = 2
control = "ban"
"#;

fn results(dir: &Path) -> Option<Results> {
    RunDir::open(dir).ok()?.results().ok()?
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn the_one_run(dir: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn a_run_started_from_setup_survives_the_terminal_and_reopens_with_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("presets")).unwrap();
    std::fs::write(dir.path().join("presets/shrunk.toml"), SHRUNK_QUICK).unwrap();
    let exe = env!("CARGO_BIN_EXE_banbench");

    let tmux = Tmux::start(dir.path(), exe);
    tmux.wait_for("Ready: Enter starts.", Duration::from_secs(20));
    tmux.keys(&["Enter"]);
    tmux.wait_for("BAN-1 (2/3)", Duration::from_secs(120));
    tmux.kill_server();
    assert!(!tmux.alive());

    let run = the_one_run(dir.path());
    let during = results(&run).expect("the teacher is saved");
    assert_eq!(during.generations.len(), 1, "killed while BAN-1 trains");
    wait_until(
        "the detached run to finish",
        Duration::from_secs(300),
        || results(&run).is_some_and(|r| r.state == RunState::Finished),
    );
    let detached = results(&run).unwrap();
    assert!(
        !run.join("lock").exists(),
        "a finished run releases its lock"
    );

    let headless = dir.path().join("headless");
    let o = Command::new(exe)
        .args(["run", "presets/shrunk.toml", "--out"])
        .arg(&headless)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let headless = results(&headless).unwrap();
    let scores = |r: &Results| {
        let generations = r.generations.iter().map(|g| g.metrics.clone());
        let ensembles = r.ensembles.iter().map(|e| e.metrics.clone());
        generations.chain(ensembles).collect::<Vec<_>>()
    };
    assert_eq!(scores(&detached), scores(&headless));

    // A new session attaches to the finished run and shows those numbers.
    let again = Tmux::start(dir.path(), &format!("{exe} tui {}", run.display()));
    again.wait_for("shrunk finished", Duration::from_secs(20));
    again.keys(&["3"]);
    let ban2 = format!("{:.2}", detached.generations[2].metrics[&Metric::Top1Error]);
    let screen = again.wait_for(&ban2, Duration::from_secs(10));
    assert!(screen.contains("BAN-2"), "{screen}");
}

#[test]
fn pause_and_cancel_from_an_attached_session_reach_the_run_process() {
    let dir = tempfile::tempdir().unwrap();
    let slow = SHRUNK_QUICK
        .replace("name = \"shrunk\"", "name = \"slow\"")
        .replace("train_samples = 1500", "train_samples = 5000")
        .replace("epochs = 3", "epochs = 20")
        .replace("milestones = [2]", "milestones = [10]");
    std::fs::write(dir.path().join("slow.toml"), slow).unwrap();
    let exe = env!("CARGO_BIN_EXE_banbench");
    let mut owner = Command::new(exe)
        .args(["run", "slow.toml", "--out", "run"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run = dir.path().join("run");
    wait_until("the run's progress", Duration::from_secs(60), || {
        run.join("progress.json").exists()
    });
    let progress_paused = || {
        std::fs::read_to_string(run.join("progress.json"))
            .is_ok_and(|t| t.contains("\"paused\": true"))
    };

    let tmux = Tmux::start(dir.path(), &format!("{exe} tui run"));
    tmux.wait_for("slow running", Duration::from_secs(20));
    tmux.keys(&["p"]);
    tmux.wait_for("slow paused", Duration::from_secs(10));
    wait_until("the run to pause", Duration::from_secs(10), progress_paused);
    tmux.keys(&["p"]);
    wait_until("the run to go on", Duration::from_secs(10), || {
        !progress_paused()
    });
    tmux.wait_for("slow running", Duration::from_secs(10));

    tmux.keys(&["c"]);
    tmux.wait_for("Cancel", Duration::from_secs(5));
    tmux.keys(&["y"]);
    tmux.wait_for("slow stopped", Duration::from_secs(30));
    let status = owner.wait().unwrap();
    assert_eq!(status.code(), Some(130), "a stopped run exits with 130");
    assert_eq!(results(&run).unwrap().state, RunState::Stopped);
}
