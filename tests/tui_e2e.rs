//! End to end: the real binary in a tmux session (new-session -d, send-keys, capture-pane -p).
//! Opens the TUI, starts a tiny preset, waits for it to finish, builds an ensemble on the
//! Ensembles screen, sees its metrics change as a member is added, and quits. Needs tmux.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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

/// A session on a tmux server of its own (-L), so the test never touches the user's sessions.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs (install it: apt-get install tmux)")
    }

    fn start(dir: &Path, command: &str) -> Tmux {
        let name = format!("banbench-e2e-{}", std::process::id());
        let tmux = Tmux {
            socket: name.clone(),
            session: name,
        };
        let dir = dir.to_str().unwrap();
        let o = tmux.tmux(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            "100",
            "-y",
            "30",
            "-c",
            dir,
            command,
        ]);
        assert!(
            o.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        tmux
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend(keys);
        assert!(self.tmux(&args).status.success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", &self.session])
            .status
            .success()
    }

    /// Waits until the screen contains `text`; returns the screen.
    fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "waited {timeout:?} for {text:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // The server is this test's own (-L): stopping it ends only what the test started.
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The ensemble table's row for `metric`, as shown.
fn row<'a>(screen: &'a str, metric: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(metric))
        .unwrap_or_else(|| panic!("no {metric} row in:\n{screen}"))
        .trim()
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

    // What the run saved is on disk.
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    let results = std::fs::read_to_string(runs[0].path().join("results.json")).unwrap();
    assert!(results.contains("\"finished\""), "{results}");
}
