//! The two tasks a chain of generations can learn, each a [`Trainer`](crate::chain::Trainer)
//! for the one generation loop in `crate::chain`.

mod first_stage;
pub mod language;
pub mod vision;

use anyhow::Result;

use crate::chain::{self, Trainer};
use crate::device::DeviceChoice;
use crate::events::Event;
use crate::experiment::Experiment;
use crate::run_dir::RunDir;
use crate::run_dir::records::Results;
use crate::worker::RunControl;
use language::LanguageTrainer;
use vision::VisionTrainer;

/// An experiment with its data loaded, ready to train.
pub enum Loaded {
    Vision(Box<VisionTrainer>),
    Language(Box<LanguageTrainer>),
}

impl Loaded {
    /// Loads the experiment's data set or corpus; a missing or broken file is the error.
    pub fn new(experiment: &Experiment) -> Result<Loaded> {
        Ok(match experiment {
            Experiment::Vision(spec) => {
                Loaded::Vision(Box::new(VisionTrainer::new(spec, vision::load_data(spec)?)))
            }
            Experiment::Language(spec) => Loaded::Language(Box::new(LanguageTrainer::new(
                spec,
                crate::lm::corpus::load_corpus(spec)?,
            )?)),
        })
    }

    /// Refuses a chain whose models and batches would need more memory than `device` has free
    /// (an estimate), naming the data and the field to change. `units` runs share the device side by side (`run --jobs N` on one CPU), each with its
    /// part of the free memory.
    pub fn check_memory(&self, device: DeviceChoice, units: usize) -> Result<()> {
        let Some(free) = device.free_memory() else {
            return Ok(());
        };
        let share = free / units.max(1) as u64;
        let (place, checked) = match self {
            Loaded::Vision(t) => (t.dataset(), t.check_memory(share)),
            Loaded::Language(t) => (t.dataset(), t.check_memory(share)),
        };
        let on = match units {
            0 | 1 => format!("on {device}"),
            n => format!("for each of {n} units side by side on {device}"),
        };
        checked.map_err(|m| anyhow::anyhow!("{place}: schedule.batch_size: {m} {on}"))
    }

    /// The loaded data in one line, as `check` shows it.
    pub fn summary(&self) -> String {
        match self {
            Loaded::Vision(t) => format!("data      {}", t.summary()),
            Loaded::Language(t) => format!("corpus    {}", t.summary()),
        }
    }

    /// Trainable parameters of generation `k`.
    pub fn parameters(&self, k: usize) -> usize {
        match self {
            Loaded::Vision(t) => t.parameters(k),
            Loaded::Language(t) => t.parameters(k),
        }
    }

    /// Runs (or resumes) the chain into `run_dir`.
    pub fn run(
        &self,
        device: DeviceChoice,
        run_dir: &RunDir,
        control: &RunControl,
        emit: &mut dyn FnMut(Event),
    ) -> Result<Results> {
        match self {
            Loaded::Vision(t) => chain::run(t.as_ref(), device, run_dir, control, emit),
            Loaded::Language(t) => chain::run(t.as_ref(), device, run_dir, control, emit),
        }
    }
}
