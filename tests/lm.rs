//! Language models end to end: the real binary on generated corpora (ptb.*.txt written into a
//! temporary directory), read back through the run directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use banbench::lm::corpus::Corpus;
use banbench::run_dir::RunDir;
use banbench::run_dir::records::{Metric, Results, RunState, Task};

fn banbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Sentences of a small generated grammar (deterministic), one per line, Mikolov style.
fn sentences(n: usize, seed: u64, extra: Option<&str>) -> String {
    let nouns = ["cat", "dog", "bird", "fish", "child", "teacher", "market"];
    let verbs = ["sees", "likes", "finds", "helps", "buys"];
    let mut state = seed;
    let mut pick = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as usize
    };
    let mut out = String::new();
    for i in 0..n {
        let mut s = format!(
            " the {} {} the {}",
            nouns[pick(nouns.len())],
            verbs[pick(verbs.len())],
            nouns[pick(nouns.len())]
        );
        if let Some(word) = extra.filter(|_| i % 10 == 0) {
            s.push_str(&format!(" {word}"));
        }
        out.push_str(&s);
        out.push_str(" \n");
    }
    out
}

/// A corpus directory; valid and test hold a word the training split lacks every 10th line.
fn corpus(dir: &Path) -> PathBuf {
    let path = dir.join("corpus");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("ptb.train.txt"), sentences(300, 1, None)).unwrap();
    std::fs::write(path.join("ptb.valid.txt"), sentences(40, 2, Some("zebra"))).unwrap();
    std::fs::write(path.join("ptb.test.txt"), sentences(40, 3, Some("zebra"))).unwrap();
    path
}

fn tiny_preset(dir: &Path, corpus: &Path, arch: &str) -> PathBuf {
    let model = match arch {
        "lstm" => "arch = \"lstm\"\nlayers = 1\nhidden = 12\ndropout = 0.1",
        _ => {
            "arch = \"cnn-lstm\"\nchar_dim = 4\nwidths = [1, 2]\nfilters = [6, 6]\nhighway = 1\nlayers = 1\nhidden = 12\ndropout = 0.1"
        }
    };
    let text = format!(
        r#"
name = "tiny-lm"
seed = 3
[corpus]
path = "{}"
[model]
{model}
[schedule]
epochs = 2
batch_size = 8
bptt = 10
lr = 1.0
plateau_factor = 0.25
clip = 5.0
[generations]
count = 1
control = "ban+l"
[[ensemble]]
name = "Teacher+BAN-1"
members = [0, 1]
[paper]
Teacher = {{ valid = 75.11, test = 71.87 }}
"#,
        corpus.display()
    );
    let path = dir.join(format!("tiny-{arch}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unknown_words_map_to_unk_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let c = Corpus::load(&corpus(dir.path())).unwrap();
    // One in ten valid/test lines (4 of 40) ends in a word the training split lacks.
    assert!(c.vocab.iter().any(|w| w == "<unk>") && !c.vocab.iter().any(|w| w == "zebra"));
    assert_eq!((c.unknown_valid, c.unknown_test), (4, 4));
    assert_eq!(c.train.len(), 300 * 6, "5 words and <eos> per line");
}

#[test]
fn missing_or_empty_corpus_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path());
    let preset = tiny_preset(dir.path(), &c, "lstm");
    std::fs::remove_file(c.join("ptb.valid.txt")).unwrap();
    let out = banbench(&["check", preset.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("ptb.valid.txt"), "{}", stderr(&out));
    std::fs::write(c.join("ptb.valid.txt"), "\n\n").unwrap();
    let out = banbench(&["check", preset.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ptb.valid.txt: the corpus file has no tokens"),
        "{}",
        stderr(&out)
    );
    let out = banbench(&["check", preset.to_str().unwrap(), "--data", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/no/such/dir: no such corpus directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_lm_specs_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path());
    let preset = tiny_preset(dir.path(), &c, "lstm");
    let text = std::fs::read_to_string(&preset)
        .unwrap()
        .replace("control = \"ban+l\"", "control = \"ban\"");
    std::fs::write(&preset, text).unwrap();
    let out = banbench(&["check", preset.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("generations.control"),
        "{}",
        stderr(&out)
    );
}

/// `bench` measures a language model in target tokens per second, each step kind a line.
#[test]
fn bench_times_a_language_model_in_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path());
    let valid = tiny_preset(dir.path(), &c, "cnn-lstm");
    let out = banbench(&["bench", valid.to_str().unwrap(), "--steps", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kinds: Vec<String> = stdout
        .lines()
        .map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(line["unit"], "tokens", "{l}");
            line["kind"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(kinds, ["train-labels", "train-ban", "inference"]);
}

fn run_tiny(arch: &str) {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path());
    let preset = tiny_preset(dir.path(), &c, arch);
    let out_dir = dir.path().join("run");
    let out = banbench(&[
        "run",
        preset.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let printed = stdout(&out);
    assert!(
        printed.contains("tok/s") && printed.contains("val ppl"),
        "{printed}"
    );
    assert!(
        printed.contains("4 valid and 4 test tokens outside the training vocabulary"),
        "{printed}"
    );

    let run = RunDir::open(&out_dir).unwrap();
    let results: Results = run.results().unwrap().unwrap();
    assert_eq!(results.task, Task::Language);
    assert_eq!(results.state, RunState::Finished);
    assert_eq!(results.generations.len(), 2);
    let vocab = results.vocabulary.unwrap() as f64;
    for g in &results.generations {
        let validation = g.metrics[&Metric::ValidationPerplexity];
        let test = g.metrics[&Metric::TestPerplexity];
        assert!(validation > 1.0 && validation < vocab, "{g:?}");
        assert!(test > 1.0 && test < vocab, "{g:?}");
        assert!(g.best_epoch.is_some_and(|e| (1..=2).contains(&e)));
    }
    assert_eq!(
        results.generations[0].paper.get(&Metric::TestPerplexity),
        Some(&71.87)
    );
    assert_eq!(results.generations[1].control, "BAN+L");
    // The ensemble's perplexity is that of the mean target probabilities saved per generation.
    let probs: Vec<Vec<f32>> = (0..2)
        .map(|k| {
            run.read_outputs(Task::Language, k, results.test_samples)
                .unwrap()
        })
        .collect();
    let expected = banbench::ensemble::ensemble_perplexity(&probs);
    assert_eq!(results.ensembles.len(), 1);
    assert!((results.ensembles[0].metrics[&Metric::TestPerplexity] - expected).abs() < 1e-9);
    // Each member's own perplexity comes back from its saved probabilities.
    let own = banbench::ensemble::ensemble_perplexity(&probs[..1]);
    assert!((own - results.generations[0].metrics[&Metric::TestPerplexity]).abs() < 1e-3 * own);
    // One record per epoch, with the perplexities the Run screen draws.
    let epochs = run.metrics().unwrap();
    assert_eq!(epochs.len(), 4);
    assert!(
        epochs
            .iter()
            .all(|r| r.validation_perplexity.is_some() && r.test_perplexity.is_some())
    );
    assert!(
        std::fs::read_to_string(out_dir.join("results.md"))
            .unwrap()
            .contains("| Teacher+BAN-1 |")
    );
    let report = banbench(&["report", out_dir.to_str().unwrap()]);
    assert!(
        report.status.success() && stdout(&report).contains("Val ppl"),
        "{}",
        stderr(&report)
    );

    // The same command again resumes: both generations are already done.
    let again = banbench(&[
        "run",
        preset.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("resuming: Teacher, BAN-1 already done"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn tiny_lstm_run_teacher_ban_l_and_ensemble() {
    run_tiny("lstm");
}

#[test]
fn tiny_cnn_lstm_run_teacher_ban_l_and_ensemble() {
    run_tiny("cnn-lstm");
}

#[test]
fn table6_smoke_profile_runs_on_a_generated_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path());
    let preset = concat!(env!("CARGO_MANIFEST_DIR"), "/presets/paper/table6-ptb.toml");
    let out_dir = dir.path().join("table");
    let out = banbench(&[
        "run",
        preset,
        "--profile",
        "smoke",
        "--data",
        c.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let table = std::fs::read_to_string(out_dir.join("results.md")).unwrap();
    for needle in ["| ConvLSTM |", "| LSTM |", "(83.69, ", "(68.56, ", "(52M)"] {
        assert!(table.contains(needle), "{needle} in\n{table}");
    }
    for row in ["ConvLSTM", "LSTM"] {
        let results = RunDir::open(&out_dir.join(row).join("main"))
            .unwrap()
            .results()
            .unwrap()
            .unwrap();
        assert_eq!(results.state, RunState::Finished);
        assert_eq!(results.generations.len(), 2);
    }
}

#[test]
fn inspect_shows_the_paper_model_sizes() {
    let preset = concat!(env!("CARGO_MANIFEST_DIR"), "/presets/paper/table6-ptb.toml");
    let out = banbench(&["inspect", preset]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("lstm-2x1500-tied") && text.contains("51.034M"),
        "{text}"
    );
    assert!(
        text.contains("cnn-lstm-1100f-2hw-2x650") && text.contains("19.373M"),
        "{text}"
    );
}

/// Saving after every window, a kill within BAN+L's second epoch resumes at that window with
/// the student's and the teacher's hidden states as they were: the saved outputs are
/// byte-identical to an uninterrupted run's.
#[test]
fn a_kill_between_two_windows_resumes_with_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path());
    let preset = tiny_preset(dir.path(), &c, "lstm");
    let text = std::fs::read_to_string(&preset).unwrap();
    std::fs::write(&preset, text.replace("epochs = 2", "epochs = 3")).unwrap();
    let out_of = |name: &str| dir.path().join(name);
    let whole = banbench(&[
        "run",
        preset.to_str().unwrap(),
        "--out",
        out_of("whole").to_str().unwrap(),
    ]);
    assert!(whole.status.success(), "{}", stderr(&whole));

    let killed = out_of("killed");
    let args = [
        "run",
        preset.to_str().unwrap(),
        "--out",
        killed.to_str().unwrap(),
        "--save-every",
        "0s",
    ];
    let mut run = Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let saved = killed.join("checkpoints/gen-1.resume.json");
    let started = std::time::Instant::now();
    let within_second = |t: String| t.contains("\"epoch\": 1") && t.contains("\"within\"");
    while !std::fs::read_to_string(&saved).is_ok_and(within_second) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "BAN-1 never saved within its second epoch"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    run.kill().unwrap();
    run.wait().unwrap();

    let again = banbench(&args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("resuming BAN-1 at epoch 2 (1 of 3 epochs saved, and "),
        "{}",
        stdout(&again)
    );
    for k in 0..2 {
        let read = |name: &str| {
            std::fs::read(
                RunDir::open(&out_of(name))
                    .unwrap()
                    .outputs_path(Task::Language, k),
            )
            .unwrap()
        };
        assert!(
            read("whole") == read("killed"),
            "generation {k}'s outputs differ"
        );
    }
}

/// A table study of language models: every chain of Table 6's smoke profile once per seed,
/// compared on test perplexity.
#[test]
fn a_table_study_compares_language_models_on_perplexity() {
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path());
    let preset = concat!(env!("CARGO_MANIFEST_DIR"), "/presets/paper/table6-ptb.toml");
    let out_dir = dir.path().join("study");
    let out = banbench(&[
        "run",
        preset,
        "--profile",
        "smoke",
        "--seeds",
        "1,2",
        "--data",
        c.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let study: banbench::study::StudyResults =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(study.metric, Metric::TestPerplexity);
    let places: Vec<&str> = study.chains.iter().map(|c| c.place.as_str()).collect();
    assert_eq!(places, ["ConvLSTM/main", "LSTM/main"]);
    for chain in &study.chains {
        let ban = chain.rows.iter().find(|r| r.label == "BAN-1").unwrap();
        assert!(ban.values.iter().all(|v| v.is_some_and(|p| p > 1.0)));
        let versus = ban.versus.as_ref().unwrap();
        assert_eq!(versus.paired.n, 2);
        // A language model's saved outputs hold no predictions to compare.
        assert!(versus.mcnemar.iter().all(Option::is_none));
    }
    // Holm's correction spans both chains' comparisons.
    let rows: usize = study.chains.iter().map(|c| c.rows.len() - 1).sum();
    assert!(rows >= 2);
    assert_eq!(study.comparisons, rows);
    let md = std::fs::read_to_string(out_dir.join("results.md")).unwrap();
    assert!(
        md.contains("## LSTM/main") && md.contains("Test ppl per seed"),
        "{md}"
    );
    for seed in ["seed-1", "seed-2"] {
        assert!(
            out_dir.join(seed).join("results.md").exists(),
            "{seed}'s table"
        );
    }
}
