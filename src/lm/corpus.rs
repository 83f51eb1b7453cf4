//! Word-level corpora in the Mikolov form (ptb.train.txt, ptb.valid.txt, ptb.test.txt: one
//! sentence per line, `<unk>` already applied), and the batching of truncated backpropagation
//! through time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::spec::LmSpec;

/// The corpus as one run uses it (after `corpus.max_tokens`), checked against the run: every
/// split fills at least one window of its batches (`Corpus::check_windows`), and the model over
/// its vocabulary stays within `arch::MAX_PARAMETERS`. Errors name the split's file and the
/// spec's fields.
pub fn load_corpus(spec: &LmSpec) -> Result<Corpus> {
    let mut corpus = Corpus::load(&spec.corpus.path)?;
    if let Some(n) = spec.corpus.max_tokens {
        for split in [&mut corpus.train, &mut corpus.valid, &mut corpus.test] {
            split.truncate(n);
        }
    }
    corpus.check_windows(spec)?;
    let chars = crate::arch::language::char_count(&corpus.vocab);
    crate::arch::language::check_size(&spec.model, corpus.vocab.len(), chars).map_err(|m| {
        anyhow!(
            "{}: model: {m} (the vocabulary of this training split)",
            split_paths(&corpus.dir)[0].display()
        )
    })?;
    Ok(corpus)
}

/// The end-of-sentence token appended to every line, as in Mikolov's setup (and Zaremba's code).
pub const EOS: &str = "<eos>";
/// The unknown-word token; valid/test words outside the training vocabulary become this.
pub const UNK: &str = "<unk>";

/// A corpus as token ids over the training split's vocabulary.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub dir: PathBuf,
    /// Index = token id; ids are given in order of first appearance in the training split.
    pub vocab: Vec<String>,
    pub train: Vec<u32>,
    pub valid: Vec<u32>,
    pub test: Vec<u32>,
    /// Tokens of valid and test that were not in the training vocabulary (mapped to `<unk>`).
    pub unknown_valid: usize,
    pub unknown_test: usize,
}

/// The three files of a corpus directory.
pub fn split_paths(dir: &Path) -> [PathBuf; 3] {
    ["train", "valid", "test"].map(|s| dir.join(format!("ptb.{s}.txt")))
}

fn read_split(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the corpus file", path.display()))?;
    let mut tokens = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        tokens.extend(words.into_iter().map(str::to_string));
        tokens.push(EOS.to_string());
    }
    if tokens.is_empty() {
        bail!("{}: the corpus file has no tokens", path.display());
    }
    Ok(tokens)
}

impl Corpus {
    /// Loads `dir/ptb.{train,valid,test}.txt`; the vocabulary comes from the training split only.
    pub fn load(dir: &Path) -> Result<Corpus> {
        if !dir.is_dir() {
            bail!(
                "{}: no such corpus directory (it must hold ptb.train.txt, ptb.valid.txt, ptb.test.txt)",
                dir.display()
            );
        }
        let [train_path, valid_path, test_path] = split_paths(dir);
        let train_words = read_split(&train_path)?;
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut vocab = Vec::new();
        // `<unk>` always has an id, so unseen valid/test words have somewhere to go.
        for w in train_words.iter().map(String::as_str).chain([UNK]) {
            if !ids.contains_key(w) {
                ids.insert(w.to_string(), vocab.len() as u32);
                vocab.push(w.to_string());
            }
        }
        let train = train_words.iter().map(|w| ids[w]).collect();
        let map = |path: &Path| -> Result<(Vec<u32>, usize)> {
            let mut unknown = 0;
            let tokens = read_split(path)?
                .iter()
                .map(|w| {
                    ids.get(w).copied().unwrap_or_else(|| {
                        unknown += 1;
                        ids[UNK]
                    })
                })
                .collect();
            Ok((tokens, unknown))
        };
        let (valid, unknown_valid) = map(&valid_path)?;
        let (test, unknown_test) = map(&test_path)?;
        Ok(Corpus {
            dir: dir.to_path_buf(),
            vocab,
            train,
            valid,
            test,
            unknown_valid,
            unknown_test,
        })
    }

    /// Whether every split gives at least one full window of `schedule.bptt` steps to each row
    /// of its batches: `schedule.batch_size` rows for the training split, which trains on them,
    /// and `schedule.eval_batch_size` rows for the validation and test splits, which are
    /// evaluated every epoch (`Batches::new` lays them out). The error names the split's file,
    /// the fields and the tokens needed.
    pub fn check_windows(&self, spec: &LmSpec) -> Result<()> {
        let s = &spec.schedule;
        let [train, valid, test] = split_paths(&self.dir);
        for (path, tokens, rows, rows_field) in [
            (train, &self.train, s.batch_size, "schedule.batch_size"),
            (
                valid,
                &self.valid,
                s.eval_batch_size,
                "schedule.eval_batch_size",
            ),
            (
                test,
                &self.test,
                s.eval_batch_size,
                "schedule.eval_batch_size",
            ),
        ] {
            let needed = LmSpec::tokens_needed(rows, s.bptt);
            if needed.is_none_or(|needed| tokens.len() < needed) {
                let cut = match spec.corpus.max_tokens {
                    Some(n) => format!(" (after corpus.max_tokens = {n})"),
                    None => String::new(),
                };
                let needed =
                    needed.map_or_else(|| "more than can be counted".into(), |n| n.to_string());
                bail!(
                    "{}: {} tokens{cut} cannot fill one window of schedule.bptt = {} steps in each of {rows_field} = {rows} rows: expected at least {needed} tokens (lower the batch size or bptt, or raise corpus.max_tokens)",
                    path.display(),
                    tokens.len(),
                    s.bptt,
                );
            }
        }
        Ok(())
    }

    /// One line for `check` and the run log.
    pub fn summary(&self) -> String {
        format!(
            "{}: vocabulary {}, {} train / {} valid / {} test tokens; {} valid and {} test tokens outside the training vocabulary mapped to {UNK}",
            self.dir.display(),
            self.vocab.len(),
            self.train.len(),
            self.valid.len(),
            self.test.len(),
            self.unknown_valid,
            self.unknown_test
        )
    }
}

/// A token stream laid out as `batch` parallel rows (the usual "batchify"): row r holds tokens
/// r*n .. (r+1)*n; the tail that does not fill a row is dropped. Each row is read left to right
/// in windows of `bptt` steps, so the hidden state at the end of one window is the right
/// initial state of the next.
#[derive(Debug, Clone)]
pub struct Batches {
    pub rows: Vec<Vec<u32>>,
    pub bptt: usize,
}

/// One window: inputs and next-token targets, both `batch x steps`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub batch: usize,
    pub steps: usize,
    pub inputs: Vec<i64>,
    pub targets: Vec<i64>,
}

impl Batches {
    /// Lays `tokens` out in `batch` rows read in windows of `bptt` steps. A corpus that
    /// `load_corpus` accepted always fills them (`Corpus::check_windows` names the split's file
    /// and the fields otherwise); this error says what the rows need.
    pub fn new(tokens: &[u32], batch: usize, bptt: usize) -> Result<Batches> {
        let n = tokens.len().checked_div(batch).unwrap_or(0);
        if n < 2 {
            bail!(
                "{} tokens cannot make {batch} rows (schedule.batch_size or schedule.eval_batch_size) of at least 2 tokens; one full window of schedule.bptt = {bptt} steps needs {} tokens",
                tokens.len(),
                LmSpec::tokens_needed(batch, bptt)
                    .map_or_else(|| "more than can be counted".into(), |n| n.to_string())
            );
        }
        let rows = (0..batch)
            .map(|r| tokens[r * n..(r + 1) * n].to_vec())
            .collect();
        Ok(Batches { rows, bptt })
    }

    fn row_len(&self) -> usize {
        self.rows[0].len()
    }

    /// Windows per pass; the last may be shorter than `bptt`.
    pub fn len(&self) -> usize {
        (self.row_len() - 1).div_ceil(self.bptt)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens predicted per pass (every token of a row but its first).
    pub fn targets(&self) -> usize {
        self.rows.len() * (self.row_len() - 1)
    }

    /// Window `i`: positions i*bptt .. as inputs, one later as targets.
    pub fn window(&self, i: usize) -> Window {
        let start = i * self.bptt;
        let steps = self.bptt.min(self.row_len() - 1 - start);
        let mut inputs = Vec::with_capacity(self.rows.len() * steps);
        let mut targets = Vec::with_capacity(self.rows.len() * steps);
        for row in &self.rows {
            inputs.extend(row[start..start + steps].iter().map(|&t| t as i64));
            targets.extend(row[start + 1..start + steps + 1].iter().map(|&t| t as i64));
        }
        Window {
            batch: self.rows.len(),
            steps,
            inputs,
            targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_comes_from_train_and_unknown_words_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ptb.train.txt"), " a b <unk> \n b c \n").unwrap();
        std::fs::write(dir.path().join("ptb.valid.txt"), " a d \n").unwrap();
        std::fs::write(dir.path().join("ptb.test.txt"), " e f c \n\n").unwrap();
        let c = Corpus::load(dir.path()).unwrap();
        assert_eq!(c.vocab, ["a", "b", "<unk>", "<eos>", "c"]);
        assert_eq!(c.train, [0, 1, 2, 3, 1, 4, 3]);
        assert_eq!(c.valid, [0, 2, 3], "d is unknown");
        assert_eq!(
            c.test,
            [2, 2, 4, 3],
            "e and f are unknown; the blank line adds nothing"
        );
        assert_eq!((c.unknown_valid, c.unknown_test), (1, 2));
    }

    #[test]
    fn batchify_lays_rows_side_by_side_and_windows_shift_targets_by_one() {
        let tokens: Vec<u32> = (0..23).collect();
        let b = Batches::new(&tokens, 3, 3).unwrap();
        // 23 / 3 = 7 per row, the last two tokens dropped.
        assert_eq!(
            b.rows,
            vec![
                (0..7).collect::<Vec<_>>(),
                (7..14).collect(),
                (14..21).collect()
            ]
        );
        assert_eq!(b.len(), 2, "6 targets per row in windows of 3");
        assert_eq!(b.targets(), 18);
        let w = b.window(0);
        assert_eq!((w.batch, w.steps), (3, 3));
        assert_eq!(w.inputs, vec![0, 1, 2, 7, 8, 9, 14, 15, 16]);
        assert_eq!(w.targets, vec![1, 2, 3, 8, 9, 10, 15, 16, 17]);
        let w = b.window(1);
        assert_eq!(w.inputs, vec![3, 4, 5, 10, 11, 12, 17, 18, 19]);
        assert_eq!(w.targets, vec![4, 5, 6, 11, 12, 13, 18, 19, 20]);
        // A ragged last window.
        let b = Batches::new(&tokens, 3, 4).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b.window(1).steps, 2);
        assert_eq!(b.window(1).targets, vec![5, 6, 12, 13, 19, 20]);
    }
}
