//! One module per screen: its state where it has one of its own, its keys and its drawing. The
//! Run, Generations and Ensembles screens show the followed run (`run_view::RunView`); the Study
//! screen, the followed study; the Units screen, the followed directory of units.

pub mod ensembles;
pub mod generations;
pub mod run;
pub mod runs;
pub mod setup;
pub mod study;
pub mod units;
