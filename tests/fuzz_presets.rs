//! Every shipped preset (vision, language, paper tables), mutated at random: a value replaced by
//! one of another type or range (huge, negative, zero, NaN and infinite numbers; empty, odd and
//! path-like strings; arrays; tables), keys deleted or added, sections duplicated.
//! `experiment::Preset::load` must answer Ok or Err for each, within a time bound, and never
//! panic; what it accepts must survive what its callers do next (the plan `check` prints, a
//! run directory's spec round trip) and, for a sample of vision chains shrunk to a few images,
//! loading the data and training one epoch.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use banbench::arch;
use banbench::data;
use banbench::device::DeviceChoice;
use banbench::experiment::{Experiment, Preset};
use banbench::run_dir::RunDir;
use banbench::spec::Overrides;
use banbench::task::Loaded;
use banbench::worker::RunControl;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// How long one `Preset::load` (with the checks after it) may take.
const LIMIT: Duration = Duration::from_secs(2);

/// Every preset under presets/, as (path, text).
fn presets() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/presets"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 8, "presets: {out:?}");
    out
}

/// One step along a path into a TOML document.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every value's path in `value`, depth first.
fn paths(value: &toml::Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// The container of `path`'s last step, and that step.
fn parent<'a>(root: &'a mut toml::Value, path: &[Step]) -> Option<&'a mut toml::Value> {
    let mut v = root;
    for step in &path[..path.len() - 1] {
        v = match (v, step) {
            (toml::Value::Table(t), Step::Key(k)) => t.get_mut(k)?,
            (toml::Value::Array(a), Step::Index(i)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value at path number N (modulo the paths) by this one.
    Replace(usize, toml::Value),
    /// Delete the key (or array element) at path number N.
    Delete(usize),
    /// Add `key = value` to the table at path number N (or the top level).
    Insert(usize, String, toml::Value),
    /// Repeat the N-th section header (with the line after it) at the end of the text: a
    /// duplicate table, or one more element of an array of tables.
    Duplicate(usize),
}

fn apply(root: &mut toml::Value, m: &Mutation) {
    let mut all = Vec::new();
    paths(root, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    match m {
        Mutation::Replace(n, value) => {
            let path = &all[n % all.len()];
            match (parent(root, path), path.last()) {
                (Some(toml::Value::Table(t)), Some(Step::Key(k))) => {
                    t.insert(k.clone(), value.clone());
                }
                (Some(toml::Value::Array(a)), Some(Step::Index(i))) => a[*i] = value.clone(),
                _ => {}
            }
        }
        Mutation::Delete(n) => {
            let path = &all[n % all.len()];
            match (parent(root, path), path.last()) {
                (Some(toml::Value::Table(t)), Some(Step::Key(k))) => {
                    t.remove(k);
                }
                (Some(toml::Value::Array(a)), Some(Step::Index(i))) => {
                    a.remove(*i);
                }
                _ => {}
            }
        }
        Mutation::Insert(n, key, value) => {
            let path = &all[n % all.len()];
            let target = match parent(root, path) {
                Some(toml::Value::Table(t)) => match path.last() {
                    Some(Step::Key(k)) => t.get_mut(k),
                    _ => None,
                },
                _ => None,
            };
            match target {
                Some(toml::Value::Table(t)) => {
                    t.insert(key.clone(), value.clone());
                }
                _ => {
                    if let toml::Value::Table(t) = root {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        Mutation::Duplicate(_) => {}
    }
}

/// The mutated preset's text.
fn mutate(text: &str, mutations: &[Mutation]) -> Option<String> {
    let mut root = toml::Value::Table(toml::from_str(text).ok()?);
    for m in mutations {
        apply(&mut root, m);
    }
    let toml::Value::Table(table) = root else {
        unreachable!()
    };
    let mut out = toml::to_string(&table).ok()?;
    for m in mutations {
        if let Mutation::Duplicate(n) = m {
            let lines: Vec<&str> = out.lines().collect();
            let headers: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].starts_with('['))
                .collect();
            if let Some(&i) = headers.get(n % headers.len().max(1)) {
                let copy = format!(
                    "\n{}\n{}\n",
                    lines[i],
                    lines.get(i + 1).copied().unwrap_or("")
                );
                out.push_str(&copy);
            }
        }
    }
    Some(out)
}

fn odd_values() -> impl Strategy<Value = toml::Value> {
    use toml::Value as V;
    let ints = prop_oneof![
        Just(i64::MAX),
        Just(i64::MIN),
        Just(1i64 << 62),
        Just(1i64 << 40),
        Just(1_000_000_000_000),
        Just(-1),
        Just(0),
        Just(1),
        Just(2),
        Just(3),
        any::<i64>(),
        0i64..64,
    ]
    .prop_map(V::Integer);
    let floats = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.5),
        Just(1e300),
        Just(1e-300),
        Just(0.5),
        Just(1.0),
        any::<f64>(),
    ]
    .prop_map(V::Float);
    let strings = prop_oneof![
        Just(String::new()),
        Just("../../x".to_string()),
        Just("/abs/path".to_string()),
        Just(".hidden".to_string()),
        Just("a\nb".to_string()),
        Just("Teacher".to_string()),
        Just("BAN-1".to_string()),
        Just("cnn".to_string()),
        Just("densenet-bc".to_string()),
        Just("coarse".to_string()),
        Just("cifar100".to_string()),
        Just("idx".to_string()),
        Just("smoke".to_string()),
        Just("main:BAN-9".to_string()),
        Just("x".repeat(300)),
        "[a-zA-Z0-9 :*+./-]{0,12}",
    ]
    .prop_map(V::String);
    let arrays = prop_oneof![
        Just(vec![]),
        Just(vec![V::Integer(0)]),
        Just(vec![V::Integer(1), V::Integer(1)]),
        Just(vec![V::Integer(1 << 62), V::Integer(1 << 62)]),
        Just(vec![V::Integer(1_000_000_000_000)]),
        Just(vec![V::Float(f64::NAN)]),
        prop::collection::vec((0i64..40).prop_map(V::Integer), 0..5),
    ]
    .prop_map(V::Array);
    prop_oneof![
        4 => ints,
        3 => floats,
        3 => strings,
        2 => arrays,
        1 => any::<bool>().prop_map(V::Boolean),
        1 => Just(V::Table(toml::Table::new())),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        6 => (any::<usize>(), odd_values()).prop_map(|(n, v)| Mutation::Replace(n, v)),
        2 => any::<usize>().prop_map(Mutation::Delete),
        1 => (
            any::<usize>(),
            prop_oneof![
                Just("batchsize".to_string()),
                Just("student".to_string()),
                Just("ensemble".to_string()),
                Just("paper".to_string()),
                Just("labels".to_string()),
                Just("max_tokens".to_string()),
                Just("stem".to_string()),
                Just("Teacher".to_string()),
            ],
            odd_values()
        )
            .prop_map(|(n, k, v)| Mutation::Insert(n, k, v)),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
    ];
    prop::collection::vec(one, 0..4)
}

/// What became of one mutated preset.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    tried: usize,
    unwritable: usize,
    accepted: usize,
    refused: usize,
}

/// Loads `text` as a preset (under `profile`) on a thread, and for an accepted preset does
/// what `check` and `run` do with it before any data: the plan (models, parameters, FLOPs,
/// ensembles, the memory estimate) and the run directory's spec round trip. Ok(true) when
/// accepted, Ok(false) when refused; Err for a panic or a timeout.
fn load_within_limit(
    dir: &Path,
    text: &str,
    profile: Option<String>,
) -> Result<Option<Preset>, String> {
    let path = dir.join("mutated.toml");
    std::fs::write(&path, text).unwrap();
    let (tx, rx) = channel();
    let started = Instant::now();
    let handle = std::thread::spawn(move || {
        let result = Preset::load(&path, profile.as_deref(), &Overrides::default());
        if let Ok(preset) = &result {
            for (_, e) in preset.experiments() {
                exercise(e);
            }
        }
        let _ = tx.send(result.map_err(|e| format!("{e:#}")));
    });
    match rx.recv_timeout(LIMIT) {
        Ok(result) => {
            handle
                .join()
                .map_err(|_| "panicked after answering".to_string())?;
            Ok(result.ok())
        }
        Err(RecvTimeoutError::Disconnected) => {
            let payload = handle
                .join()
                .expect_err("a thread that did not answer panicked");
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {message}"))
        }
        Err(RecvTimeoutError::Timeout) => Err(format!(
            "no answer within {LIMIT:?} (still running after {:?})",
            started.elapsed()
        )),
    }
}

/// What callers of an accepted experiment do with it before loading data.
fn exercise(e: &Experiment) {
    for k in 0..=e.students() {
        let _ = (e.model_of(k), e.control_of(k));
    }
    for ens in e.ensembles() {
        let _ = e.paper(&ens.name);
    }
    let _ = (e.schedule_summary(), e.row_labels(), e.paper("Teacher"));
    if let Experiment::Vision(spec) = e {
        let shape = data::shape_of(&spec.data);
        for k in 0..=spec.generations.count {
            let m = spec.model_of(k);
            assert!(arch::checked_parameter_count(m, shape).is_some(), "{m}");
            let _ = arch::forward_flops(m, shape);
        }
        let train = spec
            .data
            .train_samples
            .unwrap_or(data::full_train_len(spec.data.source));
        let _ = arch::check_chain_memory(spec, shape, train, u64::MAX);
    }
    // A run directory stores the resolved spec and reads it back on resume.
    let again = Experiment::parse(&e.to_toml(), Path::new("spec.toml"), &Overrides::default());
    match again {
        Ok(again) => assert_eq!(&again, e, "{}", e.to_toml()),
        Err(err) => panic!("the resolved spec is refused: {err}\n{}", e.to_toml()),
    }
}

/// The strategy: a preset (by index), a profile for it, and its mutations.
fn inputs(n: usize) -> impl Strategy<Value = (usize, Option<String>, Vec<Mutation>)> {
    let profiles = prop_oneof![
        3 => Just(None),
        2 => Just(Some("smoke".to_string())),
        1 => Just(Some("full".to_string())),
        1 => Just(Some("nope".to_string())),
    ];
    (0..n, profiles, mutations())
}

/// `cases` from a fixed seed for CI, so a failure there is reproducible;
/// `BANBENCH_FUZZ_CASES=N` runs N from a random seed instead (a longer local search).
fn runner(cases: u32) -> TestRunner {
    let search = std::env::var("BANBENCH_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok());
    TestRunner::new(Config {
        cases: search.unwrap_or(cases),
        rng_seed: match search {
            Some(_) => proptest::test_runner::RngSeed::Random,
            None => proptest::test_runner::RngSeed::Fixed(20261202),
        },
        // Shrinking re-runs the failing case many times; the first failure is reported as is.
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    })
}

fn report_failure(e: TestError<(usize, Option<String>, Vec<Mutation>)>) -> ! {
    panic!("{e}")
}

#[test]
fn mutated_presets_load_or_are_refused_without_panics_or_hangs() {
    let presets = presets();
    let dir = tempfile::tempdir().unwrap();
    let counts = std::cell::RefCell::new(Counts::default());
    let started = Instant::now();
    let result = runner(300).run(&inputs(presets.len()), |(i, profile, mutations)| {
        let (path, text) = &presets[i];
        counts.borrow_mut().tried += 1;
        let Some(mutated) = mutate(text, &mutations) else {
            counts.borrow_mut().unwritable += 1;
            return Ok(());
        };
        // Table presets are loaded under a profile; a chain refuses any.
        let profile = profile.filter(|_| mutated.contains("[table]") || i % 5 == 0);
        match load_within_limit(dir.path(), &mutated, profile.clone()) {
            Ok(Some(_)) => counts.borrow_mut().accepted += 1,
            Ok(None) => counts.borrow_mut().refused += 1,
            Err(why) => {
                return Err(TestCaseError::fail(format!(
                    "{} mutated by {mutations:?} (profile {profile:?}): {why}\n{mutated}",
                    path.display()
                )));
            }
        }
        Ok(())
    });
    let c = *counts.borrow();
    println!(
        "fuzzed presets in {:.1?}: {} tried, {} accepted, {} refused, {} not writable as TOML",
        started.elapsed(),
        c.tried,
        c.accepted,
        c.refused,
        c.unwritable
    );
    if let Err(e) = result {
        report_failure(e);
    }
    assert!(c.accepted > 0 && c.refused > 0, "{c:?}");
}

/// A vision chain cut down to a few images per class, one epoch and at most one student, and
/// validated again as a run directory would.
fn shrunk(e: &Experiment) -> Option<Experiment> {
    let Experiment::Vision(spec) = e else {
        return None;
    };
    let mut spec = spec.clone();
    let classes = data::shape_of(&spec.data).classes;
    spec.data.train_samples = Some(2 * classes);
    spec.data.test_samples = Some(classes);
    spec.data.validation_samples = 0;
    spec.schedule.epochs = 1;
    spec.schedule.milestones.clear();
    spec.schedule.batch_size = spec.schedule.batch_size.min(2 * classes);
    let mut e = Experiment::Vision(spec);
    e.set_students(e.students().min(1));
    Experiment::parse(
        &e.to_toml(),
        Path::new("shrunk.toml"),
        &Overrides::default(),
    )
    .ok()
}

/// At most this many floating-point operations per chain trained here (a few seconds on two
/// CPU cores), and this much memory.
const FLOP_BUDGET: f64 = 3e10;
const MEMORY_BUDGET: u64 = 2_000_000_000;

#[derive(Debug, Default, Clone, Copy)]
struct RunCounts {
    tried: usize,
    accepted_chains: usize,
    loaded: usize,
    load_refused: usize,
    too_large: usize,
    trained: usize,
    train_failed: usize,
}

#[test]
fn accepted_mutated_vision_chains_load_their_data_and_train_an_epoch() {
    let presets: Vec<(PathBuf, String)> = presets()
        .into_iter()
        .filter(|(_, text)| !text.contains("[corpus]") && !text.contains("corpus = "))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    // The tables' CIFAR data, synthetic (`--data DIR` of the smoke profiles).
    let cifar = dir.path().join("cifar");
    for (sub, write) in [
        (
            "cifar-10-batches-bin",
            data::write_synthetic_cifar10 as fn(&Path, u64) -> std::io::Result<()>,
        ),
        ("cifar-100-binary", data::write_synthetic_cifar100),
    ] {
        std::fs::create_dir_all(cifar.join(sub)).unwrap();
        write(&cifar.join(sub), 1).unwrap();
    }
    let overrides = Overrides {
        data: Some(cifar.clone()),
        ..Default::default()
    };
    let counts = std::cell::RefCell::new(RunCounts::default());
    let started = Instant::now();
    let result = runner(24).run(&inputs(presets.len()), |(i, profile, mutations)| {
        let (path, text) = &presets[i];
        counts.borrow_mut().tried += 1;
        // Fewer mutations, so that some are accepted; tables in their smoke profile.
        let mutations = &mutations[..mutations.len().min(1)];
        let Some(mutated) = mutate(text, mutations) else {
            return Ok(());
        };
        let file = dir.path().join("mutated.toml");
        std::fs::write(&file, &mutated).unwrap();
        let profile = mutated
            .contains("[table]")
            .then(|| profile.unwrap_or_else(|| "smoke".into()));
        let Ok(preset) = Preset::load(&file, profile.as_deref(), &overrides) else {
            return Ok(());
        };
        // A sample of each preset's chains: the first two.
        for (_, e) in preset.experiments().into_iter().take(2) {
            let Some(e) = shrunk(e) else { continue };
            counts.borrow_mut().accepted_chains += 1;
            let place = format!(
                "{} mutated by {mutations:?} (profile {profile:?}), chain {}",
                path.display(),
                e.name()
            );
            let loaded = std::panic::catch_unwind(|| Loaded::new(&e))
                .map_err(|_| TestCaseError::fail(format!("{place}: loading panicked")))?;
            let Ok(loaded) = loaded else {
                counts.borrow_mut().load_refused += 1;
                continue;
            };
            counts.borrow_mut().loaded += 1;
            let Experiment::Vision(spec) = &e else {
                unreachable!()
            };
            let shape = data::shape_of(&spec.data);
            let images =
                (spec.data.train_samples.unwrap_or(0) + spec.data.test_samples.unwrap_or(0)) as f64;
            let flops: f64 = (0..=spec.generations.count)
                .map(|k| 3.0 * arch::forward_flops(spec.model_of(k), shape) as f64 * images)
                .sum();
            let memory = arch::chain_memory(spec, shape, images as usize).unwrap_or(u64::MAX);
            if flops > FLOP_BUDGET || memory > MEMORY_BUDGET {
                counts.borrow_mut().too_large += 1;
                continue;
            }
            let run_dir = RunDir::create(
                &dir.path().join(format!("run-{}", counts.borrow().loaded)),
                &e,
            )
            .map_err(|err| TestCaseError::fail(format!("{place}: {err:#}")))?;
            let control = RunControl::default();
            let trained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                loaded.run(DeviceChoice::Flex, &run_dir, &control, &mut |_| {})
            }))
            .map_err(|_| TestCaseError::fail(format!("{place}: training panicked")))?;
            match trained {
                Ok(_) => counts.borrow_mut().trained += 1,
                Err(err) => {
                    counts.borrow_mut().train_failed += 1;
                    println!("{place}: training failed: {err:#}");
                }
            }
        }
        Ok(())
    });
    let c = *counts.borrow();
    println!(
        "mutated vision presets in {:.1?}: {} tried, {} chains accepted and shrunk, {} loaded ({} refused at loading), {} too large to train here, {} trained an epoch, {} failed training",
        started.elapsed(),
        c.tried,
        c.accepted_chains,
        c.loaded,
        c.load_refused,
        c.too_large,
        c.trained,
        c.train_failed
    );
    if let Err(e) = result {
        report_failure(e);
    }
    assert!(c.trained > 0, "{c:?}");
}
