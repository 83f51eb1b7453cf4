//! The worker thread: owns burn and trains a spec's generations (vision or language); its driver (headless printer
//! or TUI) gets [`Event`]s over a channel and steers it through [`RunControl`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;

use crate::events::Event;

/// Pause and stop requests from the driver (keys, Ctrl-C); the worker checks them between
/// batches.
#[derive(Debug, Default)]
pub struct RunControl {
    stop: AtomicBool,
    pause: AtomicBool,
}

impl RunControl {
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
    /// Blocks while paused; returns whether to stop.
    pub fn wait_if_paused(&self) -> bool {
        while self.paused() && !self.stopping() {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stopping()
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
pub fn spawn<R, F>(train: F) -> Result<Worker<R>>
where
    R: Send + 'static,
    F: FnOnce(&RunControl, &mut dyn FnMut(Event)) -> Result<R> + Send + 'static,
{
    let control = Arc::new(RunControl::default());
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
