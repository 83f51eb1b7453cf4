//! Key handling as a state machine: each key's effect and the state it leaves.

mod tui_common;

use banbench::device::DeviceChoice;
use banbench::spec::{Averaging, DataSource};
use banbench::tui::app::{Effect, Exit, Experiment, Msg, Overlay, Screen, Signal};
use banbench::tui::ensembles::Outcome;
use crossterm::event::KeyCode;
use tui_common::*;

#[test]
fn quit_without_a_run_is_immediate() {
    let mut app = app();
    assert_eq!(app.update(key(KeyCode::Char('q'))), vec![]);
    assert_eq!(app.exit, Exit::Now);
}

#[test]
fn quit_while_training_asks_then_stops_and_waits_for_the_worker() {
    let mut app = app();
    live(&mut app, 4, 2);
    assert_eq!(app.update(key(KeyCode::Char('q'))), vec![]);
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit));
    assert_eq!(app.update(key(KeyCode::Char('n'))), vec![]);
    assert_eq!((app.overlay, app.exit), (None, Exit::Stay));

    app.update(key(KeyCode::Char('q')));
    assert_eq!(app.update(key(KeyCode::Char('y'))), vec![Effect::Stop]);
    assert_eq!(app.exit, Exit::WhenWorkerEnds);
    assert!(app.run.as_ref().unwrap().live.unwrap().stopping);
    app.update(Msg::WorkerEnded);
    assert_eq!(app.exit, Exit::Now);
}

#[test]
fn cancel_asks_and_keeps_the_window_open() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('c')));
    assert_eq!(app.overlay, Some(Overlay::ConfirmCancel));
    assert_eq!(app.update(key(KeyCode::Esc)), vec![]);
    assert_eq!(app.overlay, None);
    app.update(key(KeyCode::Char('c')));
    assert_eq!(app.update(key(KeyCode::Char('y'))), vec![Effect::Stop]);
    assert_eq!(app.exit, Exit::Stay);
    // Once stopping, pause means nothing.
    assert_eq!(app.update(key(KeyCode::Char('p'))), vec![]);
}

#[test]
fn pause_toggles_and_freezes_the_eta() {
    let mut app = app();
    live(&mut app, 4, 2);
    let eta = app.run.as_ref().unwrap().eta.unwrap();
    assert_eq!(
        app.update(key(KeyCode::Char('p'))),
        vec![Effect::Pause(true)]
    );
    app.update(Msg::Tick(std::time::Duration::from_secs(5)));
    assert_eq!(app.run.as_ref().unwrap().eta, Some(eta));
    assert_eq!(
        app.update(key(KeyCode::Char('p'))),
        vec![Effect::Pause(false)]
    );
    app.update(Msg::Tick(std::time::Duration::from_secs(5)));
    assert_eq!(app.run.as_ref().unwrap().eta, Some(eta - 5.0));
}

#[test]
fn pause_and_cancel_need_a_run_in_training() {
    let mut app = app();
    live(&mut app, 9, 0); // finished
    assert_eq!(app.update(key(KeyCode::Char('p'))), vec![]);
    assert_eq!(app.update(key(KeyCode::Char('c'))), vec![]);
    assert_eq!(app.overlay, None);
    assert!(app.status.is_some());
}

#[test]
fn ctrl_c_and_signals_stop_and_wait_while_training() {
    for msg in [
        ctrl_c(),
        Msg::Signal(Signal::Hangup),
        Msg::Signal(Signal::Terminate),
        Msg::Signal(Signal::Interrupt),
    ] {
        let mut app = app();
        live(&mut app, 4, 2);
        app.update(key(KeyCode::Char('?'))); // even over an overlay
        assert_eq!(app.update(msg.clone()), vec![Effect::Stop], "{msg:?}");
        assert_eq!(app.exit, Exit::WhenWorkerEnds);
        app.update(Msg::WorkerEnded);
        assert_eq!(app.exit, Exit::Now);

        let mut idle = tui_common::app();
        assert_eq!(idle.update(msg), vec![]);
        assert_eq!(idle.exit, Exit::Now);
    }
}

#[test]
fn screens_switch_by_number_and_tab_and_runs_rescans() {
    let mut app = app();
    app.update(key(KeyCode::Char('3')));
    assert_eq!(app.screen, Screen::Generations);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Ensembles);
    assert_eq!(app.update(key(KeyCode::Tab)), vec![Effect::ScanRuns]);
    assert_eq!(app.screen, Screen::Runs);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Setup);
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.screen, Screen::Runs);
}

#[test]
fn help_opens_and_any_key_closes_it_without_acting() {
    let mut app = app();
    app.update(key(KeyCode::Char('?')));
    assert_eq!(app.overlay, Some(Overlay::Help));
    assert_eq!(app.update(key(KeyCode::Char('q'))), vec![]);
    assert_eq!((app.overlay, app.exit), (None, Exit::Stay));
}

#[test]
fn enter_starts_the_composed_experiment_with_its_overrides() {
    let mut app = app();
    for _ in 0..10 {
        app.update(key(KeyCode::Down));
    }
    assert_eq!(
        app.setup.current_field(),
        banbench::tui::setup::Field::Epochs
    );
    app.update(key(KeyCode::Right)); // 4 epochs: the milestone at 2 of 3 moves to 3 of 4
    let effects = app.update(key(KeyCode::Enter));
    let [
        Effect::Start {
            experiment: Experiment::Vision(spec),
            device,
        },
    ] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(*device, DeviceChoice::Flex);
    assert_eq!(spec.schedule.epochs, 4);
    assert_eq!(spec.schedule.milestones, vec![3]);
    assert!(app.launching);
    // A second Enter while launching does not start another run.
    assert_eq!(app.update(key(KeyCode::Enter)), vec![]);
    app.update(Msg::LaunchFailed("no space left on device".into()));
    assert!(!app.launching);
    assert!(app.status.as_ref().unwrap().contains("no space left"));
}

/// The Setup screen's edited vision spec.
fn draft(app: &banbench::tui::app::App) -> &banbench::spec::Spec {
    match app.setup.draft.as_ref() {
        Some(Experiment::Vision(spec)) => spec,
        other => panic!("no vision draft: {other:?}"),
    }
}

#[test]
fn an_invalid_combination_is_explained_before_enter_and_enter_refuses_it() {
    let mut app = app();
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right));
    app.update(key(KeyCode::Right));
    assert_eq!(draft(&app).data.source, DataSource::Cifar10);
    let why = app.setup.check.spec.clone().unwrap_err();
    assert!(why.contains("data.source") && why.contains("path"), "{why}");
    assert_eq!(app.update(key(KeyCode::Enter)), vec![]);
    assert!(!app.launching);
    // Back to the embedded subset: valid again.
    app.update(key(KeyCode::Left));
    app.update(key(KeyCode::Left));
    assert!(app.setup.check.spec.is_ok());
}

#[test]
fn an_unavailable_device_blocks_the_start() {
    let mut app = app();
    for _ in 0..12 {
        app.update(key(KeyCode::Down));
    }
    app.update(key(KeyCode::Right));
    assert_eq!(app.setup.device, DeviceChoice::TchCpu);
    assert!(
        app.setup
            .check
            .spec
            .as_ref()
            .unwrap_err()
            .contains("LibTorch")
    );
    assert_eq!(app.update(key(KeyCode::Enter)), vec![]);
}

#[test]
fn parameter_counts_follow_the_architecture() {
    let mut app = app();
    let teacher = app.setup.check.teacher_parameters.unwrap();
    assert_eq!(app.setup.check.student_parameters, Some(teacher)); // born-again: the same network
    for _ in 0..4 {
        app.update(key(KeyCode::Down));
    }
    app.update(key(KeyCode::Right)); // CNN-4 -> CNN-8
    assert!(app.setup.check.teacher_parameters.unwrap() > teacher);
    // Editing the experiment drops the paper's numbers, which belong to the preset's.
    assert!(draft(&app).paper.is_empty());
}

#[test]
fn fewer_generations_drop_the_ensembles_they_leave_behind() {
    let mut app = app();
    let Some(Experiment::Vision(spec)) = app.setup.draft.as_mut() else {
        panic!("the tiny preset is a vision spec")
    };
    spec.ensembles = tiny_spec().ensembles();
    for _ in 0..9 {
        app.update(key(KeyCode::Down));
    }
    app.update(key(KeyCode::Left)); // 2 -> 1 generation
    assert_eq!(draft(&app).generations.count, 1);
    assert!(draft(&app).ensembles.is_empty());
    assert!(app.setup.check.spec.is_ok());
}

#[test]
fn the_ensemble_updates_at_once_from_cached_logits() {
    let mut app = app();
    live(&mut app, 9, 0);
    let effects = app.update(key(KeyCode::Char('4')));
    assert_eq!(effects, vec![Effect::ReadLabels]);
    let labels_answer = app.update(Msg::Labels(Ok(labels())));
    assert_eq!(
        labels_answer.len(),
        3,
        "one read per finished generation: {labels_answer:?}"
    );
    serve_files(&mut app, labels_answer);
    // Every file is read once: nothing more is asked for.
    assert_eq!(app.update(key(KeyCode::Char(' '))), vec![]);

    let Outcome::Ready(teacher) = app.lab.outcome.clone() else {
        panic!("{:?}", app.lab.outcome)
    };
    assert_eq!(teacher.metrics.top1_error, 50.0);
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' ')));
    let Outcome::Ready(pair) = app.lab.outcome.clone() else {
        panic!()
    };
    assert_eq!(pair.members, vec![0, 1]);
    assert_eq!(pair.metrics.top1_error, 25.0);

    app.update(key(KeyCode::Char('m')));
    assert_eq!(app.lab.pinned.as_ref(), Some(&pair));
    app.update(key(KeyCode::Char('a')));
    let Outcome::Ready(by_logits) = app.lab.outcome.clone() else {
        panic!()
    };
    assert_eq!(by_logits.average, Averaging::Logits);
    assert_ne!(by_logits.metrics.nll, pair.metrics.nll);
    app.update(key(KeyCode::Char(' '))); // remove BAN-1
    assert_eq!(app.update(key(KeyCode::Char(' '))), vec![]);
    app.update(key(KeyCode::Char('u')));
    assert_eq!(app.lab.pinned, None);
}

#[test]
fn an_unreadable_logits_file_is_reported_not_retried() {
    let mut app = app();
    live(&mut app, 9, 0);
    app.update(key(KeyCode::Char('4')));
    app.update(Msg::Labels(Ok(labels())));
    app.update(Msg::Logits {
        generation: 0,
        logits: Err("gen-0.f32: truncated".into()),
    });
    app.update(key(KeyCode::Char(' ')));
    assert_eq!(
        app.lab.outcome,
        Outcome::Failed("gen-0.f32: truncated".into())
    );
    assert_eq!(app.update(key(KeyCode::Down)), vec![]);
}

#[test]
fn opening_a_run_is_refused_while_one_trains() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('5')));
    app.update(Msg::Runs(vec![banbench::tui::app::RunEntry {
        dir: "runs/other".into(),
        name: "other".into(),
        state: None,
        finished: 0,
        generations: 3,
    }]));
    assert_eq!(app.update(key(KeyCode::Enter)), vec![]);
    assert!(app.status.as_ref().unwrap().contains("cancel it"));
}
