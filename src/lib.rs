//! banbench: a terminal lab bench for Born-Again Neural Networks (Furlanello et al., ICML 2018).
//!
//! The worker side (`train`, `models`, `distill`) owns burn; the driver side (`headless`, and the
//! terminal UI) hears from it through `events` and reads the `run_dir` format. Both read `spec`
//! and `arch` (shapes, layouts, parameter counts, FLOPs), which are plain data without burn, as
//! is `data`.

pub mod arch;
pub mod bench;
pub mod data;
pub mod device;
pub mod distill;
pub mod ensemble;
pub mod events;
pub mod headless;
pub mod lm;
pub mod models;
pub mod run_dir;
pub mod spec;
pub mod table;
pub mod train;
pub mod tui;
pub mod worker;
