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
                layers,
                hidden,
                dropout,
                ..
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
                (*layers, *hidden, *dropout)
            }
        };
        if layers == 0 || hidden == 0 {
            out.push((
                "model.layers".into(),
                "layers and hidden must be positive".into(),
            ));
        }
        if !(0.0..1.0).contains(&dropout) {
            out.push((
                "model.dropout".into(),
                format!("{dropout} is not in [0, 1)"),
            ));
        }
        out
    }
}

/// burn's LSTM gate: an input and a hidden affine map, each with a bias (as PyTorch's two biases).
fn lstm_params(input: usize, hidden: usize) -> usize {
    4 * (input * hidden + hidden + hidden * hidden + hidden)
}

/// Trainable parameters, counted the way `LanguageModel::new` (in `lm::model`) builds them.
pub fn parameter_count(spec: &LmModelSpec, vocab: usize, chars: usize) -> usize {
    match spec {
        LmModelSpec::Lstm { layers, hidden, .. } => {
            // Tied: the embedding is also the output matrix; only the output bias is extra.
            vocab * hidden + layers * lstm_params(*hidden, *hidden) + vocab
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
            let features: usize = filters.iter().sum();
            let convs: usize = widths
                .iter()
                .zip(filters)
                .map(|(w, f)| w * char_dim * f + f)
                .sum();
            chars * char_dim
                + convs
                + highway * 2 * (features * features + features)
                + lstm_params(features, *hidden)
                + (layers - 1) * lstm_params(*hidden, *hidden)
                + hidden * vocab
                + vocab
        }
    }
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
}
