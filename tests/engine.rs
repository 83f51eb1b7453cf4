//! End-to-end: the real binary on tiny presets, read back through the run directory; and the
//! command line's answers to bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use banbench::run_dir::RunDir;
use banbench::run_dir::records::{Metric, Results, RunState, Scores, Task};

const TINY: &str = r#"
name = "tiny"
description = "teacher + 1 BAN + ensemble on a few hundred embedded samples"
seed = 3

[data]
source = "embedded"
train_samples = 300
test_samples = 200

# An MLP: no batch-norm running statistics to settle in one short epoch.
[teacher]
arch = "mlp"
hidden = [64]

[schedule]
epochs = 1
batch_size = 20
lr = 0.05

[generations]
count = 1
control = "ban+l"

[[ensemble]]
name = "Teacher+BAN-1"
members = [0, 1]

[paper]
Teacher = 10.0
"#;

fn banbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `banbench run PRESET --out OUT`, which must succeed; its output, for the log.
fn run_into(preset: &Path, out: &Path) -> Output {
    let o = banbench(&[
        "run",
        preset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}: {}", preset.display(), stderr(&o));
    o
}

fn run_tiny_on(device: &str) {
    let dir = tempfile::tempdir().unwrap();
    let preset = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("run");
    let o = banbench(&[
        "run",
        preset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--device",
        device,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("BAN-1    epoch   1/1"),
        "one line per epoch:\n{stdout}"
    );
    assert!(
        stdout.contains("| Teacher+BAN-1 |"),
        "final table:\n{stdout}"
    );

    let run = RunDir::open(&out).unwrap();
    let results: Results = run.results().unwrap().expect("results.json");
    assert_eq!(results.state, RunState::Finished);
    assert_eq!(results.device, device);
    assert_eq!(results.test_samples, 200);
    let gens: Vec<usize> = results.generations.iter().map(|g| g.generation).collect();
    assert_eq!(gens, vec![0, 1]);
    for g in &results.generations {
        let m = |metric| g.metrics[&metric];
        let top1 = m(Metric::Top1Error);
        assert!(
            (0.0..=100.0).contains(&top1) && m(Metric::Top5Error) <= top1 && m(Metric::Nll) > 0.0,
            "{g:?}"
        );
        // Ten classes and one epoch on 300 images: well above chance (90% error) is learnt.
        assert!(top1 < 85.0, "{} did not learn: {g:?}", g.label);
    }
    assert_eq!(
        results.generations[0].paper,
        Scores::from([(Metric::Top1Error, 10.0)])
    );
    assert_eq!(results.generations[1].control, "BAN+L");
    assert_eq!(results.ensembles.len(), 1);
    assert_eq!(results.ensembles[0].members, vec![0, 1]);

    // The saved logits reproduce the saved metrics without re-running a model.
    let labels = run.labels().unwrap();
    let logits = run.read_logits(1, 10, 200).unwrap();
    let again = banbench::ensemble::metrics(&logits.probabilities(), 10, &labels.labels);
    assert_eq!(Scores::from(again), results.generations[1].metrics);

    let metrics = run.metrics().unwrap();
    assert_eq!(metrics.len(), 2, "one record per epoch per generation");
    // Every epoch says where its time went; only a student's includes a teacher's forward.
    for r in &metrics {
        let time = r.time.expect("the epoch's time split");
        assert!(time.steps > 0.0 && time.evaluation > 0.0, "{time:?}");
        assert!(
            time.total() <= r.seconds + time.evaluation + time.writes + 0.5,
            "{time:?} against {} s of training",
            r.seconds
        );
        assert_eq!(time.teacher > 0.0, r.generation > 0, "{time:?}");
    }
    assert_eq!(stdout.matches("         time ").count(), 2, "{stdout}");
    assert!(run.checkpoint_path(0).exists() && run.checkpoint_path(1).exists());
    for f in ["spec.toml", "results.md", "metrics.jsonl"] {
        assert!(out.join(f).exists(), "{f}");
    }
}

#[test]
fn tiny_preset_runs_end_to_end_on_flex() {
    run_tiny_on("flex");
}

#[cfg(feature = "tch")]
#[test]
fn tiny_preset_runs_end_to_end_on_libtorch_cpu() {
    run_tiny_on("tch-cpu");
}

#[test]
fn a_run_resumes_from_its_first_unfinished_generation() {
    let dir = tempfile::tempdir().unwrap();
    let preset = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("run");
    let args = [
        "run",
        preset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    assert!(banbench(&args).status.success());
    // Forget BAN-1, as if the run had been stopped while training it.
    let run = RunDir::open(&out).unwrap();
    let mut results = run.results().unwrap().unwrap();
    let teacher = results.generations[0].clone();
    results.generations.truncate(1);
    results.ensembles.clear();
    results.state = RunState::Stopped;
    run.write_results(&results, "").unwrap();
    std::fs::remove_file(run.outputs_path(Task::Vision, 1)).unwrap();

    let o = banbench(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("resuming: Teacher already done"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Teacher  epoch"),
        "the teacher is not retrained:\n{stdout}"
    );
    let results = run.results().unwrap().unwrap();
    assert_eq!(results.state, RunState::Finished);
    assert_eq!(results.generations[0], teacher);
    assert_eq!(results.generations.len(), 2);
}

#[test]
fn a_run_directory_of_another_spec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let preset = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("run");
    assert!(
        banbench(&[
            "run",
            preset.to_str().unwrap(),
            "--out",
            out.to_str().unwrap()
        ])
        .status
        .success()
    );
    let o = banbench(&[
        "run",
        preset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "99",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("holds a run of another spec"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_presets_exit_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            TINY.replace("lr = 0.05", "lr = -1.0"),
            "schedule.lr",
            "expected a positive number",
        ),
        (
            TINY.replace("hidden = [64]", "hidden = [64]\ndepth = 3"),
            "unknown field `depth`",
            "expected",
        ),
        (
            TINY.replace("control = \"ban+l\"", "control = \"bann\""),
            "unknown variant `bann`",
            "cwtm",
        ),
        (
            TINY.replace("members = [0, 1]", "members = [0, 4]"),
            "ensemble.members",
            "generation 4",
        ),
        (
            TINY.replace("source = \"embedded\"", "source = \"cifar10\""),
            "data.source",
            "path",
        ),
    ];
    for (text, field, expected) in cases {
        let preset = write(dir.path(), "bad.toml", &text);
        for cmd in ["check", "run"] {
            let o = banbench(&[cmd, preset.to_str().unwrap()]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
            assert!(
                err.contains("bad.toml:") && err.contains(field) && err.contains(expected),
                "{cmd}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let o = banbench(&["check", dir.path().join("missing.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.toml") && stderr(&o).contains("cannot read"));
}

#[test]
fn missing_data_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = TINY.replace(
        "source = \"embedded\"",
        &format!("source = \"cifar100\"\npath = \"{}\"", dir.path().display()),
    );
    let preset = write(dir.path(), "c.toml", &text);
    let o = banbench(&["check", preset.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&dir.path().display().to_string()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unavailable_devices_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let preset = write(dir.path(), "tiny.toml", TINY);
    let o = banbench(&[
        "run",
        preset.to_str().unwrap(),
        "--device",
        "cuda:7",
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cuda:7"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    let o = banbench(&["run", preset.to_str().unwrap(), "--device", "tpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("expected flex, tch-cpu, cuda or cuda:N"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_reports_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let preset = write(dir.path(), "tiny.toml", TINY);
    let o = banbench(&["check", preset.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("300 train, 0 validation, 200 test, 10 classes, 1x28x28"),
        "{stdout}"
    );
    assert!(stdout.contains("BAN-1     MLP-64"), "{stdout}");
}

#[test]
fn shipped_presets_are_valid() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/presets")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let o = banbench(&["check", path.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
        }
    }
}

/// Logit matching (Ba & Caruana) trains a student end to end; it reads no distribution, so its
/// epochs carry no gradient split.
#[test]
fn logit_matching_trains_a_student() {
    let dir = tempfile::tempdir().unwrap();
    let preset = write(
        dir.path(),
        "l2.toml",
        // A regression of unbounded targets takes a smaller step than cross-entropy.
        &TINY
            .replace("control = \"ban+l\"", "control = \"logits-l2\"")
            .replace("lr = 0.05", "lr = 0.005"),
    );
    let out = dir.path().join("run");
    run_into(&preset, &out);
    let run = RunDir::open(&out).unwrap();
    let results = run.results().unwrap().unwrap();
    let student = &results.generations[1];
    assert_eq!(student.control, "logits-L2");
    assert!(student.metrics[&Metric::Top1Error] < 85.0, "{student:?}");
    let epochs = run.metrics().unwrap();
    assert!(epochs.iter().all(|r| r.gradient.is_none()));
}

/// FitNets and FSP run their two stages inside one generation: the first stage's epochs at its
/// own rate, named in metrics.jsonl and the log, then the schedule's; FitNets' student bridges a
/// DenseNet teacher's channels to a ResNet's through its regressor, which the finished student
/// no longer carries (its checkpoint loads into a plain model as the next teacher).
#[test]
fn two_stage_controls_train_their_stages_in_one_generation() {
    let dir = tempfile::tempdir().unwrap();
    let convnets = TINY
        .replace(
            "arch = \"mlp\"\nhidden = [64]",
            "arch = \"densenet-bc\"\ndepth = 10\ngrowth = 4\n[student]\narch = \"preact-resnet\"\ndepth = 8",
        )
        .replace("epochs = 1\n", "epochs = 2\n")
        .replace("count = 1", "count = 2");
    for (name, control, first, second) in [
        (
            "fitnets",
            // The summed squared distance of two unnormalised maps: a small step.
            "control = \"fitnets\"\ntemperature = 4.0\nfitnets = { epochs = 2, lr = 0.00002 }",
            "hint",
            "KD",
        ),
        (
            "fsp",
            "control = \"fsp\"\nfsp = { epochs = 2, lr = 0.0005 }",
            "FSP",
            "labels",
        ),
    ] {
        let mut text = convnets.replace("control = \"ban+l\"", control);
        if name == "fsp" {
            // FSP pairs equal sections: born-again CNNs, as in presets/controls-quick.toml.
            text = text.replace(
                "arch = \"densenet-bc\"\ndepth = 10\ngrowth = 4\n[student]\narch = \"preact-resnet\"\ndepth = 8",
                "arch = \"cnn\"\nwidth = 4",
            );
        }
        let preset = write(dir.path(), &format!("{name}.toml"), &text);
        let out = dir.path().join(name);
        let o = run_into(&preset, &out);
        let log = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
        assert!(
            log.contains(&format!(
                "BAN-1: stage 1 of 2 ({first}) from epoch 1, 2 epoch(s) at lr"
            )) && log.contains(&format!("BAN-2: stage 2 of 2 ({second}) from epoch 3")),
            "{name}: {log}"
        );
        let run = RunDir::open(&out).unwrap();
        let epochs = run.metrics().unwrap();
        let student: Vec<_> = epochs.iter().filter(|r| r.generation == 1).collect();
        assert_eq!(student.len(), 4, "{name}");
        let stages: Vec<_> = student
            .iter()
            .map(|r| r.stage.as_ref().map(|s| (s.number, s.name.clone())))
            .collect();
        assert_eq!(
            stages,
            [1, 1, 2, 2].map(|n| Some((n, if n == 1 { first } else { second }.to_string()))),
            "{name}"
        );
        assert!(
            student
                .iter()
                .all(|r| r.epochs == 4 && r.train_loss.is_finite())
        );
        assert!(student[0].lr < 0.05 && student[2].lr == 0.05, "{name}");
        // Only FitNets' KD stage reads a distribution, so only it measures the gradient split.
        let split: Vec<bool> = student.iter().map(|r| r.gradient.is_some()).collect();
        let expected = if name == "fitnets" {
            [false, false, true, true]
        } else {
            [false; 4]
        };
        assert_eq!(split, expected, "{name}");
        assert!(
            epochs
                .iter()
                .filter(|r| r.generation == 0)
                .all(|r| r.stage.is_none())
        );
        let results = run.results().unwrap().unwrap();
        assert_eq!(results.state, RunState::Finished);
        assert_eq!(results.generations.len(), 3, "{name}");
    }
}

/// `schedule.evaluate_every = 2` evaluates epochs 2 and 4 and the generation's last (5); the
/// others record no test error, and the generation's results are those of its last epoch.
#[test]
fn evaluate_every_skips_the_test_set_between_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let preset = write(
        dir.path(),
        "every.toml",
        &TINY
            .replace("epochs = 1\n", "epochs = 5\nevaluate_every = 2\n")
            .replace("count = 1", "count = 0")
            .replace(
                "[[ensemble]]\nname = \"Teacher+BAN-1\"\nmembers = [0, 1]\n",
                "",
            ),
    );
    let out = dir.path().join("run");
    run_into(&preset, &out);
    let run = RunDir::open(&out).unwrap();
    let evaluated: Vec<bool> = run
        .metrics()
        .unwrap()
        .iter()
        .map(|r| r.test_error.is_some() && r.test_nll.is_some())
        .collect();
    assert_eq!(evaluated, [false, true, false, true, true]);
    let last = run.metrics().unwrap()[4].test_error.unwrap();
    let results = run.results().unwrap().unwrap();
    assert_eq!(results.generations[0].metrics[&Metric::Top1Error], last);
    let check = banbench(&["check", preset.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("test set evaluated every 2 epochs"));
    // Training never reads the test set: evaluating every epoch trains the same network.
    let every = write(
        dir.path(),
        "every1.toml",
        &std::fs::read_to_string(&preset)
            .unwrap()
            .replace("evaluate_every = 2\n", ""),
    );
    let all = dir.path().join("all");
    run_into(&every, &all);
    let outputs =
        |d: &Path| std::fs::read(RunDir::open(d).unwrap().outputs_path(Task::Vision, 0)).unwrap();
    assert!(
        outputs(&out) == outputs(&all),
        "evaluating less changed the trained network"
    );
}
