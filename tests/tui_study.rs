//! End to end: the Study screen of the real binary in a tmux session. A tiny study (three seeds
//! of a teacher and two born-again generations) is trained headless, then `banbench tui DIR`
//! shows its rows by seed with the paired p-values, the reference row and the metric change
//! with their keys, and the Runs screen lists the study and opens it; a study still training is
//! followed until its last seed finishes. Needs tmux.

mod tmux;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tmux::Tmux;

mod fixtures;

use fixtures::TINY_STUDY;

const EXE: &str = env!("CARGO_BIN_EXE_banbench");

/// A `banbench run` of the study this test started; a failing test stops it.
struct Study(Child);

impl Drop for Study {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The study's preset in `dir`, and `banbench run` of it into `dir`/`out`, not yet waited for.
fn start_study(dir: &Path, out: &str) -> Study {
    std::fs::write(dir.join("tiny-study.toml"), TINY_STUDY).unwrap();
    let child = Command::new(EXE)
        .args(["run", "tiny-study.toml", "--out", out])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Study(child)
}

/// The screen's line holding `label` as a row of the table (the first one from the left).
fn row<'a>(screen: &'a str, label: &str) -> &'a str {
    screen
        .lines()
        .find(|l| {
            l.trim_start_matches(['│', ' '])
                .starts_with(&format!("{label} "))
        })
        .unwrap_or_else(|| panic!("no {label} row in:\n{screen}"))
}

fn quit(tmux: &Tmux) {
    tmux.keys(&["q"]);
    let start = Instant::now();
    while tmux.alive() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running after q:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_finished_study_shows_its_rows_by_seed_and_changes_reference_and_metric() {
    let dir = tempfile::tempdir().unwrap();
    let mut study = start_study(dir.path(), "runs/tiny-study");
    assert!(study.0.wait().unwrap().success(), "the study failed");

    let tmux = Tmux::start(dir.path(), &format!("{EXE} tui runs/tiny-study"));
    let screen = tmux.wait_for("Δ against Teacher", Duration::from_secs(20));
    for text in [
        "seed 1",
        "seed 2",
        "seed 3",
        "p (t)",
        "Holm",
        "3/3 seeds finished",
    ] {
        assert!(screen.contains(text), "no {text:?} in:\n{screen}");
    }
    for label in ["Teacher", "BAN-1", "BAN-2"] {
        row(&screen, label);
    }
    assert!(row(&screen, "Teacher").contains(" ref "), "{screen}");
    // BAN-1 against the teacher: a difference and its two p-values.
    let cells = row(&screen, "BAN-1").split_whitespace().count();
    assert!(cells >= 10, "{screen}");

    tmux.keys(&["r"]);
    let screen = tmux.wait_for("Δ against BAN-1", Duration::from_secs(20));
    assert!(row(&screen, "BAN-1").contains(" ref "), "{screen}");
    assert!(!row(&screen, "Teacher").contains(" ref "), "{screen}");

    tmux.keys(&["m"]);
    let screen = tmux.wait_for("Top-5 error % by seed", Duration::from_secs(20));
    assert!(screen.contains("Δ against BAN-1"), "{screen}");
    quit(&tmux);

    // The Runs screen lists the study (not its seeds one by one) and opens it.
    let tmux = Tmux::start(dir.path(), EXE);
    tmux.wait_for("Ready: Enter starts.", Duration::from_secs(20));
    tmux.keys(&["5"]);
    let runs = tmux.wait_for("3/3 seeds", Duration::from_secs(10));
    assert!(
        runs.contains("tiny-study") && !runs.contains("seed-1"),
        "{runs}"
    );
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Δ against Teacher", Duration::from_secs(20));
    assert!(screen.contains("6 Study"), "{screen}");
    quit(&tmux);
}

#[test]
fn a_study_in_training_is_followed_until_its_last_seed_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut study = start_study(dir.path(), "study");
    let start = Instant::now();
    while !dir.path().join("study/study.json").is_file() {
        assert!(start.elapsed() < Duration::from_secs(60), "no study.json");
        std::thread::sleep(Duration::from_millis(20));
    }

    let tmux = Tmux::start(dir.path(), &format!("{EXE} tui study"));
    let training = tmux.wait_for(" training ", Duration::from_secs(30));
    assert!(training.contains("seed"), "{training}");
    // The last seed's numbers come once its results.json changes: no value is missing then.
    let start = Instant::now();
    loop {
        let screen = tmux.screen();
        if screen.contains("3/3 seeds finished") && !row(&screen, "BAN-2").contains(" – ") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the study did not finish on screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(study.0.wait().unwrap().success());
    quit(&tmux);
}
