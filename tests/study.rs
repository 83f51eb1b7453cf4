//! Studies end to end: the real binary trains a chain once per seed into ordinary run
//! directories, and the study's results hold the statistics across seeds.

use std::path::Path;
use std::process::{Command, Output};

use banbench::agreement::Agreement;
use banbench::run_dir::RunDir;
use banbench::run_dir::records::{Metric, Task};
use banbench::stats::{Paired, Summary};
use banbench::study::{StudyPlan, StudyResults};

mod fixtures;

use fixtures::TINY_STUDY as TINY;

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

#[test]
fn a_study_trains_every_seed_and_compares_each_row_with_the_teacher() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.toml"), TINY).unwrap();
    let o = banbench(&["run", "tiny.toml", "--out", "study"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    let study = dir.path().join("study");
    let plan = StudyPlan::read(&study).unwrap().unwrap();
    assert_eq!(plan.seeds, vec![1, 2, 3]);

    // Seed 2 of the study trains exactly what `run --seed 2` trains.
    let o = banbench(
        &["run", "tiny.toml", "--seeds", "2", "--out", "alone"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = banbench(
        &[
            "run",
            "tiny.toml",
            "--seed",
            "2",
            "--seeds",
            "2",
            "--out",
            "again",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let logits = |d: &str| {
        let run = RunDir::open(&dir.path().join(d)).unwrap();
        std::fs::read(run.outputs_path(Task::Vision, 2)).unwrap()
    };
    assert!(logits("study/seed-2") == logits("alone/seed-2"));
    assert!(logits("study/seed-2") == logits("again/seed-2"));
    assert!(
        logits("study/seed-1") != logits("study/seed-2"),
        "seeds differ"
    );

    let results: StudyResults =
        serde_json::from_str(&std::fs::read_to_string(study.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results.metric, Metric::Top1Error);
    let chain = &results.chains[0];
    let labels: Vec<&str> = chain.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["Teacher", "BAN-1", "BAN-2", "Ens*2"]);
    // The numbers come from the seeds' own results, and the statistics from them.
    let per_seed = |label: &str| -> Vec<f64> {
        plan.seeds
            .iter()
            .map(|s| {
                let run = RunDir::open(&study.join(format!("seed-{s}"))).unwrap();
                let r = run.results().unwrap().unwrap();
                let g = r.generations.iter().find(|g| g.label == label).unwrap();
                g.metrics[&Metric::Top1Error]
            })
            .collect()
    };
    let (teacher, ban1) = (per_seed("Teacher"), per_seed("BAN-1"));
    let row = &chain.rows[1];
    assert_eq!(
        row.values,
        ban1.iter().map(|&v| Some(v)).collect::<Vec<_>>()
    );
    assert_eq!(row.summary, Some(Summary::of(&ban1)));
    let versus = row.versus.as_ref().unwrap();
    assert_eq!(versus.paired, Paired::of(&ban1, &teacher).unwrap());
    assert_eq!(results.comparisons, 3);
    assert!(versus.holm_p.unwrap() >= versus.paired.t_p.unwrap());
    assert!(
        chain.rows[0].versus.is_none(),
        "the teacher is the reference"
    );
    // McNemar per seed, from the saved logits.
    assert_eq!(versus.mcnemar.len(), 3);
    assert!(
        versus
            .mcnemar
            .iter()
            .all(|m| m.is_some_and(|m| m.p > 0.0 && m.p <= 1.0))
    );

    // Each student's agreement with its teacher, from the saved logits.
    let run = RunDir::open(&study.join("seed-1")).unwrap();
    let r = run.results().unwrap().unwrap();
    let read = |k| run.read_logits(k, 10, 200).unwrap().values;
    let labels = run.labels().unwrap().labels;
    let expected = Agreement::of(&read(1), &read(2), 10, &labels).unwrap();
    assert_eq!(r.generations[2].agreement.unwrap().with_teacher, expected);
    assert!(r.generations[0].agreement.is_none());
    let table = std::fs::read_to_string(run.root.join("results.md")).unwrap();
    assert!(table.contains("Agreement on the test set"), "{table}");

    let md = std::fs::read_to_string(study.join("results.md")).unwrap();
    assert!(md.contains("| Row | seed 1 | seed 2 | seed 3 |"), "{md}");
    assert!(md.contains("- BAN-1 − Teacher: "), "{md}");
    assert!(md.contains("McNemar"), "{md}");
    let report = banbench(&["report", "study"], dir.path());
    assert!(report.status.success(), "{}", text(&report));
    assert!(text(&report).contains("- BAN-2 − Teacher: "));

    // The same command again finds every seed finished.
    let o = banbench(&["run", "tiny.toml", "--out", "study"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        text(&o).matches("already finished").count(),
        3,
        "{}",
        text(&o)
    );
    // Other seeds into the same directory are refused.
    let o = banbench(
        &["run", "tiny.toml", "--seeds", "4", "--out", "study"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("holds a study of other seeds"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_seeds_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (seeds, expected) in [
        ("0", "expected 1 to 1000 seeds, found 0"),
        ("[]", "expected a list of 1 to 1000 seeds, found 0"),
        ("[3, 4, 3]", "seed 3 is listed twice"),
        ("\"five\"", "seeds"),
    ] {
        let preset = TINY.replace("seeds = 3", &format!("seeds = {seeds}"));
        std::fs::write(dir.path().join("bad.toml"), preset).unwrap();
        let o = banbench(&["check", "bad.toml"], dir.path());
        assert_eq!(o.status.code(), Some(2), "{seeds}: {}", text(&o));
        assert!(text(&o).contains(expected), "{seeds}: {}", text(&o));
        assert!(text(&o).contains("seeds"), "{seeds}: {}", text(&o));
    }
    std::fs::write(dir.path().join("tiny.toml"), TINY).unwrap();
    let o = banbench(&["run", "tiny.toml", "--seeds", "1,x"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("expected a count (5) or a list of seeds (1,2,3)"));
}
