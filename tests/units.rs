//! A table as units: `plan` lists them with what each waits for; running every unit by hand in
//! any order that respects that, or `--jobs 2` side by side, gives the table a sequential
//! `banbench run` gives.

use std::path::Path;
use std::process::{Command, Output};

mod fixtures;

use fixtures::TINY_TABLE as TABLE;

fn banbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn table_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("results.md")).unwrap()
}

#[test]
fn units_by_hand_and_side_by_side_give_the_sequential_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.toml"), TABLE).unwrap();
    let o = banbench(&["run", "t.toml", "--out", "sequential"], d);
    assert!(o.status.success(), "{}", text(&o));

    let plan = banbench(&["plan", "t.toml"], d);
    assert!(plan.status.success(), "{}", text(&plan));
    let lines: Vec<String> = text(&plan).lines().map(str::to_string).collect();
    let row = |id: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("{id} in\n{}", lines.join("\n")))
            .clone()
    };
    assert!(row("CNN-4/main:teacher").ends_with(" -"));
    assert!(row("CNN-4/main").ends_with("CNN-4/main:teacher"));
    assert!(row("CNN-4/cwtm").ends_with("CNN-4/main:teacher"));
    assert!(row("CNN-6/cwtm").ends_with("CNN-6/main:teacher"));

    // A unit before what it waits for is refused, naming both.
    let o = banbench(
        &["run", "t.toml", "--unit", "CNN-6/cwtm", "--out", "by-hand"],
        d,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("waits for unit CNN-6/main:teacher"),
        "{}",
        text(&o)
    );
    let o = banbench(&["run", "t.toml", "--unit", "nope", "--out", "by-hand"], d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no such unit"), "{}", text(&o));
    let o = banbench(
        &[
            "run",
            "t.toml",
            "--unit",
            "CNN-6/main:teacher",
            "--out",
            "by-hand",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    // `report` tells what every unit of the shared directory is doing.
    let report = text(&banbench(&["report", "by-hand"], d));
    let state = |id: &str| {
        report
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("{id} in\n{report}"))
            .split_once("  ")
            .map(|(_, s)| s.trim().to_string())
            .unwrap()
    };
    assert_eq!(state("CNN-6/main:teacher"), "done");
    assert_eq!(state("CNN-6/cwtm"), "ready");
    assert_eq!(state("CNN-4/cwtm"), "waiting for CNN-4/main:teacher");
    // Students before the other teacher, the cwtm chains before their main chains.
    for id in [
        "CNN-6/cwtm",
        "CNN-4/main:teacher",
        "CNN-4/cwtm",
        "CNN-6/main",
        "CNN-4/main",
    ] {
        let o = banbench(&["run", "t.toml", "--unit", id, "--out", "by-hand"], d);
        assert!(o.status.success(), "{id}: {}", text(&o));
    }
    assert_eq!(
        table_of(&d.join("by-hand")),
        table_of(&d.join("sequential"))
    );

    let o = banbench(
        &["run", "t.toml", "--jobs", "2", "--out", "side-by-side"],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 in flight"), "{}", text(&o));
    assert_eq!(
        table_of(&d.join("side-by-side")),
        table_of(&d.join("sequential"))
    );
    // Every unit's output is in its log.
    assert!(d.join("side-by-side/logs/CNN-4_main_teacher.log").exists());
    let report = text(&banbench(&["report", "side-by-side"], d));
    assert_eq!(
        report.lines().filter(|l| l.ends_with("  done")).count(),
        6,
        "{report}"
    );
    assert!(report.contains("| CNN-4 |"), "{report}");
    // Run again: nothing left to do.
    let o = banbench(
        &["run", "t.toml", "--jobs", "2", "--out", "side-by-side"],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("0 unit(s) to run (6 already done)"),
        "{}",
        text(&o)
    );
}

/// Table 5's rows share one DenseNet-90-60 teacher, trained once, as its preset says.
#[test]
fn table5_trains_its_teacher_once() {
    let preset = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/presets/paper/table5-cifar100-resnet-students.toml"
    );
    for profile in ["full", "smoke"] {
        let o = banbench(&["plan", preset, "--profile", profile], Path::new("."));
        assert!(o.status.success(), "{}", text(&o));
        let teachers: Vec<String> = text(&o)
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|id| id.ends_with(":teacher"))
            })
            .map(str::to_string)
            .collect();
        assert_eq!(teachers.len(), 1, "{profile}: {teachers:?}");
    }
    let comments = std::fs::read_to_string(preset).unwrap();
    assert!(comments.contains("The DenseNet-90-60 teacher is trained once"));
    assert!(!comments.contains("Each row trains its own"));
}

/// SIGTERM to a side-by-side run stops every unit in flight (each saves where it is) and
/// starts no more; the same command then finishes the table as a sequential run would.
#[test]
fn a_stopped_side_by_side_run_stops_its_units_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let longer = TABLE
        .replace("train_samples = 400", "train_samples = 1500")
        .replace("epochs = 1,", "epochs = 3,");
    std::fs::write(d.join("t.toml"), longer).unwrap();
    let o = banbench(&["run", "t.toml", "--out", "sequential"], d);
    assert!(o.status.success(), "{}", text(&o));

    let parent = Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(["run", "t.toml", "--jobs", "2", "--out", "stopped"])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let training = d.join("stopped/CNN-4/main/progress.json");
    while !training.exists() {
        assert!(started.elapsed().as_secs() < 120, "no unit started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &parent.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = parent.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(130), "{log}");
    assert!(log.contains("stopping every unit in flight"), "{log}");
    // Every child has stopped and let go of its run directory.
    for unit in ["CNN-4/main", "CNN-6/main"] {
        assert!(
            !d.join("stopped").join(unit).join("lock").exists(),
            "{unit} still owned"
        );
    }
    let o = banbench(&["run", "t.toml", "--jobs", "2", "--out", "stopped"], d);
    assert!(o.status.success(), "{}", text(&o));
    let report = text(&banbench(&["report", "stopped"], d));
    assert_eq!(
        report.lines().filter(|l| l.ends_with("  done")).count(),
        6,
        "{report}"
    );
    assert_eq!(
        table_of(&d.join("stopped")),
        table_of(&d.join("sequential"))
    );
}

/// A unit whose log cannot be created fails alone: the others run to the end, what waits for
/// it is not started, and the parent says so and exits 1; the same command, once the path is
/// free, runs what is left.
#[test]
fn a_unit_that_cannot_start_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.toml"), TABLE).unwrap();
    // A directory where the unit's log file would go.
    let blocked = d.join("out/logs/CNN-4_main_teacher.log");
    std::fs::create_dir_all(&blocked).unwrap();
    let o = banbench(&["run", "t.toml", "--jobs", "2", "--out", "out"], d);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("failed   CNN-4/main:teacher could not start: creating "),
        "{out}"
    );
    assert!(
        out.contains("not started, waiting for failed units: CNN-4/main, CNN-4/cwtm"),
        "{out}"
    );
    for id in ["CNN-6/main:teacher", "CNN-6/main", "CNN-6/cwtm"] {
        assert!(
            out.contains(&format!("done     {id} on flex")),
            "{id}: {out}"
        );
    }

    std::fs::remove_dir(&blocked).unwrap();
    let o = banbench(&["run", "t.toml", "--jobs", "2", "--out", "out"], d);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("3 unit(s) to run (3 already done)"),
        "{}",
        text(&o)
    );
}

/// Units side by side on one CPU share its memory: a chain that fits the machine once is
/// refused for 10,000 copies of it, before anything starts, naming the share.
#[test]
fn side_by_side_units_must_fit_the_memory_together() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.toml"), TABLE).unwrap();
    let o = banbench(&["run", "t.toml", "--jobs", "10000", "--out", "out"], d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("for each of 10000 units side by side on flex"),
        "{}",
        text(&o)
    );
    assert!(!d.join("out/logs").exists(), "something started");
}
