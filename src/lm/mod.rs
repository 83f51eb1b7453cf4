//! Language models: the paper's one result outside vision (Table 6, Penn Treebank). Born-again
//! LSTM and CNN-LSTM language models trained with BAN+L, through the same run directory and
//! events as the vision runs.
//!
//! `corpus` reads Mikolov-form corpora and lays them out for truncated BPTT, `model` holds the
//! LSTM LM (tied weights) and the CNN-LSTM, `spec` the TOML preset, `train` the generation loop,
//! `table` the Table 6 preset and `headless` the command-line driver.

pub mod corpus;
pub mod headless;
pub mod model;
pub mod spec;
pub mod table;
pub mod train;

pub use spec::{LmSpec, is_lm_source};
