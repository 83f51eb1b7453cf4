//! End to end: the real binary in a tmux session (new-session -d, send-keys, capture-pane -p).
//! Opens the TUI, starts a tiny preset, waits for it to finish, builds an ensemble on the
//! Ensembles screen, sees its metrics change as a member is added, and quits. Needs tmux.

mod tmux;

use std::path::Path;
use std::time::{Duration, Instant};

use tmux::Tmux;

const TINY: &str = r#"
name = "tiny"
description = "Teacher and two born-again generations on 200 embedded images."
seed = 3

[data]
source = "embedded"
train_samples = 200
test_samples = 100

[teacher]
arch = "cnn"
width = 4

[schedule]
epochs = 1
batch_size = 50
lr = 0.05

[generations]
count = 2
control = "ban"
"#;

/// The ensemble table's row for `metric`, as shown.
fn row<'a>(screen: &'a str, metric: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(metric))
        .unwrap_or_else(|| panic!("no {metric} row in:\n{screen}"))
        .trim()
}

/// Presses q, waits for the binary to exit, and returns the results.json of the one run it
/// saved under `dir`/runs.
fn quit_and_read_results(tmux: &Tmux, dir: &Path) -> String {
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
    let runs: Vec<_> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    std::fs::read_to_string(runs[0].path().join("results.json")).unwrap()
}

#[test]
fn start_a_tiny_preset_build_an_ensemble_and_quit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("presets")).unwrap();
    std::fs::write(dir.path().join("presets/tiny.toml"), TINY).unwrap();
    let tmux = Tmux::start(dir.path(), env!("CARGO_BIN_EXE_banbench"));

    tmux.wait_for("Ready: Enter starts.", Duration::from_secs(20));
    tmux.keys(&["Enter"]);
    tmux.wait_for("tiny finished", Duration::from_secs(120));

    tmux.keys(&["4"]);
    tmux.wait_for("[ ] Teacher", Duration::from_secs(10));
    tmux.keys(&["Space"]);
    let alone = tmux.wait_for("Members     T ", Duration::from_secs(10));
    tmux.keys(&["Down", "Space"]);
    let pair = tmux.wait_for("Members     T+B1", Duration::from_secs(10));
    // The teacher alone and the teacher with BAN-1 are different ensembles (a barely trained
    // network's top-1 error may not move, its NLL does).
    assert_ne!(row(&alone, "NLL"), row(&pair, "NLL"), "\n{alone}\n{pair}");
    assert!(
        row(&pair, "Top-1 err").split_whitespace().count() >= 4,
        "{pair}"
    );

    let results = quit_and_read_results(&tmux, dir.path());
    assert!(results.contains("\"finished\""), "{results}");
}

const TINY_LM: &str = r#"
name = "tiny-lm"
description = "A teacher LSTM and one BAN+L generation on a generated corpus."
seed = 3
[corpus]
path = "corpus"
[model]
arch = "lstm"
layers = 1
hidden = 12
dropout = 0.1
[schedule]
epochs = 2
batch_size = 4
bptt = 8
lr = 1.0
plateau_factor = 0.25
clip = 5.0
[generations]
count = 1
control = "ban+l"
"#;

/// `n` sentences over a 30-word vocabulary from a fixed linear congruential sequence.
fn sentences(n: usize, seed: u64) -> String {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    (0..n)
        .map(|_| {
            let words: Vec<String> = (0..5 + next() % 6)
                .map(|_| format!("w{}", next() % 30))
                .collect();
            format!(" {} \n", words.join(" "))
        })
        .collect()
}

#[test]
fn start_a_language_preset_from_setup_pin_an_ensemble_and_quit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("presets")).unwrap();
    std::fs::write(dir.path().join("presets/tiny-lm.toml"), TINY_LM).unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    for (split, n, seed) in [("train", 200, 1), ("valid", 30, 2), ("test", 30, 3)] {
        std::fs::write(corpus.join(format!("ptb.{split}.txt")), sentences(n, seed)).unwrap();
    }
    let tmux = Tmux::start(dir.path(), env!("CARGO_BIN_EXE_banbench"));

    let setup = tmux.wait_for("Ready: Enter starts.", Duration::from_secs(20));
    assert!(setup.contains("training tokens"), "{setup}");
    tmux.keys(&["Enter"]);
    let run = tmux.wait_for("Validation perplexity", Duration::from_secs(30));
    assert!(run.contains("Test perplexity"), "{run}");
    tmux.wait_for("tiny-lm finished", Duration::from_secs(120));

    tmux.keys(&["4"]);
    tmux.wait_for("[ ] Teacher", Duration::from_secs(10));
    tmux.keys(&["Space"]);
    tmux.wait_for("Members     T ", Duration::from_secs(10));
    tmux.keys(&["m", "Down", "Space"]);
    let pair = tmux.wait_for("Members     T+B1", Duration::from_secs(10));
    // The pinned teacher beside the teacher + BAN-1 ensemble, with the difference.
    let numbers = row(&pair, "Test ppl")
        .split_whitespace()
        .filter(|w| w.parse::<f64>().is_ok())
        .count();
    assert_eq!(numbers, 3, "{pair}");
    assert!(
        pair.contains("Test perplexity: members and ensemble"),
        "{pair}"
    );

    let results = quit_and_read_results(&tmux, dir.path());
    assert!(
        results.contains("\"finished\"") && results.contains("\"language\""),
        "{results}"
    );
}
