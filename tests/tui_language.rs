//! A language-model run directory in the TUI: the same screens as a vision run, with
//! perplexity where vision shows error, and an ensemble lab over the saved probabilities of
//! each test target token.

mod tui_common;

use std::path::{Path, PathBuf};

use banbench::events::{
    EpochRecord, LanguageEnsemble, LanguageEpochRecord, LanguageGeneration, LanguageResults,
    RunState, Task, generation_label,
};
use banbench::lm::spec::LmSpec;
use banbench::run_dir::RunDir;
use banbench::spec::Overrides;
use banbench::tui::app::{App, Effect, LanguageSnapshot, Msg};
use banbench::tui::ensembles::Outcome;
use crossterm::event::KeyCode;
use insta::assert_snapshot;
use tui_common::*;

const TINY_LM: &str = r#"
name = "tiny-lm"
seed = 3
[corpus]
path = "data/ptb"
[model]
arch = "lstm"
layers = 1
hidden = 12
dropout = 0.1
[schedule]
epochs = 3
batch_size = 8
bptt = 10
lr = 1.0
plateau_factor = 0.25
clip = 5.0
[generations]
count = 2
control = "ban+l"
[[ensemble]]
name = "Teacher+BAN-1"
members = [0, 1]
[paper]
Teacher = { valid = 75.11, test = 71.87 }
"#;

fn lm_spec() -> LmSpec {
    LmSpec::parse(
        TINY_LM,
        Path::new("presets/tiny-lm.toml"),
        &Overrides::default(),
    )
    .expect("the tiny language spec is valid")
}

fn lm_record(generation: usize, epoch: usize) -> LanguageEpochRecord {
    let ppl = 300.0 / epoch as f64 - 10.0 * generation as f64;
    LanguageEpochRecord {
        record: EpochRecord {
            generation,
            epoch,
            epochs: 3,
            train_loss: 6.0 - 0.5 * epoch as f64 - 0.1 * generation as f64,
            train_error: 80.0,
            test_error: 75.0 - epoch as f64,
            test_nll: ppl.ln(),
            validation_error: Some(76.0 - epoch as f64),
            lr: 1.0,
            images_per_sec: 5000.0,
            seconds: 4.0 * epoch as f64,
            eta_seconds: 40.0 - 4.0 * (3 * generation + epoch) as f64,
        },
        validation_perplexity: ppl + 5.0,
        test_perplexity: ppl,
        train_perplexity: ppl - 20.0,
        tokens_per_sec: 5000.0,
    }
}

fn lm_generation(generation: usize, test: f64) -> LanguageGeneration {
    LanguageGeneration {
        generation,
        label: generation_label(generation),
        model: "LSTM".into(),
        control: if generation == 0 {
            "labels".into()
        } else {
            "BAN+L".into()
        },
        parameters: 12_345,
        train_seconds: 12.0 + generation as f64,
        best_epoch: 3,
        validation_perplexity: test + 5.0,
        test_perplexity: test,
        test_error: 70.0 - generation as f64,
        paper_validation_perplexity: (generation == 0).then_some(75.11),
        paper_test_perplexity: (generation == 0).then_some(71.87),
    }
}

fn lm_results(state: RunState, generations: Vec<LanguageGeneration>) -> LanguageResults {
    let ensembles = if generations.len() >= 2 {
        vec![LanguageEnsemble {
            name: "Teacher+BAN-1".into(),
            members: vec![0, 1],
            test_perplexity: 95.5,
        }]
    } else {
        Vec::new()
    };
    LanguageResults {
        task: Task::Language,
        name: "tiny-lm".into(),
        corpus: "data/ptb".into(),
        vocabulary: 10_000,
        test_tokens: 4,
        device: "flex".into(),
        state,
        generations,
        ensembles,
    }
}

/// A language run watched from another session: the teacher and BAN-1 finished, BAN-2 one
/// epoch in.
fn watched() -> App {
    let mut app = app();
    let snapshot = LanguageSnapshot {
        spec: lm_spec(),
        epochs: (0..2)
            .flat_map(|k| (1..=3).map(move |e| lm_record(k, e)))
            .chain([lm_record(2, 1)])
            .collect(),
        results: Some(lm_results(
            RunState::Running,
            vec![lm_generation(0, 100.0), lm_generation(1, 97.25)],
        )),
    };
    app.update(Msg::OpenedLanguage {
        dir: PathBuf::from("runs/tiny-lm-20260101-120000"),
        snapshot,
    });
    app
}

#[test]
fn language_run_watched_from_another_session() {
    assert_snapshot!(render(&watched(), 80, 24));
}

#[test]
fn language_generations() {
    let mut app = watched();
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn language_generations_wide() {
    let mut app = watched();
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(render(&app, 120, 24));
}

/// Answers the app's requests for target probabilities from the run directory, as the
/// runtime does.
fn serve_targets(app: &mut App, dir: &RunDir, effects: Vec<Effect>) {
    let mut pending = effects;
    while let Some(effect) = pending.pop() {
        if let Effect::ReadTargets { generation, tokens } = effect {
            let probabilities = dir
                .read_target_probabilities(generation, tokens)
                .map_err(|e| format!("{e:#}"));
            pending.extend(app.update(Msg::Targets {
                generation,
                probabilities,
            }));
        }
    }
}

fn perplexity(outcome: &Outcome) -> f64 {
    match outcome {
        Outcome::Perplexity { perplexity, .. } => *perplexity,
        other => panic!("no perplexity: {other:?}"),
    }
}

#[test]
fn toggling_a_member_recomputes_the_ensemble_perplexity_from_target_probabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tiny-lm");
    let spec = lm_spec();
    let dir = RunDir::create_with(&root, &spec.to_toml(), |_| true).unwrap();
    let results = lm_results(
        RunState::Finished,
        vec![lm_generation(0, 4.0), lm_generation(1, 4.0)],
    );
    dir.write_language_results(&results, "").unwrap();
    // Four test tokens; the teacher and BAN-1 are confident on different halves.
    dir.write_target_probabilities(0, &[0.5, 0.5, 0.125, 0.125])
        .unwrap();
    dir.write_target_probabilities(1, &[0.125, 0.125, 0.5, 0.5])
        .unwrap();

    let mut app = app();
    let (_, msg) = banbench::tui::open(&root).unwrap();
    assert!(matches!(msg, Msg::OpenedLanguage { .. }), "{msg:?}");
    app.update(msg);
    let effects = app.update(key(KeyCode::Char('4')));
    assert!(
        effects
            .iter()
            .all(|e| matches!(e, Effect::ReadTargets { tokens: 4, .. })),
        "{effects:?}"
    );
    serve_targets(&mut app, &dir, effects);
    assert_eq!(app.lab.outcome, Outcome::NoMembers);

    app.update(key(KeyCode::Char(' '))); // the teacher
    let teacher = perplexity(&app.lab.outcome);
    // exp(mean -ln p) over 0.5, 0.5, 0.125, 0.125: sqrt(2 * 8) = 4.
    assert!((teacher - 4.0).abs() < 1e-9, "{teacher}");

    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // + BAN-1: every token gets 0.3125
    let pair = perplexity(&app.lab.outcome);
    assert!((pair - 1.0 / 0.3125).abs() < 1e-6, "{pair}");
    assert!(pair < teacher);

    // Logit averaging is not offered for a language run.
    app.update(key(KeyCode::Char('a')));
    assert!((perplexity(&app.lab.outcome) - pair).abs() < 1e-12);

    app.update(key(KeyCode::Up));
    app.update(key(KeyCode::Char(' '))); // BAN-1 alone
    assert!((perplexity(&app.lab.outcome) - 4.0).abs() < 1e-9);

    assert_snapshot!(render(&app, 80, 24));

    // The Runs screen lists the language run too.
    let runs = banbench::tui::scan_runs(tmp.path());
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].name, "tiny-lm");
    assert_eq!((runs[0].finished, runs[0].generations), (2, 3));
}

#[test]
fn a_language_run_draws_at_every_size_without_panicking() {
    let mut app = watched();
    for screen in ['2', '3', '4'] {
        app.update(key(KeyCode::Char(screen)));
        for (w, h) in [(1, 1), (20, 5), (60, 18), (80, 24), (200, 60)] {
            render(&app, w, h);
        }
    }
}
