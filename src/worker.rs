//! The worker thread: owns burn and trains a spec's generations; its driver (headless printer
//! or TUI) gets [`Event`]s over a channel and steers it through [`RunControl`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;

use crate::device::DeviceChoice;
use crate::events::{Event, Results};
use crate::run_dir::RunDir;
use crate::spec::Spec;
use crate::train::{self, RunData};

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

/// A training run on its own thread.
pub struct Worker {
    pub events: Receiver<Event>,
    pub control: Arc<RunControl>,
    pub handle: JoinHandle<Result<Results>>,
}

/// Starts training `spec` into `run_dir`. A failure is also sent as [`Event::Failed`], so a
/// driver that only reads events still sees it.
pub fn spawn(spec: Spec, data: RunData, device: DeviceChoice, run_dir: RunDir) -> Result<Worker> {
    let control = Arc::new(RunControl::default());
    let (sender, events) = channel();
    let worker_control = control.clone();
    let handle = std::thread::Builder::new()
        .name(WORKER_THREAD.into())
        .spawn(move || {
            let mut emit = |e: Event| {
                let _ = sender.send(e);
            };
            let outcome = train::run(&spec, &data, device, &run_dir, &worker_control, &mut emit);
            if let Err(e) = &outcome {
                emit(Event::Failed(format!("{e:#}")));
            }
            outcome
        })?;
    Ok(Worker {
        events,
        control,
        handle,
    })
}
