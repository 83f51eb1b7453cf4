//! `banbench plot` on what the real binary writes: a run directory gives its training curves and
//! gradient split, a study directory its per-seed strip plot and paired differences, each as an
//! SVG with its axes named and a legend; a directory of neither kind is bad input (exit 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use banbench::experiment::Experiment;
use banbench::run_dir::RunDir;
use banbench::spec::Overrides;

mod fixtures;

/// Two seeds of a teacher and two BAN generations, 2 epochs each: seconds on a CPU.
fn study() -> String {
    fixtures::TINY_STUDY.replace("seeds = 3", "seeds = 2")
}

/// The generations' colours in the figures: the teacher black, then the Okabe-Ito palette.
const COLOURS: [&str; 3] = ["#000000", "#0072B2", "#D55E00"];

fn banbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn succeeds(args: &[&str]) -> String {
    let out = banbench(args);
    assert!(
        out.status.success(),
        "banbench {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Trains `preset` (text) into `dir/run` and returns that directory.
fn train(dir: &Path, preset: &str) -> PathBuf {
    let path = dir.join("preset.toml");
    std::fs::write(&path, preset).unwrap();
    let out = dir.join("run");
    succeeds(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    out
}

/// The figure at `path`, checked to be a whole SVG document.
fn svg(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.contains("<svg") && text.trim_end().ends_with("</svg>"));
    text
}

/// The contents of the figure's text elements.
fn texts(figure: &str) -> Vec<&str> {
    figure
        .split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
        .collect()
}

fn assert_texts(figure: &str, expected: &[&str]) {
    let found = texts(figure);
    for t in expected {
        assert!(found.contains(t), "no text `{t}` among {found:?}");
    }
}

/// Each generation's line and its legend key (2 px wide, in its colour), and a marker per epoch.
fn assert_one_line_per_generation(figure: &str, generations: usize, epochs: usize) {
    for colour in &COLOURS[..generations] {
        let lines = format!("stroke=\"{colour}\" stroke-width=\"2\"");
        assert_eq!(
            figure.matches(&lines).count(),
            2,
            "{colour}: line and legend"
        );
        let markers = format!("fill=\"{colour}\" stroke=\"none\"");
        assert_eq!(
            figure.matches(&markers).count(),
            epochs,
            "{colour}: markers"
        );
    }
}

#[test]
fn a_run_directory_gives_its_training_curves_and_gradient_split() {
    let tmp = tempfile::tempdir().unwrap();
    let run = train(tmp.path(), &study().replace("seeds = 2\n", ""));
    let printed = succeeds(&["plot", run.to_str().unwrap()]);
    let figures = run.join("figures");
    let written: Vec<&str> = printed.lines().collect();
    let expected = [
        "test-error.svg",
        "train-loss.svg",
        "gradient-dark-share.svg",
        "gradient-cosine.svg",
        "gradient-magnitudes.svg",
    ];
    let paths: Vec<String> = expected
        .iter()
        .map(|f| figures.join(f).display().to_string())
        .collect();
    assert_eq!(written, paths);

    let error = svg(&figures.join("test-error.svg"));
    assert_texts(
        &error,
        &[
            "tiny-study: test error per epoch",
            "epoch of each generation",
            "test top-1 error (%)",
            "Teacher (labels)",
            "BAN-1 (BAN)",
            "BAN-2 (BAN)",
        ],
    );
    assert_one_line_per_generation(&error, 3, 2);
    let loss = svg(&figures.join("train-loss.svg"));
    assert_texts(&loss, &["train loss (nats per image)", "Teacher (labels)"]);
    assert_one_line_per_generation(&loss, 3, 2);

    // The teacher learns from labels alone: the split is the students'.
    let share = svg(&figures.join("gradient-dark-share.svg"));
    assert_texts(
        &share,
        &["dark share ‖g_¬y‖² / ‖g‖² (fraction)", "BAN-1 (BAN)"],
    );
    assert!(!texts(&share).contains(&"Teacher (labels)"));
    let cosine = svg(&figures.join("gradient-cosine.svg"));
    assert_texts(
        &cosine,
        &["cos(g, label gradient q − onehot(y))", "BAN-2 (BAN)"],
    );
    let halves = svg(&figures.join("gradient-magnitudes.svg"));
    assert_texts(
        &halves,
        &[
            "mean magnitude per sample",
            "BAN-1 true class |g_y|",
            "BAN-1 dark ‖g_¬y‖",
            "BAN-2 dark ‖g_¬y‖",
        ],
    );
}

#[test]
fn a_study_directory_gives_each_rows_seeds_and_differences() {
    let tmp = tempfile::tempdir().unwrap();
    let study = train(tmp.path(), &study());
    let figures = tmp.path().join("figs");
    let printed = succeeds(&[
        "plot",
        study.to_str().unwrap(),
        "--out",
        figures.to_str().unwrap(),
    ]);
    assert!(
        printed
            .lines()
            .all(|l| l.starts_with(figures.to_str().unwrap()))
    );
    assert!(
        !study.join("figures").exists(),
        "--out replaces DIR/figures"
    );

    let seeds = svg(&figures.join("study-seeds.svg"));
    assert_texts(
        &seeds,
        &[
            "tiny-study: Top-1 err over 2 seeds",
            "Top-1 err (%)",
            "generation or ensemble",
            "Teacher",
            "BAN-1",
            "BAN-2",
            "Ens*2",
            "one seed",
            "mean ± 95% CI",
        ],
    );
    // Two seeds' dots in each of the four rows, and the legend's.
    assert_eq!(seeds.matches("<circle").count(), 4 * 2 + 1);

    let versus = svg(&figures.join("study-versus.svg"));
    assert_texts(
        &versus,
        &[
            "tiny-study: paired difference from Teacher",
            "Δ Top-1 err vs Teacher (%)",
            "BAN-1",
            "Ens*2",
        ],
    );
    assert!(texts(&versus).iter().any(|t| t.starts_with("Holm p ")));
    assert_eq!(versus.matches("<circle").count(), 3 * 2 + 1);

    for seed in [1, 2] {
        let curves = svg(&figures.join(format!("seed-{seed}/test-error.svg")));
        assert_one_line_per_generation(&curves, 3, 2);
    }
}

#[test]
fn a_run_without_epochs_says_so_and_draws_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let preset = tmp.path().join("preset.toml");
    let source = study().replace("seeds = 2\n", "");
    let experiment = Experiment::parse(&source, &preset, &Overrides::default()).unwrap();
    let dir = tmp.path().join("fresh");
    RunDir::create(&dir, &experiment).unwrap();
    let printed = succeeds(&["plot", dir.to_str().unwrap()]);
    assert!(printed.contains("no epoch has finished yet"), "{printed}");
    assert!(!dir.join("figures").exists());
}

#[test]
fn a_directory_of_no_kind_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("missing")] {
        let out = banbench(&["plot", dir.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(dir.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains("run directory (spec.toml)"), "{stderr}");
    }
}
