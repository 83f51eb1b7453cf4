//! Language models: the paper's one result outside vision (Table 6, Penn Treebank). Born-again
//! LSTM and CNN-LSTM language models trained with BAN+L, through the same run directory and
//! events as the vision runs.
//!
//! `corpus` reads Mikolov-form corpora and lays them out for truncated BPTT, `model` holds the
//! LSTM LM (tied weights) and the CNN-LSTM, and `spec` the TOML spec; `crate::task::language` trains them.

pub mod corpus;
pub mod model;
pub mod spec;
