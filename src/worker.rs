//! The worker thread: owns burn and trains a spec's generations (vision or language); its driver (headless printer
//! or TUI) gets [`Event`]s over a channel and steers it through [`RunControl`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;

use crate::events::Event;

/// Pause and stop requests from the driver (keys, Ctrl-C), and how often to save within an
/// epoch; the worker checks them between batches.
#[derive(Debug)]
pub struct RunControl {
    stop: AtomicBool,
    pause: AtomicBool,
    save_every: Duration,
    /// Stop after this generation (a teacher unit trains generation 0 alone).
    last_generation: Option<usize>,
    /// How long to wait for the run directory's lock while another process holds it.
    lock_patience: Duration,
}

/// Saves within an epoch come this often by default: a kill loses at most this much work, and
/// a save (a model and its momentum buffers) costs a small fraction of it.
pub const SAVE_EVERY: Duration = Duration::from_secs(300);

impl Default for RunControl {
    fn default() -> Self {
        RunControl::new(SAVE_EVERY)
    }
}

impl RunControl {
    pub fn new(save_every: Duration) -> RunControl {
        RunControl {
            stop: AtomicBool::new(false),
            pause: AtomicBool::new(false),
            save_every,
            last_generation: None,
            lock_patience: Duration::ZERO,
        }
    }
    /// The same, stopping once generation `k` is saved.
    pub fn until_generation(self, k: usize) -> RunControl {
        RunControl {
            last_generation: Some(k),
            ..self
        }
    }
    pub fn last_generation(&self) -> Option<usize> {
        self.last_generation
    }
    /// The same, waiting up to `patience` for a run directory another process holds.
    pub fn waiting_for_lock(self, patience: Duration) -> RunControl {
        RunControl {
            lock_patience: patience,
            ..self
        }
    }
    pub fn lock_patience(&self) -> Duration {
        self.lock_patience
    }
    /// How long training goes between saves within an epoch (each epoch's end is saved too).
    pub fn save_every(&self) -> Duration {
        self.save_every
    }
    /// Asks the worker to stop after the current batch; returns whether a stop was already asked.
    pub fn request_stop(&self) -> bool {
        self.stop.swap(true, Ordering::SeqCst)
    }
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    pub fn set_paused(&self, paused: bool) {
        self.pause.store(paused, Ordering::SeqCst);
    }
    pub fn paused(&self) -> bool {
        self.pause.load(Ordering::SeqCst)
    }
}

/// The worker thread's name; the TUI's panic hook tells worker panics apart by it.
pub const WORKER_THREAD: &str = "banbench-worker";

/// A training run on its own thread; `R` is what it returns.
pub struct Worker<R> {
    pub events: Receiver<Event>,
    pub control: Arc<RunControl>,
    pub handle: JoinHandle<Result<R>>,
}

/// Starts `train` (a task's generation loop, given the controls and an event sink) on the
/// worker thread. A failure is also sent as [`Event::Failed`], so a driver that only reads
/// events still sees it.
pub fn spawn<R, F>(control: RunControl, train: F) -> Result<Worker<R>>
where
    R: Send + 'static,
    F: FnOnce(&RunControl, &mut dyn FnMut(Event)) -> Result<R> + Send + 'static,
{
    let control = Arc::new(control);
    let (sender, events) = channel();
    let worker_control = control.clone();
    let handle = std::thread::Builder::new()
        .name(WORKER_THREAD.into())
        .spawn(move || {
            let mut emit = |e: Event| {
                let _ = sender.send(e);
            };
            let outcome = train(&worker_control, &mut emit);
            if let Err(e) = &outcome {
                emit(Event::Failed {
                    message: format!("{e:#}"),
                });
            }
            outcome
        })?;
    Ok(Worker {
        events,
        control,
        handle,
    })
}
