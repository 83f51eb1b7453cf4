//! The real binary in a tmux session of a server of the test's own (-L), so a test never
//! touches the user's sessions: new-session -d, send-keys, capture-pane -p. Needs tmux.
// Each test file that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A session on a tmux server of its own (-L), so the test never touches the user's sessions.
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs (install it: apt-get install tmux)")
    }

    pub fn start(dir: &Path, command: &str) -> Tmux {
        // One server per test: the tests of this file run in parallel in one process.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "banbench-e2e-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::SeqCst)
        );
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

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend(keys);
        assert!(self.tmux(&args).status.success());
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    /// Ends the server and everything in its sessions, as a dropped SSH connection does.
    pub fn kill_server(&self) {
        let _ = self.tmux(&["kill-server"]);
    }

    pub fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", &self.session])
            .status
            .success()
    }

    /// Waits until the screen contains `text`; returns the screen.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> String {
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
