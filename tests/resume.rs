//! A killed run loses at most one epoch: kill -9 in the middle of BAN-1's third epoch, run the
//! same command, and it resumes BAN-1 within the generation, with no epoch recorded twice, no
//! temporary file left, and logits and metrics identical to an uninterrupted run's. Resume
//! checks what it finds: damaged files are rebuilt or retrained, with a note.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use banbench::run_dir::RunDir;
use banbench::run_dir::records::{Results, RunState, Task};

const FIVE_EPOCHS: &str = r#"
name = "five"
seed = 7

[data]
source = "embedded"
train_samples = 2000
test_samples = 300
crop_padding = 2

[teacher]
arch = "cnn"
width = 6

[schedule]
epochs = 5
batch_size = 25
lr = 0.05
milestones = [3]

[generations]
count = 1
control = "dkpp"
"#;

fn banbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

fn run_to_the_end(cwd: &Path, out: &str) -> Output {
    let o = banbench(&["run", "five.toml", "--out", out], cwd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn results(dir: &Path) -> Results {
    RunDir::open(dir).unwrap().results().unwrap().unwrap()
}

/// Every metric of every generation and ensemble (timings left out).
fn scores(r: &Results) -> Vec<String> {
    let g = r
        .generations
        .iter()
        .map(|g| format!("{}{:?}", g.label, g.metrics));
    let e = r
        .ensembles
        .iter()
        .map(|e| format!("{}{:?}", e.name, e.metrics));
    g.chain(e).collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            out.extend(files_under(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// Runs five.toml in `cwd` into `killed`, saving after every batch, and kills it (-9) as soon
/// as BAN-1's resume point reads as `saved` wants.
fn kill_once_saved(cwd: &Path, saved: impl Fn(&str) -> bool) {
    let mut run = Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(["run", "five.toml", "--out", "killed", "--save-every", "0s"])
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let point = cwd.join("killed/checkpoints/gen-1.resume.json");
    let start = Instant::now();
    while !std::fs::read_to_string(&point).is_ok_and(|t| saved(&t)) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "BAN-1 never saved what was waited for"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    run.kill().unwrap();
    run.wait().unwrap();
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("five.toml"), FIVE_EPOCHS).unwrap();
    dir
}

#[test]
fn a_kill_in_the_third_epoch_of_ban_1_resumes_within_it_with_identical_results() {
    let dir = setup();
    run_to_the_end(dir.path(), "whole");

    let mut run = Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(["run", "five.toml", "--out", "killed"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = dir.path().join("killed");
    let start = Instant::now();
    // BAN-1 has finished and saved two epochs: it is in its third.
    let saved = killed.join("checkpoints/gen-1.resume.json");
    while !std::fs::read_to_string(&saved).is_ok_and(|t| t.contains("\"epoch\": 2")) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "BAN-1 never got to epoch 3"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    run.kill().unwrap();
    run.wait().unwrap();

    let o = run_to_the_end(dir.path(), "killed");
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(
        log.contains("resuming BAN-1 at epoch 3") || log.contains("resuming BAN-1 at epoch 4"),
        "{log}"
    );
    assert!(log.contains("resuming: Teacher already done"), "{log}");

    let dir_of = |name: &str| RunDir::open(&dir.path().join(name)).unwrap();
    let (whole, resumed) = (dir_of("whole"), dir_of("killed"));
    for k in 0..2 {
        let a = std::fs::read(whole.outputs_path(Task::Vision, k)).unwrap();
        let b = std::fs::read(resumed.outputs_path(Task::Vision, k)).unwrap();
        assert!(a == b, "generation {k}'s logits differ after the resume");
    }
    assert_eq!(
        scores(&results(&whole.root)),
        scores(&results(&resumed.root))
    );
    let epochs: Vec<(usize, usize)> = resumed
        .metrics()
        .unwrap()
        .iter()
        .map(|r| (r.generation, r.epoch))
        .collect();
    let expected: Vec<(usize, usize)> = (0..2).flat_map(|g| (1..=5).map(move |e| (g, e))).collect();
    assert_eq!(epochs, expected, "every epoch once, in order");
    let left: Vec<PathBuf> = files_under(&resumed.root)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.contains("tmp") || name.contains(".epoch-") || name.contains("resume")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Saving after every batch (`--save-every 0s`), a kill between two batches of BAN-1's third
/// epoch resumes at that batch: the epoch's batches, random draws and sums so far continue as
/// if never interrupted.
#[test]
fn a_kill_between_two_batches_resumes_at_that_batch_with_identical_results() {
    let dir = setup();
    run_to_the_end(dir.path(), "whole");

    let within_third = |t: &str| t.contains("\"epoch\": 2") && t.contains("\"within\"");
    kill_once_saved(dir.path(), within_third);

    let o = run_to_the_end(dir.path(), "killed");
    let log = String::from_utf8_lossy(&o.stdout);
    let resumed_at = log
        .lines()
        .find(|l| l.contains("resuming BAN-1 at epoch 3 (2 of 5 epochs saved, and "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(resumed_at.ends_with(" of its 80 batches)"), "{resumed_at}");

    let dir_of = |name: &str| RunDir::open(&dir.path().join(name)).unwrap();
    let (whole, resumed) = (dir_of("whole"), dir_of("killed"));
    for k in 0..2 {
        let a = std::fs::read(whole.outputs_path(Task::Vision, k)).unwrap();
        let b = std::fs::read(resumed.outputs_path(Task::Vision, k)).unwrap();
        assert!(a == b, "generation {k}'s logits differ after the resume");
    }
    assert_eq!(
        scores(&results(&whole.root)),
        scores(&results(&resumed.root))
    );
    // The resumed epoch's training loss comes from sums saved across the kill.
    let losses = |d: &RunDir| -> Vec<(usize, usize, String)> {
        d.metrics()
            .unwrap()
            .iter()
            .map(|r| (r.generation, r.epoch, format!("{:.9}", r.train_loss)))
            .collect()
    };
    assert_eq!(losses(&whole), losses(&resumed));
    let left: Vec<PathBuf> = files_under(&resumed.root)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.contains("tmp") || name.contains(".epoch-") || name.contains("resume")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn damaged_files_are_rebuilt_or_retrained_with_a_note() {
    let dir = setup();
    let one_epoch = FIVE_EPOCHS
        .replace("epochs = 5", "epochs = 1")
        .replace("milestones = [3]", "");
    std::fs::write(dir.path().join("five.toml"), &one_epoch).unwrap();
    run_to_the_end(dir.path(), "run");
    let run = RunDir::open(&dir.path().join("run")).unwrap();
    let intact = results(&run.root);

    // A truncated teacher logits file: the teacher is trained again (same seed, same numbers).
    let logits = run.outputs_path(Task::Vision, 0);
    let bytes = std::fs::read(&logits).unwrap();
    std::fs::write(&logits, &bytes[..bytes.len() / 2]).unwrap();
    let o = run_to_the_end(dir.path(), "run");
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(
        log.contains("Teacher and the generations after it are trained again"),
        "{log}"
    );
    assert_eq!(scores(&results(&run.root)), scores(&intact));

    // A corrupt results.json and a bad metrics line: rebuilt from what is intact, not retrained.
    std::fs::write(run.results_path(), "{ not json").unwrap();
    let metrics = run.root.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push_str("{\"generation\": \n");
    std::fs::write(&metrics, text).unwrap();
    let o = run_to_the_end(dir.path(), "run");
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(log.contains("rebuilding results.json"), "{log}");
    assert!(log.contains("do not parse and are dropped"), "{log}");
    assert!(
        log.contains("resuming: Teacher, BAN-1 already done"),
        "{log}"
    );
    let rebuilt = results(&run.root);
    assert_eq!(rebuilt.state, RunState::Finished);
    assert_eq!(scores(&rebuilt), scores(&intact));

    // A corrupt spec.toml says so, and which directory to delete.
    std::fs::write(run.spec_path(), "name = ").unwrap();
    let o = banbench(&["run", "five.toml", "--out", "run"], dir.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("spec.toml is corrupt") && err.contains("delete"),
        "{err}"
    );
}

#[test]
fn a_directory_left_by_a_crash_before_its_spec_is_resumable() {
    let dir = setup();
    let one_epoch = FIVE_EPOCHS
        .replace("epochs = 5", "epochs = 1")
        .replace("milestones = [3]", "");
    std::fs::write(dir.path().join("five.toml"), one_epoch).unwrap();
    let out = dir.path().join("crashed");
    std::fs::create_dir_all(out.join("checkpoints")).unwrap();
    std::fs::write(out.join("lock"), "{ half a lock").unwrap();
    std::fs::write(out.join(".spec.toml.tmp999"), "name =").unwrap();
    // The half-written lock is older than a minute: its writer is gone.
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(out.join("lock"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    run_to_the_end(dir.path(), "crashed");
    assert_eq!(results(&out).state, RunState::Finished);
    assert!(
        !out.join(".spec.toml.tmp999").exists(),
        "stale temporaries are removed"
    );
}

/// A FitNets student killed in its hint stage, and again once its KD stage has begun (its
/// regressor dropped, a new optimizer), resumes each time into the right shape of model and
/// ends with the logits and metrics of an uninterrupted run.
#[test]
fn a_two_stage_student_killed_in_either_stage_resumes_with_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let text = FIVE_EPOCHS
        .replace("train_samples = 2000", "train_samples = 600")
        .replace("epochs = 5", "epochs = 2")
        .replace("milestones = [3]", "milestones = []")
        .replace("width = 6", "width = 4")
        .replace(
            "control = \"dkpp\"",
            "control = \"fitnets\"\nfitnets = { epochs = 2, lr = 0.0005 }",
        );
    std::fs::write(dir.path().join("five.toml"), text).unwrap();
    run_to_the_end(dir.path(), "whole");
    // Epoch 1 is in the hint stage; epoch 2 is saved once the KD stage has begun.
    for epoch in ["\"epoch\": 1", "\"epoch\": 2"] {
        kill_once_saved(dir.path(), |t| t.contains(epoch));
    }
    let o = run_to_the_end(dir.path(), "killed");
    // It resumed in the KD stage from the save, not from scratch.
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(
        log.contains("resuming BAN-1 at epoch 3") && !log.contains("starts over"),
        "{log}"
    );
    let dir_of = |name: &str| RunDir::open(&dir.path().join(name)).unwrap();
    let (whole, resumed) = (dir_of("whole"), dir_of("killed"));
    let a = std::fs::read(whole.outputs_path(Task::Vision, 1)).unwrap();
    let b = std::fs::read(resumed.outputs_path(Task::Vision, 1)).unwrap();
    assert!(a == b, "BAN-1's logits differ after the resumes");
    assert_eq!(
        scores(&results(&whole.root)),
        scores(&results(&resumed.root))
    );
    let stages: Vec<Option<usize>> = resumed
        .metrics()
        .unwrap()
        .iter()
        .filter(|r| r.generation == 1)
        .map(|r| r.stage.as_ref().map(|s| s.number))
        .collect();
    assert_eq!(stages, [Some(1), Some(1), Some(2), Some(2)]);
}
