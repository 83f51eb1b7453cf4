//! The rules ARCHITECTURE.md states, checked on the source: the terminal UI is a client of run
//! directories and knows no burn, no models and no training code; the spec, the architecture
//! arithmetic, the experiment and table types and the run-directory contract are plain data.

use std::path::{Path, PathBuf};

fn sources(under: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(under);
    if root.is_file() {
        return vec![root];
    }
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    assert!(!out.is_empty(), "no sources under src/{under}");
    out
}

/// Every line of the sources under `under` that uses one of `forbidden` (comments aside).
fn uses(under: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in sources(under) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in forbidden {
                if code.contains(f) {
                    found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
                }
            }
        }
    }
    found
}

/// The modules that own burn: the run process's side.
const BURN_SIDE: &[&str] = &[
    "burn",
    "crate::models",
    "crate::task",
    "crate::chain",
    "crate::worker",
    "crate::headless",
    "crate::distill",
    "crate::bench",
    "crate::lm::model",
];

#[test]
fn the_tui_knows_no_burn_models_or_training() {
    let found = uses("tui", BURN_SIDE);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn specs_architectures_experiments_and_records_are_plain_data() {
    for module in [
        "spec",
        "arch",
        "experiment.rs",
        "table.rs",
        "run_dir",
        "events.rs",
        "ensemble.rs",
        "lm/spec.rs",
        "lm/corpus.rs",
        "data",
        "study",
        "stats.rs",
        "agreement.rs",
        "seeds.rs",
    ] {
        let found = uses(module, BURN_SIDE);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}
