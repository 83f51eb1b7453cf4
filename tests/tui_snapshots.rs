//! Snapshots of every screen over ratatui's TestBackend at 80x24 (and a few other sizes), with
//! a run in several states; and no panic at any size down to 1x1.

mod tui_common;

use std::path::PathBuf;

use banbench::events::Event;
use banbench::run_dir::records::RunState;
use banbench::tui::app::{App, Msg};
use banbench::tui::run_view::Snapshot;
use banbench::tui::screens::runs::RunEntry;
use crossterm::event::KeyCode;
use insta::assert_snapshot;
use tui_common::*;

fn at(app: &App) -> String {
    render(app, 80, 24)
}

#[test]
fn setup_with_a_preset() {
    assert_snapshot!(at(&app()));
}

#[test]
fn setup_explains_an_invalid_combination_in_place() {
    let mut app = app();
    // CIFAR-10 needs a path the preset does not give.
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right));
    app.update(key(KeyCode::Right));
    assert_snapshot!(at(&app));
}

#[test]
fn setup_cross_architecture_with_hinton_kd() {
    let mut app = app();
    for code in [KeyCode::Down; 5] {
        app.update(key(code));
    }
    app.update(key(KeyCode::Right)); // student: mlp
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right)); // a wider MLP
    app.update(key(KeyCode::Down));
    for _ in 0..4 {
        app.update(key(KeyCode::Right)); // BAN -> BAN+L -> CWTM -> DKPP -> KD
    }
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right)); // temperature 1.5
    assert_snapshot!(at(&app));
}

#[test]
fn setup_unavailable_device() {
    let mut app = app();
    for _ in 0..12 {
        app.update(key(KeyCode::Down));
    }
    app.update(key(KeyCode::Right));
    assert_snapshot!(at(&app));
}

#[test]
fn run_training_the_first_student() {
    let mut app = app();
    live(&mut app, 4, 2);
    assert_snapshot!(at(&app));
}

#[test]
fn run_paused_with_the_eta_counted_down() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(Msg::Tick(std::time::Duration::from_secs(10)));
    app.update(key(KeyCode::Char('p')));
    app.update(Msg::Tick(std::time::Duration::from_secs(10)));
    assert_snapshot!(at(&app));
}

#[test]
fn run_asks_before_cancelling() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('c')));
    assert_snapshot!(at(&app));
}

#[test]
fn run_asks_before_quitting() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('q')));
    assert_snapshot!(at(&app));
}

#[test]
fn run_finished() {
    let mut app = app();
    live(&mut app, 9, 0);
    assert_snapshot!(at(&app));
}

#[test]
fn run_failed() {
    let mut app = app();
    let mut run = live(&mut app, 1, 1);
    run.emit(Event::Failed {
        message: "data.train_samples: 200 is more than the 100 images of class 3".into(),
    });
    run.exit(&mut app);
    assert_snapshot!(at(&app));
}

#[test]
fn run_watched_from_another_session() {
    let mut app = app();
    let snapshot = Snapshot {
        experiment: tiny(),
        epochs: (1..=3)
            .map(|e| record(0, e, 2.0 - 0.3 * e as f64, 30.0 - 5.0 * e as f64))
            .chain([record(1, 1, 1.5, 22.0)])
            .collect(),
        results: Some(results(RunState::Running, vec![result(0, 10.0)])),
    };
    app.update(Msg::Opened {
        dir: PathBuf::from("runs/tiny-20260101-120000"),
        snapshot: snapshot.clone(),
    });
    // Its process lives (elsewhere) and its directory holds no events.jsonl: the view is the
    // records', and the run can be paused and stopped from here.
    app.update(Msg::Polled {
        snapshot,
        events: Vec::new(),
        progress: None,
        owner: alive(),
    });
    assert!(app.run.as_ref().unwrap().is_live_running());
    assert_snapshot!(at(&app));
}

#[test]
fn generations_while_training() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(at(&app));
}

#[test]
fn generations_finished_wide() {
    let mut app = app();
    live(&mut app, 9, 0);
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(render(&app, 120, 24));
}

#[test]
fn generations_without_a_run() {
    let mut app = app();
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(at(&app));
}

#[test]
fn ensembles_with_a_pinned_comparison() {
    let mut app = app();
    live(&mut app, 9, 0);
    let effects = app.update(key(KeyCode::Char('4')));
    serve_files(&mut app, effects);
    app.update(key(KeyCode::Char(' '))); // Teacher
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // + BAN-1
    app.update(key(KeyCode::Char('m')));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // + BAN-2
    app.update(key(KeyCode::Char('a'))); // logit averaging
    assert_snapshot!(at(&app));
}

#[test]
fn ensembles_empty() {
    let mut app = app();
    live(&mut app, 9, 0);
    let effects = app.update(key(KeyCode::Char('4')));
    serve_files(&mut app, effects);
    assert_snapshot!(at(&app));
}

#[test]
fn runs_list() {
    let mut app = app();
    app.update(key(KeyCode::Char('5')));
    app.update(Msg::Runs(vec![
        RunEntry {
            dir: PathBuf::from("runs/tiny-20260102-090000"),
            name: "tiny".into(),
            state: None,
            finished: 0,
            generations: 3,
            owner_gone: false,
        },
        RunEntry {
            dir: PathBuf::from("runs/quick-20260101-120000"),
            name: "quick".into(),
            state: Some(RunState::Finished),
            finished: 3,
            generations: 3,
            owner_gone: false,
        },
        // Its process was killed while it trained.
        RunEntry {
            dir: PathBuf::from("runs/quick-20251231-230000"),
            name: "quick".into(),
            state: Some(RunState::Running),
            finished: 1,
            generations: 3,
            owner_gone: true,
        },
    ]));
    app.update(key(KeyCode::Down));
    assert_snapshot!(at(&app));
}

#[test]
fn help_overlay() {
    let mut app = app();
    app.update(key(KeyCode::Char('?')));
    assert_snapshot!(at(&app));
}

#[test]
fn too_small_asks_for_a_larger_terminal() {
    assert_snapshot!(render(&app(), 50, 10));
}

#[test]
fn no_size_panics() {
    let mut apps = Vec::new();
    for screen in ['1', '2', '3', '4', '5'] {
        let mut app = app();
        live(&mut app, 9, 0);
        let effects = app.update(key(KeyCode::Char(screen)));
        serve_files(&mut app, effects);
        app.update(key(KeyCode::Char(' ')));
        app.update(key(KeyCode::Char('m')));
        apps.push(app.clone());
        app.update(key(KeyCode::Char('?')));
        apps.push(app);
    }
    let mut confirming = app();
    live(&mut confirming, 4, 1);
    confirming.update(key(KeyCode::Char('q')));
    apps.push(confirming);
    for app in &apps {
        for width in 1..=130 {
            for height in 1..=40 {
                render(app, width, height);
            }
        }
    }
}

#[test]
fn run_in_the_first_epoch() {
    let mut app = app();
    live(&mut app, 0, 3);
    assert_snapshot!(at(&app));
}

#[test]
fn run_whose_owner_is_gone() {
    let mut app = app();
    let mut run = live(&mut app, 4, 2);
    run.owner = banbench::tui::run_view::Owner::Stale {
        why: "stale: owner gone 3m ago".into(),
    };
    run.poll(&mut app);
    assert_snapshot!(at(&app));
}

use banbench::experiment::Experiment;
use banbench::run_dir::records::EnsembleResult;
use banbench::tui::app::Effect;
use banbench::tui::run_view::Owner;

/// A run like [`live`]'s of `experiment`, launched here, that writes `events`.
fn live_with(app: &mut App, experiment: Experiment, events: Vec<Event>) -> FakeRun {
    let mut run = FakeRun::launch(
        app,
        RUN_DIR,
        experiment,
        results(RunState::Running, Vec::new()),
    );
    let ended = matches!(events.last(), Some(Event::Ended(_)));
    for event in events {
        run.send(app, event);
    }
    if ended {
        run.exit(app);
    }
    run
}

#[test]
fn header_cuts_a_long_run_name_and_state_short_of_the_tabs() {
    let mut app = app();
    let mut spec = tiny_spec();
    spec.name = "cifar100-densenet-teacher-with-five-born-again-generations".into();
    let mut run = live_with(
        &mut app,
        Experiment::Vision(Box::new(spec)),
        live_events(4, 2),
    );
    run.owner = Owner::Stale {
        why: "stale: owner gone 3m ago".into(),
    };
    run.poll(&mut app);
    app.update(Msg::OpenFailed(
        "runs/cifar100-densenet-teacher-with-five-born-again-generations-20260101-120000/control: \
         Permission denied (os error 13)"
            .into(),
    ));
    assert_snapshot!(at(&app));
}

#[test]
fn ensembles_show_a_failed_read_below_the_table() {
    let mut app = app();
    live(&mut app, 9, 0);
    let mut pending = app.update(key(KeyCode::Char('4')));
    while let Some(effect) = pending.pop() {
        let msg = match effect {
            Effect::ReadLabels => Msg::Labels(Ok(labels())),
            Effect::ReadLogits { generation: 1, .. } => Msg::Logits {
                generation: 1,
                logits: Err(format!(
                    "{RUN_DIR}/logits/gen-1.f32: expected 32 bytes (8 values of f32), found 12"
                )),
            },
            Effect::ReadLogits { generation, .. } => Msg::Logits {
                generation,
                logits: Ok(logits(generation)),
            },
            _ => continue,
        };
        pending.extend(app.update(msg));
    }
    app.update(key(KeyCode::Char(' '))); // Teacher
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // + BAN-1, whose logits are damaged
    assert_snapshot!(at(&app));
}

#[test]
fn generations_show_long_ensemble_names_whole() {
    let mut app = app();
    // Ens*2 renamed as presets name theirs, and one name too long even for the widened column.
    let long = |ensembles: Vec<EnsembleResult>| -> Vec<EnsembleResult> {
        ensembles
            .into_iter()
            .flat_map(|e| {
                let mut all = e.clone();
                all.name = "Teacher+BAN-1+BAN-2".into();
                all.members = vec![0, 1, 2];
                let mut logits = e;
                logits.name = "BAN-1+BAN-2 by logit averaging".into();
                logits.average = banbench::spec::Averaging::Logits;
                [all, logits]
            })
            .collect()
    };
    let events = live_events(9, 0)
        .into_iter()
        .map(|event| match event {
            Event::GenerationDone {
                generation,
                ensembles,
            } => Event::GenerationDone {
                generation,
                ensembles: long(ensembles),
            },
            Event::Ended(mut r) => {
                r.ensembles = long(r.ensembles);
                Event::Ended(r)
            }
            other => other,
        })
        .collect();
    live_with(&mut app, tiny(), events);
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(at(&app));
}
