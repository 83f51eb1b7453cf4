//! banbench: a terminal lab bench for Born-Again Neural Networks (Furlanello et al., ICML 2018).
//!
//! The run process (`headless`, `worker`, `chain`, `task`, `models`, `lm`, `distill`, `data`)
//! owns burn; the terminal UI (`tui`) follows runs through their run directory (`run_dir`) and
//! the records and events it holds. `experiment`, `spec`, `table` and `ensemble` are plain data
//! and arithmetic that both sides share. ARCHITECTURE.md draws the map.

pub mod agreement;
pub mod allocator;
pub mod arch;
pub mod bench;
pub mod chain;
pub mod data;
pub mod device;
pub mod distill;
pub mod ensemble;
pub mod events;
pub mod experiment;
pub mod gpu;
pub mod headless;
pub mod lm;
pub mod models;
pub mod plot;
pub mod run_dir;
pub mod seeds;
pub mod slurm;
pub mod spec;
pub mod stats;
pub mod study;
pub mod table;
pub mod task;
pub mod tui;
pub mod units;
pub mod worker;

/// Input refused after a command has started, once what it names has been found on disk (a
/// study directory of other seeds, a unit whose dependencies are not done, a run directory of
/// another spec): the caller's mistake, which the command line reports with exit code 2 like
/// any other bad input.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);
