//! Language models: the LSTM language model with tied input/output weights, and the
//! character-aware CNN-LSTM of Kim et al. (2016). Both map a `batch x steps` window of token ids
//! and the carried hidden state to next-token logits, `(batch * steps) x vocabulary`.

use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, Lstm,
    LstmConfig, LstmState,
};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::{relu, sigmoid, tanh};

use crate::arch::language::LmModelSpec;

/// Weights start uniform in [-r, r], as in Zaremba et al. (2014), whose setup the paper's LSTM
/// follows; burn's default N(0, 1) embedding would make tied output logits huge.
fn uniform(range: f64) -> Initializer {
    Initializer::Uniform {
        min: -range,
        max: range,
    }
}

fn lstm_stack(input: usize, hidden: usize, layers: usize, init: f64, device: &Device) -> Vec<Lstm> {
    (0..layers)
        .map(|l| {
            LstmConfig::new(if l == 0 { input } else { hidden }, hidden, true)
                .with_initializer(uniform(init))
                .init(device)
        })
        .collect()
}

/// The recurrent state carried from one window to the next, one entry per LSTM layer.
pub type State = Vec<LstmState<2>>;

/// Detaches the carried state from the graph: truncated backpropagation stops at the window.
pub fn detach(state: State) -> State {
    state
        .into_iter()
        .map(|s| LstmState::new(s.cell.detach(), s.hidden.detach()))
        .collect()
}

fn run_lstms(
    layers: &[Lstm],
    dropout: &Dropout,
    mut x: Tensor<3>,
    state: Option<State>,
) -> (Tensor<3>, State) {
    let mut state = state
        .map(|s| s.into_iter().map(Some).collect())
        .unwrap_or_else(|| vec![None; layers.len()]);
    let mut out = Vec::with_capacity(layers.len());
    for (layer, s) in layers.iter().zip(state.drain(..)) {
        let (y, next) = layer.forward(x, s);
        x = dropout.forward(y);
        out.push(next);
    }
    (x, out)
}

#[derive(Module, Debug)]
pub struct LstmLm {
    /// `vocab x hidden`; also the output projection (tied weights, Press & Wolf 2017).
    pub embedding: Embedding,
    layers: Vec<Lstm>,
    output_bias: Param<Tensor<1>>,
    dropout: Dropout,
}

impl LstmLm {
    pub fn forward(&self, tokens: Tensor<2, Int>, state: Option<State>) -> (Tensor<2>, State) {
        let [batch, steps] = tokens.dims();
        let x = self.dropout.forward(self.embedding.forward(tokens));
        let (h, state) = run_lstms(&self.layers, &self.dropout, x, state);
        let hidden = h.dims()[2];
        let weight = self.embedding.weight.val();
        let logits = h
            .reshape([batch * steps, hidden])
            .matmul(weight.transpose())
            + self.output_bias.val().unsqueeze_dim(0);
        (logits, state)
    }
}

/// y = t * relu(W_h x) + (1 - t) * x with t = sigmoid(W_t x + GATE_OFFSET) (Srivastava et al.
/// 2015; Kim et al.).
#[derive(Module, Debug)]
struct Highway {
    transform: Linear,
    gate: Linear,
}

/// Kim et al.'s constant added to the transform gate's input (HighwayMLP.lua, `bias = -2`):
/// the gate starts near sigmoid(-2) = 0.12, so a fresh highway layer mostly carries its input
/// through, as Srivastava et al. recommend.
const GATE_OFFSET: f64 = -2.0;

impl Highway {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let t = sigmoid(self.gate.forward(x.clone()).add_scalar(GATE_OFFSET));
        let h = relu(self.transform.forward(x.clone()));
        t.clone() * h + (t.neg() + 1.0) * x
    }
}

#[derive(Module, Debug)]
pub struct CnnLstm {
    chars: Embedding,
    convs: Vec<Conv1d>,
    highway: Vec<Highway>,
    layers: Vec<Lstm>,
    output: Linear,
    dropout: Dropout,
    /// Each word's characters (with start and end markers, padded), `vocab x max_len`, row-major.
    #[module(skip)]
    spelling: Vec<i64>,
    #[module(skip)]
    max_len: usize,
}

impl CnnLstm {
    pub fn forward(&self, tokens: Tensor<2, Int>, state: Option<State>) -> (Tensor<2>, State) {
        let [batch, steps] = tokens.dims();
        let device = tokens.device();
        let ids: Vec<i64> = tokens
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("token ids");
        let mut chars = Vec::with_capacity(ids.len() * self.max_len);
        for &id in &ids {
            let start = id as usize * self.max_len;
            chars.extend_from_slice(&self.spelling[start..start + self.max_len]);
        }
        let words = batch * steps;
        let chars =
            Tensor::<2, Int>::from_data(TensorData::new(chars, [words, self.max_len]), &device);
        // [words, char_dim, max_len] for the convolutions over character positions.
        let x = self.chars.forward(chars).swap_dims(1, 2);
        let pooled: Vec<Tensor<2>> = self
            .convs
            .iter()
            .map(|conv| {
                let y = tanh(conv.forward(x.clone()));
                let channels = y.dims()[1];
                y.max_dim(2).reshape([words, channels])
            })
            .collect();
        let mut features = Tensor::cat(pooled, 1);
        for layer in &self.highway {
            features = layer.forward(features);
        }
        let width = features.dims()[1];
        // Kim et al. drop out between LSTM layers and on the top output only, not the highway
        // output (run_lstms does both).
        let x = features.reshape([batch, steps, width]);
        let (h, state) = run_lstms(&self.layers, &self.dropout, x, state);
        let hidden = h.dims()[2];
        (self.output.forward(h.reshape([words, hidden])), state)
    }
}

/// Either language model, on one device.
#[derive(Module, Debug)]
pub enum LanguageModel {
    Lstm(LstmLm),
    CnnLstm(CnnLstm),
}

/// Spells every word of a vocabulary as character ids: 0 (padding), 1 (start of word), 2 (end
/// of word), then characters in order of appearance. Rows are padded to at least `min_len`, so
/// words shorter than the widest filter still fill one window. Returns (spelling, row length,
/// character vocabulary size).
pub fn spell(vocab: &[String], min_len: usize) -> (Vec<i64>, usize, usize) {
    let max_len = (vocab.iter().map(|w| w.chars().count()).max().unwrap_or(0) + 2).max(min_len);
    let mut ids: Vec<char> = Vec::new();
    let mut spelling = vec![0i64; vocab.len() * max_len];
    for (v, word) in vocab.iter().enumerate() {
        let row = &mut spelling[v * max_len..(v + 1) * max_len];
        row[0] = 1;
        for (i, c) in word.chars().enumerate() {
            let id = match ids.iter().position(|&x| x == c) {
                Some(p) => p,
                None => {
                    ids.push(c);
                    ids.len() - 1
                }
            };
            row[i + 1] = id as i64 + 3;
        }
        row[word.chars().count() + 1] = 2;
    }
    (spelling, max_len, ids.len() + 3)
}

impl LanguageModel {
    pub fn new(spec: &LmModelSpec, vocab: &[String], init: f64, device: &Device) -> LanguageModel {
        let v = vocab.len();
        match spec {
            LmModelSpec::Lstm {
                layers,
                hidden,
                dropout,
            } => LanguageModel::Lstm(LstmLm {
                embedding: EmbeddingConfig::new(v, *hidden)
                    .with_initializer(uniform(init))
                    .init(device),
                layers: lstm_stack(*hidden, *hidden, *layers, init, device),
                output_bias: Param::from_tensor(Tensor::zeros([v], device)),
                dropout: DropoutConfig::new(*dropout).init(),
            }),
            LmModelSpec::CnnLstm {
                char_dim,
                widths,
                filters,
                highway,
                layers,
                hidden,
                dropout,
            } => {
                let (spelling, max_len, chars) =
                    spell(vocab, widths.iter().copied().max().unwrap_or(1));
                let features: usize = filters.iter().sum();
                LanguageModel::CnnLstm(CnnLstm {
                    chars: EmbeddingConfig::new(chars, *char_dim)
                        .with_initializer(uniform(init))
                        .init(device),
                    convs: widths
                        .iter()
                        .zip(filters)
                        .map(|(&w, &f)| {
                            Conv1dConfig::new(*char_dim, f, w)
                                .with_initializer(uniform(init))
                                .init(device)
                        })
                        .collect(),
                    highway: (0..*highway)
                        .map(|_| Highway {
                            transform: LinearConfig::new(features, features)
                                .with_initializer(uniform(init))
                                .init(device),
                            gate: LinearConfig::new(features, features)
                                .with_initializer(uniform(init))
                                .init(device),
                        })
                        .collect(),
                    layers: lstm_stack(features, *hidden, *layers, init, device),
                    output: LinearConfig::new(*hidden, v)
                        .with_initializer(uniform(init))
                        .init(device),
                    dropout: DropoutConfig::new(*dropout).init(),
                    spelling,
                    max_len,
                })
            }
        }
    }

    /// Next-token logits `(batch * steps) x vocab` of a `batch x steps` window, and the state
    /// after it.
    pub fn forward(&self, tokens: Tensor<2, Int>, state: Option<State>) -> (Tensor<2>, State) {
        match self {
            LanguageModel::Lstm(m) => m.forward(tokens, state),
            LanguageModel::CnnLstm(m) => m.forward(tokens, state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::language::{char_count, parameter_count};
    use burn::module::Module;

    fn words(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("w{i}")).collect()
    }

    /// With every weight and bias 0, only the gate's offset acts: t = sigmoid(-2), so the
    /// layer passes (1 - t) of its input, 0.881, as Kim et al.'s does at its start.
    #[test]
    fn a_fresh_highway_gate_mostly_carries_its_input() {
        let device = Device::flex();
        let zero = |n| {
            LinearConfig::new(n, n)
                .with_initializer(burn::nn::Initializer::Zeros)
                .init(&device)
        };
        let layer = Highway {
            transform: zero(2),
            gate: zero(2),
        };
        let x = Tensor::<2>::from_data(TensorData::new(vec![1f32, -2.0], [1, 2]), &device);
        let y: Vec<f32> = layer.forward(x).into_data().try_into_vec().unwrap();
        let carry = 1.0 - 1.0 / (1.0 + 2f32.exp());
        assert!(
            (y[0] - carry).abs() < 1e-6 && (y[1] + 2.0 * carry).abs() < 1e-6,
            "{y:?}"
        );
    }

    /// Kim et al.'s code initialises every parameter uniform in [-init, init]
    /// (yoonkim/lstm-char-cnn, main.lua), convolutions and highway layers included.
    #[test]
    fn every_cnn_lstm_parameter_starts_within_the_init_range() {
        struct Largest(f32);
        impl burn::module::ModuleVisitor for Largest {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
                let values = param.val().into_data().convert::<f32>();
                for v in values.iter::<f32>() {
                    self.0 = self.0.max(v.abs());
                }
            }
        }
        let cnn = LmModelSpec::CnnLstm {
            char_dim: 4,
            widths: vec![1, 2, 3],
            filters: vec![8, 8, 8],
            highway: 2,
            layers: 1,
            hidden: 6,
            dropout: 0.0,
        };
        let model = LanguageModel::new(&cnn, &words(50), 0.05, &Device::flex());
        let mut largest = Largest(0.0);
        model.visit(&mut largest);
        assert!(largest.0 <= 0.05, "a parameter starts at {}", largest.0);
    }

    /// The first LSTM layer reads the highway output undropped: in training mode its state
    /// (taken before any dropout) is the same on every pass over the same words.
    #[test]
    fn the_cnn_lstm_drops_nothing_before_its_first_lstm_layer() {
        let device = Device::flex().autodiff();
        let cnn = LmModelSpec::CnnLstm {
            char_dim: 4,
            widths: vec![1, 2],
            filters: vec![8, 8],
            highway: 1,
            layers: 1,
            hidden: 6,
            dropout: 0.5,
        };
        let model = LanguageModel::new(&cnn, &words(20), 0.05, &device);
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, 4, 5, 6], [2, 3]),
            &device,
        );
        let state = || {
            let (_, state) = model.forward(tokens.clone(), None);
            state[0]
                .hidden
                .clone()
                .into_data()
                .try_into_vec::<f32>()
                .unwrap()
        };
        assert_eq!(state(), state());
    }

    #[test]
    fn counts_match_the_built_models_and_weights_are_tied() {
        let device = Device::flex();
        let vocab = words(37);
        let lstm = LmModelSpec::Lstm {
            layers: 2,
            hidden: 8,
            dropout: 0.1,
        };
        let model = LanguageModel::new(&lstm, &vocab, 0.1, &device);
        // No separate output matrix exists: the count only holds if the embedding is reused.
        assert_eq!(
            model.num_params(),
            parameter_count(&lstm, 37, char_count(&vocab))
        );
        let cnn = LmModelSpec::CnnLstm {
            char_dim: 3,
            widths: vec![1, 2],
            filters: vec![4, 5],
            highway: 1,
            layers: 1,
            hidden: 6,
            dropout: 0.0,
        };
        let model = LanguageModel::new(&cnn, &vocab, 0.1, &device);
        assert_eq!(
            model.num_params(),
            parameter_count(&cnn, 37, char_count(&vocab))
        );
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, 4, 5, 6], [2, 3]),
            &device,
        );
        let (logits, state) = model.forward(tokens, None);
        assert_eq!(logits.dims(), [6, 37]);
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn the_output_layer_trains_the_embedding() {
        // Token 30 never appears as an input, so only the tied output side can give its
        // embedding row a gradient.
        let device = Device::flex().autodiff();
        let vocab = words(37);
        let spec = LmModelSpec::Lstm {
            layers: 1,
            hidden: 8,
            dropout: 0.0,
        };
        let LanguageModel::Lstm(model) = LanguageModel::new(&spec, &vocab, 0.1, &device) else {
            unreachable!()
        };
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3], [1, 3]), &device);
        let (logits, _) = model.forward(tokens, None);
        let grads = logits.sum().backward();
        let grad: Vec<f32> = model
            .embedding
            .weight
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let row30 = &grad[30 * 8..31 * 8];
        assert!(row30.iter().any(|g| g.abs() > 0.0), "{row30:?}");
    }
}
