//! One writer per run directory: a `lock` file naming the owner, and a `heartbeat` file it
//! rewrites while it runs.
//!
//! No flock: run directories live on NFS too, where advisory locks are unreliable. The lock is
//! created exclusively instead, and one left by a crash is taken over: on the same host once its
//! pid no longer runs banbench, on another host once its heartbeat has stopped.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::write_atomic;

/// Silence for this long means an owner on another host is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// Well inside `STALE_AFTER`, so a slow disk or a busy machine never makes a live owner stale.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

const LOCK: &str = "lock";
const HEARTBEAT: &str = "heartbeat";

/// The process that holds a run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// RFC 3339, local time.
    pub started: String,
}

impl Owner {
    /// This process. `started` is fixed at the first call, so it also tells this process
    /// apart from an earlier one that had the same pid (a container restarted as pid 1).
    pub fn this_process() -> Owner {
        static THIS: OnceLock<Owner> = OnceLock::new();
        let this = THIS.get_or_init(|| Owner {
            host: hostname(),
            pid: std::process::id(),
            started: Local::now().to_rfc3339(),
        });
        this.clone()
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (pid, host, started) = (self.pid, &self.host, &self.started);
        match pid {
            // The placeholder for a lock file that is not valid JSON (see `examine`).
            0 => write!(f, "an unknown process (unreadable lock), since {started}"),
            _ => write!(f, "pid {pid} on host {host}, since {started}"),
        }
    }
}

/// Whether a lock's owner still runs. Ages count from its last sign of life: the later of its
/// heartbeat and the lock file's mtime (until its first beat, `heartbeat` may be a former
/// owner's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive {
        heartbeat_age_s: Option<u64>,
    },
    /// Gone: its pid no longer runs on this host, or it was silent for `STALE_AFTER`.
    /// `last_heartbeat` is in unix seconds.
    Stale {
        last_heartbeat: Option<u64>,
        age_s: Option<u64>,
    },
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Liveness::Alive { .. } => write!(f, "running"),
            Liveness::Stale { age_s: None, .. } => write!(f, "stale: owner gone"),
            Liveness::Stale { age_s: Some(s), .. } => match s {
                0..120 => write!(f, "stale: owner gone {s}s ago"),
                120..7200 => write!(f, "stale: owner gone {}m ago", s / 60),
                _ => write!(f, "stale: owner gone {}h ago", s / 3600),
            },
        }
    }
}

#[derive(Debug, Error)]
pub enum LockError {
    #[error(
        "run directory {} is in use by {owner}{}; wait for it, or stop it first",
        .root.display(),
        match .liveness {
            Liveness::Alive { heartbeat_age_s: Some(age) } => format!(" (heartbeat {age} s ago)"),
            _ => String::new(),
        }
    )]
    Held {
        root: PathBuf,
        owner: Owner,
        liveness: Liveness,
    },
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl LockError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> LockError {
        let path = path.to_path_buf();
        move |source| LockError::Io { path, source }
    }
}

/// The lock on a run directory; dropping it releases the directory.
#[derive(Debug)]
pub struct RunLock {
    root: PathBuf,
    owner: Owner,
    stop: mpsc::Sender<()>,
    heartbeat: Option<JoinHandle<()>>,
}

#[derive(Debug)]
pub struct Acquired {
    pub lock: RunLock,
    /// The owner of a stale lock that was taken over, for the caller to mention.
    pub took_over: Option<Owner>,
}

impl RunLock {
    pub fn acquire(root: &Path) -> Result<Acquired, LockError> {
        let path = root.join(LOCK);
        let owner = Owner::this_process();
        let mut took_over = None;
        loop {
            match create_lock(&path, &owner) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(LockError::io(&path)(e)),
            }
            // None: released since create_lock failed, so try again.
            let Some((previous, liveness, seen)) = examine(root).map_err(LockError::io(&path))?
            else {
                continue;
            };
            if let Liveness::Alive { .. } = liveness {
                let root = root.to_path_buf();
                return Err(LockError::Held {
                    root,
                    owner: previous,
                    liveness,
                });
            }
            // Remove only the lock judged stale: if it changed meanwhile, another process took
            // it over first, and the next round judges that one.
            if fs::read(&path).map_err(LockError::io(&path))? == seen {
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(LockError::io(&path)(e));
                    }
                    _ => took_over = Some(previous),
                }
            }
        }
        let (stop, stopped) = mpsc::channel();
        // From here on, dropping `lock` (on an error too) releases the directory.
        let mut lock = RunLock {
            root: root.to_path_buf(),
            owner,
            stop,
            heartbeat: None,
        };
        let beat = root.join(HEARTBEAT);
        write_heartbeat(&beat).map_err(LockError::io(&beat))?;
        let thread = thread::Builder::new().name("run-dir heartbeat".into());
        let beating = beat.clone();
        let thread = thread.spawn(move || {
            // The Drop's send, or its hang-up, ends the wait at once. A failed write (a full
            // disk, an NFS hiccup) is retried at the next beat, long before `STALE_AFTER`.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT_EVERY) {
                let _ = write_heartbeat(&beating);
            }
        });
        lock.heartbeat = Some(thread.map_err(LockError::io(&beat))?);
        Ok(Acquired { lock, took_over })
    }
}

impl RunLock {
    /// [`RunLock::acquire`], giving an owner that still looks alive up to `patience` to release
    /// the lock or fall silent; `waiting` hears of the owner once, when the wait begins. A Slurm
    /// task requeued onto another node right after a hard kill finds its former run's lock
    /// fresh for up to `STALE_AFTER`, so a unit waits a little longer than that.
    pub fn acquire_waiting(
        root: &Path,
        patience: Duration,
        mut waiting: impl FnMut(&LockError),
    ) -> Result<Acquired, LockError> {
        let deadline = std::time::Instant::now() + patience;
        let mut told = false;
        loop {
            match RunLock::acquire(root) {
                Err(held @ LockError::Held { .. }) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(held);
                    }
                    if !told {
                        waiting(&held);
                        told = true;
                    }
                    thread::sleep(left.min(HEARTBEAT_EVERY));
                }
                other => return other,
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.heartbeat.take() {
            let _ = thread.join();
        }
        // Whoever took the lock over (it judged us gone) owns both files now.
        if inspect(&self.root).is_some_and(|(owner, _)| owner == self.owner) {
            let _ = fs::remove_file(self.root.join(HEARTBEAT));
            let _ = fs::remove_file(self.root.join(LOCK));
        }
    }
}

/// The owner of `root`'s lock and whether it still runs; None when there is no lock.
pub fn inspect(root: &Path) -> Option<(Owner, Liveness)> {
    let (owner, liveness, _) = examine(root).ok()??;
    Some((owner, liveness))
}

fn create_lock(path: &Path, owner: &Owner) -> io::Result<()> {
    let json = serde_json::to_vec(owner)?;
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let written = file.write_all(&json).and_then(|()| file.sync_all());
    if written.is_err() {
        // A half-written lock would block the directory for `STALE_AFTER`.
        let _ = fs::remove_file(path);
    }
    written
}

/// The lock's owner, its liveness, and the bytes judged; None when there is no lock.
fn examine(root: &Path) -> io::Result<Option<(Owner, Liveness, Vec<u8>)>> {
    let path = root.join(LOCK);
    let bytes = match fs::read(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        read => read?,
    };
    let mtime = fs::metadata(&path).and_then(|m| m.modified()).ok();
    let beat = fs::read_to_string(root.join(HEARTBEAT)).ok();
    let last = beat
        .and_then(|s| s.trim().parse().ok())
        .max(mtime.map(unix_secs));
    let age_s = last.map(|t| unix_secs(SystemTime::now()).saturating_sub(t));
    let parsed: Option<Owner> = serde_json::from_slice(&bytes).ok();
    let alive = match &parsed {
        Some(owner) if owner.host == Owner::this_process().host => runs_here(owner),
        // Another host, or a lock whose owner crashed while writing it (or is writing it right
        // now): only silence tells.
        _ => age_s.is_none_or(|age| age <= STALE_AFTER.as_secs()),
    };
    let owner = parsed.unwrap_or_else(|| Owner {
        host: "unknown".into(),
        pid: 0,
        started: mtime
            .map(|t| DateTime::<Local>::from(t).to_rfc3339())
            .unwrap_or_default(),
    });
    let liveness = if alive {
        Liveness::Alive {
            heartbeat_age_s: age_s,
        }
    } else {
        Liveness::Stale {
            last_heartbeat: last,
            age_s,
        }
    };
    Ok(Some((owner, liveness, bytes)))
}

/// Whether `owner`, recorded on this host, still runs.
fn runs_here(owner: &Owner) -> bool {
    let this = Owner::this_process();
    if owner.pid == this.pid {
        owner.started == this.started
    } else {
        runs_banbench(owner.pid)
    }
}

/// Whether `pid` runs banbench: a pid that exists may since have been reused by another program.
fn runs_banbench(pid: u32) -> bool {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline.windows(8).any(|w| w == b"banbench"),
        // Unreadable (/proc mounted with hidepid): it exists, so assume it runs.
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

fn write_heartbeat(path: &Path) -> io::Result<()> {
    write_atomic(path, unix_secs(SystemTime::now()).to_string().as_bytes())
}

/// This machine's name, as locks record it.
pub(crate) fn hostname() -> String {
    let read = |path| fs::read_to_string(path).map(|name| name.trim().to_string());
    [read("/proc/sys/kernel/hostname"), read("/etc/hostname")]
        .into_iter()
        .flatten()
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `lock` as a process would have, `age` ago.
    fn write_lock(root: &Path, bytes: &[u8], age: Duration) {
        fs::write(root.join(LOCK), bytes).unwrap();
        let file = OpenOptions::new()
            .write(true)
            .open(root.join(LOCK))
            .unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    fn someone(host: &str, pid: u32) -> (Owner, Vec<u8>) {
        let started = "2026-01-01T00:00:00+00:00".into();
        let owner = Owner {
            host: host.into(),
            pid,
            started,
        };
        let json = serde_json::to_vec(&owner).unwrap();
        (owner, json)
    }

    fn here(pid: u32) -> (Owner, Vec<u8>) {
        someone(&Owner::this_process().host, pid)
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    }

    fn held(root: &Path) -> (Owner, Liveness, String) {
        let err = RunLock::acquire(root).unwrap_err();
        let message = err.to_string();
        let LockError::Held {
            owner, liveness, ..
        } = err
        else {
            panic!("not held: {message}")
        };
        (owner, liveness, message)
    }

    #[test]
    fn a_second_acquire_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(first.took_over, None);
        let (owner, liveness, message) = held(dir.path());
        assert_eq!(owner, Owner::this_process());
        assert_eq!(liveness.to_string(), "running");
        let pid = std::process::id();
        assert!(message.starts_with(&format!("run directory {}", dir.path().display())));
        assert!(
            message.contains(&format!("in use by pid {pid} on host ")),
            "{message}"
        );

        let dropping = std::time::Instant::now();
        drop(first);
        assert!(
            dropping.elapsed() < Duration::from_secs(1),
            "drop waited for a beat"
        );
        assert!(!dir.path().join(LOCK).exists() && !dir.path().join(HEARTBEAT).exists());
        assert_eq!(RunLock::acquire(dir.path()).unwrap().took_over, None);
    }

    #[test]
    fn a_dead_pid_on_this_host_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let (dead, json) = here(dead_pid());
        write_lock(dir.path(), &json, Duration::ZERO);
        assert!(matches!(
            inspect(dir.path()),
            Some((_, Liveness::Stale { .. }))
        ));
        let acquired = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(acquired.took_over, Some(dead));
        assert_eq!(inspect(dir.path()).unwrap().0, Owner::this_process());
    }

    #[test]
    fn a_pid_reused_by_another_program_is_taken_over() {
        // The test binary is banbench-<hash>, so this process passes the check.
        assert!(runs_banbench(std::process::id()));
        let mut sleep = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (other, json) = here(sleep.id());
        write_lock(dir.path(), &json, Duration::ZERO);
        let took_over = RunLock::acquire(dir.path()).map(|acquired| acquired.took_over);
        sleep.kill().unwrap();
        sleep.wait().unwrap();
        assert_eq!(took_over.unwrap(), Some(other));
    }

    #[test]
    fn another_host_is_taken_over_once_its_heartbeat_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (remote, json) = someone("elsewhere.invalid", 4242);
        write_lock(dir.path(), &json, Duration::from_secs(3600));
        let now = unix_secs(SystemTime::now());
        fs::write(dir.path().join(HEARTBEAT), now.to_string()).unwrap();
        assert_eq!(held(dir.path()).0, remote);

        fs::write(dir.path().join(HEARTBEAT), (now - 600).to_string()).unwrap();
        let (_, liveness) = inspect(dir.path()).unwrap();
        assert!(matches!(
            liveness,
            Liveness::Stale {
                age_s: Some(600..=610),
                ..
            }
        ));
        assert_eq!(liveness.to_string(), "stale: owner gone 10m ago");
        assert_eq!(
            RunLock::acquire(dir.path()).unwrap().took_over,
            Some(remote)
        );
    }

    #[test]
    fn a_patient_acquire_waits_for_another_host_to_fall_silent() {
        let dir = tempfile::tempdir().unwrap();
        let (remote, json) = someone("elsewhere.invalid", 4242);
        // Killed hard STALE_AFTER - 3 s ago: its last beat, and the lock itself, are that old.
        let silent = STALE_AFTER - Duration::from_secs(3);
        write_lock(dir.path(), &json, silent);
        let beat = unix_secs(SystemTime::now()) - silent.as_secs();
        fs::write(dir.path().join(HEARTBEAT), beat.to_string()).unwrap();
        assert_eq!(held(dir.path()).0, remote);

        let mut told = Vec::new();
        let waited = std::time::Instant::now();
        let acquired =
            RunLock::acquire_waiting(dir.path(), STALE_AFTER, |held| told.push(held.to_string()))
                .unwrap();
        assert_eq!(acquired.took_over, Some(remote));
        assert!(waited.elapsed() >= Duration::from_secs(2), "did not wait");
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].contains("pid 4242 on host elsewhere.invalid"));
    }

    #[test]
    fn a_patient_acquire_gives_up_on_an_owner_that_keeps_beating() {
        let dir = tempfile::tempdir().unwrap();
        let _owner = RunLock::acquire(dir.path()).unwrap();
        let waited = std::time::Instant::now();
        let err = RunLock::acquire_waiting(dir.path(), Duration::from_millis(300), |_| {});
        assert!(matches!(err, Err(LockError::Held { .. })));
        assert!(waited.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn an_unreadable_lock_is_held_while_fresh_and_taken_over_when_old() {
        let dir = tempfile::tempdir().unwrap();
        write_lock(dir.path(), b"{\"host\": \"gp", Duration::ZERO);
        let (owner, _, message) = held(dir.path());
        assert_eq!(owner.host, "unknown");
        assert!(message.contains("an unknown process"), "{message}");

        write_lock(dir.path(), b"{\"host\": \"gp", 2 * STALE_AFTER);
        let took_over = RunLock::acquire(dir.path()).unwrap().took_over;
        assert_eq!(
            took_over.map(|owner| owner.host).as_deref(),
            Some("unknown")
        );
    }

    #[test]
    fn while_held_inspect_sees_us_alive_and_the_heartbeat_is_recent() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(inspect(dir.path()), None);
        let _lock = RunLock::acquire(dir.path()).unwrap();
        let (owner, liveness) = inspect(dir.path()).unwrap();
        assert_eq!(owner, Owner::this_process());
        assert!(matches!(
            liveness,
            Liveness::Alive {
                heartbeat_age_s: Some(0..=2)
            }
        ));
        let beat = fs::read_to_string(dir.path().join(HEARTBEAT)).unwrap();
        let beat: u64 = beat.parse().unwrap();
        assert!(unix_secs(SystemTime::now()).abs_diff(beat) <= 2);
    }

    #[test]
    fn drop_leaves_a_lock_that_another_process_took_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let (usurper, json) = someone("elsewhere.invalid", 4242);
        write_lock(dir.path(), &json, Duration::ZERO);
        drop(lock);
        assert_eq!(inspect(dir.path()).map(|(owner, _)| owner), Some(usurper));
        assert!(dir.path().join(HEARTBEAT).exists());
    }
}
