//! Language models as plain data: the `[model]` spec of an LM preset, its validation and
//! parameter counts. `lm::model` builds and runs them.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A language model as a spec names it (`[model]` of an LM preset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LmModelSpec {
    /// Embedding, `layers` LSTM layers of `hidden` units, dropout, and an output layer tied to
    /// the embedding (so the embedding has `hidden` dimensions).
    Lstm {
        layers: usize,
        hidden: usize,
        dropout: f64,
    },
    /// Kim et al. (2016): character embeddings, one convolution per width with max-over-time
    /// pooling, highway layers, then an LSTM and a word softmax.
    CnnLstm {
        char_dim: usize,
        /// Convolution widths, one filter bank each ...
        widths: Vec<usize>,
        /// ... with this many filters.
        filters: Vec<usize>,
        highway: usize,
        layers: usize,
        hidden: usize,
        dropout: f64,
    },
}

impl fmt::Display for LmModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmModelSpec::Lstm { layers, hidden, .. } => write!(f, "lstm-{layers}x{hidden}-tied"),
            LmModelSpec::CnnLstm {
                filters,
                highway,
                layers,
                hidden,
                ..
            } => {
                write!(
                    f,
                    "cnn-lstm-{}f-{highway}hw-{layers}x{hidden}",
                    filters.iter().sum::<usize>()
                )
            }
        }
    }
}

/// The most LSTM layers, highway layers and character filter banks (widths) a language model
/// may have: far beyond the papers' (2 LSTM layers, 2 highway layers, widths 1 to 7), and a bound
/// on what building the model loops over, where a parameter bound alone would let a million
/// one-unit layers through.
pub const MAX_LAYERS: usize = 100;
/// The widest character convolution (a filter bank reads this many characters of a word).
pub const MAX_CHAR_WIDTH: usize = 64;

impl LmModelSpec {
    /// Problems with the numbers, as messages naming the field.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let (layers, hidden, dropout) = match self {
            LmModelSpec::Lstm {
                layers,
                hidden,
                dropout,
            } => (*layers, *hidden, *dropout),
            LmModelSpec::CnnLstm {
                char_dim,
                widths,
                filters,
                highway,
                layers,
                hidden,
                dropout,
            } => {
                if widths.is_empty() || widths.len() != filters.len() {
                    out.push((
                        "model.filters".into(),
                        "needs one filter count per width, and at least one width".into(),
                    ));
                }
                if widths.contains(&0) || filters.contains(&0) || *char_dim == 0 {
                    out.push((
                        "model.widths".into(),
                        "widths, filters and char_dim must be positive".into(),
                    ));
                }
                if widths.len() > MAX_LAYERS || widths.iter().any(|&w| w > MAX_CHAR_WIDTH) {
                    out.push((
                        "model.widths".into(),
                        format!(
                            "expected at most {MAX_LAYERS} widths of at most {MAX_CHAR_WIDTH} characters each"
                        ),
                    ));
                }
                if *highway > MAX_LAYERS {
                    out.push((
                        "model.highway".into(),
                        format!("expected at most {MAX_LAYERS} highway layers, found {highway}"),
                    ));
                }
                (*layers, *hidden, *dropout)
            }
        };
        if layers == 0 || hidden == 0 {
            out.push((
                "model.layers".into(),
                "layers and hidden must be positive".into(),
            ));
        }
        if layers > MAX_LAYERS {
            out.push((
                "model.layers".into(),
                format!("expected at most {MAX_LAYERS} LSTM layers, found {layers}"),
            ));
        }
        if !(0.0..1.0).contains(&dropout) {
            out.push((
                "model.dropout".into(),
                format!("{dropout} is not in [0, 1)"),
            ));
        }
        if out.is_empty() {
            // A lower bound: the smallest vocabulary (one word, one character). The corpus's
            // own is checked once it is loaded (`lm::corpus::load_corpus`).
            if let Err(message) = check_size(self, 1, 1) {
                out.push(("model.hidden".into(), message));
            }
        }
        out
    }
}

/// burn's LSTM gate: an input and a hidden affine map, each with a bias (as PyTorch's two
/// biases); `None` when the count overflows.
fn lstm_params(input: usize, hidden: usize) -> Option<usize> {
    let maps = input
        .checked_add(hidden)?
        .checked_add(2)?
        .checked_mul(hidden)?;
    maps.checked_mul(4)
}

/// Trainable parameters, counted the way `LanguageModel::new` (in `lm::model`) builds them.
/// Saturates at `usize::MAX` for a model too large to count (validation refuses those);
/// `checked_parameter_count` says so instead.
pub fn parameter_count(spec: &LmModelSpec, vocab: usize, chars: usize) -> usize {
    checked_parameter_count(spec, vocab, chars).unwrap_or(usize::MAX)
}

/// Trainable parameters, or `None` when the count overflows (or `layers` is 0, which has no
/// first layer to count).
pub fn checked_parameter_count(spec: &LmModelSpec, vocab: usize, chars: usize) -> Option<usize> {
    let sum = |terms: &[Option<usize>]| {
        terms
            .iter()
            .try_fold(0usize, |total, t| total.checked_add((*t)?))
    };
    match spec {
        LmModelSpec::Lstm { layers, hidden, .. } => {
            // Tied: the embedding is also the output matrix; only the output bias is extra.
            sum(&[
                vocab.checked_mul(*hidden),
                lstm_params(*hidden, *hidden).and_then(|p| p.checked_mul(*layers)),
                Some(vocab),
            ])
        }
        LmModelSpec::CnnLstm {
            char_dim,
            widths,
            filters,
            highway,
            layers,
            hidden,
            ..
        } => {
            let features = filters
                .iter()
                .try_fold(0usize, |total, &f| total.checked_add(f))?;
            let convs = widths
                .iter()
                .zip(filters)
                .try_fold(0usize, |total, (w, f)| {
                    total.checked_add(w.checked_mul(*char_dim)?.checked_mul(*f)?.checked_add(*f)?)
                })?;
            let highway_layer = features
                .checked_mul(features)?
                .checked_add(features)?
                .checked_mul(2)?;
            sum(&[
                chars.checked_mul(*char_dim),
                Some(convs),
                highway.checked_mul(highway_layer),
                lstm_params(features, *hidden),
                layers
                    .checked_sub(1)
                    .and_then(|more| lstm_params(*hidden, *hidden)?.checked_mul(more)),
                hidden.checked_mul(vocab),
                Some(vocab),
            ])
        }
    }
}

/// Whether the model's parameters over `vocab` words and `chars` characters can be counted and
/// stay within `arch::MAX_PARAMETERS`.
pub fn check_size(spec: &LmModelSpec, vocab: usize, chars: usize) -> Result<(), String> {
    match checked_parameter_count(spec, vocab, chars) {
        None => Err(format!(
            "{spec} over {vocab} words has more parameters than can be counted"
        )),
        Some(n) if n > super::MAX_PARAMETERS => Err(format!(
            "{spec} over {vocab} words has {n} parameters, more than the {} any machine here can train",
            super::MAX_PARAMETERS
        )),
        Some(_) => Ok(()),
    }
}

/// Estimated bytes to train one generation of `spec` over `vocab` on windows of `batch` rows of
/// `bptt` steps, with a teacher of the same architecture (every generation after the first
/// has one), or to evaluate it on `eval_batch` rows:
///
/// - the student's weights and gradients (plain SGD: no momentum) and the teacher's weights,
///   4 bytes per parameter each;
/// - per token of a window: the embedding (or the character embeddings, convolutions and
///   highway layers), each LSTM layer's gates and states, and the logits, their softmax and
///   the teacher's softmax over the vocabulary; times `arch::BACKWARD_FACTOR` for the backward
///   pass.
///
/// The corpus itself is not included. `None` when a count overflows.
pub fn training_memory(
    spec: &LmModelSpec,
    vocab: &[String],
    batch: usize,
    bptt: usize,
    eval_batch: usize,
) -> Option<u64> {
    let words = vocab.len();
    let params = checked_parameter_count(spec, words, char_count(vocab))? as u64;
    let (layers, hidden, input) = match spec {
        LmModelSpec::Lstm { layers, hidden, .. } => (*layers, *hidden, *hidden as u64),
        LmModelSpec::CnnLstm {
            char_dim,
            widths,
            filters,
            highway,
            layers,
            hidden,
            ..
        } => {
            // Words are spelled to the longest word plus its start and end markers, and at
            // least the widest filter (`lm::model::spell`).
            let longest = vocab.iter().map(|w| w.chars().count()).max().unwrap_or(0) + 2;
            let len = longest.max(widths.iter().copied().max().unwrap_or(0)) as u64;
            let features: u64 = filters.iter().map(|&f| f as u64).sum();
            let chars = len.checked_mul(*char_dim as u64)?;
            let convs = len.checked_mul(features)?;
            let highway = features.checked_mul(3)?.checked_mul(*highway as u64)?;
            (
                *layers,
                *hidden,
                chars.checked_add(convs)?.checked_add(highway)?,
            )
        }
    };
    // Gates (4h) and the cell and hidden states (2h) of every layer.
    let lstm = (hidden as u64).checked_mul(6)?.checked_mul(layers as u64)?;
    let softmaxes = |n: u64| (words as u64).checked_mul(n);
    let per_token = |n: u64| input.checked_add(lstm)?.checked_add(softmaxes(n)?);
    let tokens = |rows: usize| (rows as u64).checked_mul(bptt as u64);
    let weights = params.checked_mul(3)?.checked_mul(super::F32)?;
    let train = per_token(3)?
        .checked_mul(tokens(batch)?)?
        .checked_mul(super::BACKWARD_FACTOR)?
        .checked_mul(super::F32)?;
    let eval = per_token(2)?
        .checked_mul(tokens(eval_batch)?)?
        .checked_mul(super::F32)?;
    weights.checked_add(train.max(eval))
}

/// Character vocabulary size of `vocab` (for parameter counts): its distinct characters plus
/// the padding, start and end ids, as `lm::model::spell` numbers them.
pub fn char_count(vocab: &[String]) -> usize {
    let chars: BTreeSet<char> = vocab.iter().flat_map(|w| w.chars()).collect();
    chars.len() + 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_lstm_sizes_match_table6() {
        let lstm = |layers| LmModelSpec::Lstm {
            layers,
            hidden: 1500,
            dropout: 0.65,
        };
        // 10k vocabulary: 2 x 1500 is about 51M (the paper's "52M"), 1 layer about 33M.
        let two = parameter_count(&lstm(2), 10_000, 51);
        let one = parameter_count(&lstm(1), 10_000, 51);
        assert_eq!(two, 15_000_000 + 2 * 18_012_000 + 10_000);
        assert_eq!(one, 15_000_000 + 18_012_000 + 10_000);
        assert!((50.5e6..51.5e6).contains(&(two as f64)), "{two}");
        assert!((32.5e6..33.5e6).contains(&(one as f64)), "{one}");
    }

    #[test]
    fn kim_large_cnn_lstm_is_about_19m() {
        let spec = LmModelSpec::CnnLstm {
            char_dim: 15,
            widths: (1..=7).collect(),
            filters: vec![50, 100, 150, 200, 200, 200, 200],
            highway: 2,
            layers: 2,
            hidden: 650,
            dropout: 0.5,
        };
        let n = parameter_count(&spec, 10_000, 51) as f64;
        assert!((18.5e6..19.9e6).contains(&n), "{n}");
    }

    #[test]
    fn counts_that_overflow_are_refused_and_memory_is_estimated() {
        let lstm = |layers, hidden| LmModelSpec::Lstm {
            layers,
            hidden,
            dropout: 0.5,
        };
        assert_eq!(checked_parameter_count(&lstm(1, 1 << 40), 10, 5), None);
        assert_eq!(parameter_count(&lstm(1, 1 << 40), 10, 5), usize::MAX);
        assert!(
            check_size(&lstm(1, 1 << 40), 10, 5)
                .unwrap_err()
                .contains("counted")
        );
        let err = check_size(&lstm(2, 30_000), 10_000, 51).unwrap_err();
        assert!(err.contains("more than the 4000000000"), "{err}");
        assert!(check_size(&lstm(2, 1500), 10_000, 51).is_ok());
        // Zaremba's large model on Penn Treebank, batch 32 x 35 steps: 51M parameters (0.6 GB
        // of weights, gradients and the teacher's weights) and about 50k floats per token.
        let vocab: Vec<String> = (0..10_000).map(|i| format!("w{i}")).collect();
        let bytes = training_memory(&lstm(2, 1500), &vocab, 32, 35, 10).unwrap() as f64;
        assert!((0.8e9..1.5e9).contains(&bytes), "{bytes}");
        assert_eq!(training_memory(&lstm(2, 1 << 40), &vocab, 32, 35, 10), None);
        let problems = lstm(1, 1 << 40).problems();
        assert_eq!(problems[0].0, "model.hidden", "{problems:?}");
    }
}
