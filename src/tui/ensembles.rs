//! The ensemble lab's state: which saved generations are members, how they are averaged, the
//! pinned ensemble, and the test logits read so far (each generation's once, from the run
//! directory). Metrics are recomputed whenever any of these change, so toggling is instant.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use crossterm::event::KeyCode;

use crate::ensemble::{self, Logits};
use crate::run_dir::TestLabels;
use crate::run_dir::records::{GenerationResult, Metric, Scores};
use crate::spec::Averaging;

use super::app::Effect;

/// A file the lab asked the runtime for.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot<T> {
    Requested,
    Ready(T),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub members: Vec<usize>,
    pub average: Averaging,
    pub metrics: Scores,
}

/// The current ensemble's metrics, or why there are none yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    NoMembers,
    Reading,
    /// For a language run only the test perplexity is defined (from the mean of the members'
    /// probabilities of each target token).
    Ready(Ensemble),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleLab {
    /// Finished generations, in order: the rows the cursor moves over.
    pub generations: Vec<GenerationResult>,
    pub cursor: usize,
    pub members: BTreeSet<usize>,
    pub average: Averaging,
    pub pinned: Option<Ensemble>,
    pub outcome: Outcome,
    labels: Option<Slot<TestLabels>>,
    logits: BTreeMap<usize, Slot<Logits>>,
    /// Some(test tokens) for a language run (0 while results.json is not there yet).
    pub language_tokens: Option<usize>,
    targets: BTreeMap<usize, Slot<Vec<f32>>>,
}

impl Default for EnsembleLab {
    fn default() -> EnsembleLab {
        EnsembleLab {
            generations: Vec::new(),
            cursor: 0,
            members: BTreeSet::new(),
            average: Averaging::Probabilities,
            pinned: None,
            outcome: Outcome::NoMembers,
            labels: None,
            logits: BTreeMap::new(),
            language_tokens: None,
            targets: BTreeMap::new(),
        }
    }
}

impl EnsembleLab {
    /// Follows the run's finished generations (a live or watched run gains some over time).
    pub fn sync(&mut self, generations: &[GenerationResult]) {
        if self.generations.as_slice() != generations {
            self.generations = generations.to_vec();
            self.generations.sort_by_key(|g| g.generation);
            self.cursor = self.cursor.min(self.generations.len().saturating_sub(1));
            let finished: BTreeSet<usize> = self.generations.iter().map(|g| g.generation).collect();
            self.members.retain(|m| finished.contains(m));
            self.recompute();
        }
    }

    pub fn on_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.cursor = (self.cursor + 1).min(self.generations.len().saturating_sub(1))
            }
            KeyCode::Char(' ') => {
                if let Some(g) = self.generations.get(self.cursor) {
                    if !self.members.remove(&g.generation) {
                        self.members.insert(g.generation);
                    }
                    self.recompute();
                }
            }
            // Only the probabilities of the target tokens are saved for a language run.
            KeyCode::Char('a') if self.language_tokens.is_some() => {}
            KeyCode::Char('a') => {
                self.average = match self.average {
                    Averaging::Probabilities => Averaging::Logits,
                    Averaging::Logits => Averaging::Probabilities,
                };
                self.recompute();
            }
            KeyCode::Char('m') => {
                if let Outcome::Ready(e) = &self.outcome {
                    self.pinned = Some(e.clone());
                }
            }
            KeyCode::Char('u') => self.pinned = None,
            _ => {}
        }
    }

    /// The files the current members need that have not been asked for yet; marks them asked.
    pub fn requests(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(tokens) = self.language_tokens {
            if tokens == 0 {
                return effects;
            }
            for g in &self.generations {
                if let Entry::Vacant(slot) = self.targets.entry(g.generation) {
                    slot.insert(Slot::Requested);
                    effects.push(Effect::ReadTargets {
                        generation: g.generation,
                        tokens,
                    });
                }
            }
            return effects;
        }
        if self.labels.is_none() {
            self.labels = Some(Slot::Requested);
            effects.push(Effect::ReadLabels);
        }
        // Sizes come from the labels file, so logits wait for it.
        let Some(Slot::Ready(labels)) = &self.labels else {
            return effects;
        };
        let (classes, samples) = (labels.class_names.len(), labels.labels.len());
        // Read every finished generation up front: the reads are small and toggling then never waits.
        for g in &self.generations {
            if let Entry::Vacant(slot) = self.logits.entry(g.generation) {
                slot.insert(Slot::Requested);
                effects.push(Effect::ReadLogits {
                    generation: g.generation,
                    classes,
                    samples,
                });
            }
        }
        effects
    }

    pub fn set_labels(&mut self, labels: Result<TestLabels, String>) {
        self.labels = Some(match labels {
            Ok(l) => Slot::Ready(l),
            Err(e) => Slot::Failed(e),
        });
        self.recompute();
    }

    pub fn set_logits(&mut self, generation: usize, logits: Result<Logits, String>) {
        self.logits.insert(
            generation,
            match logits {
                Ok(l) => Slot::Ready(l),
                Err(e) => Slot::Failed(e),
            },
        );
        self.recompute();
    }

    /// A language run's test token count, once its results.json says it.
    pub fn set_language_tokens(&mut self, tokens: Option<usize>) {
        if self.language_tokens.is_some() && tokens.is_some() && self.language_tokens != tokens {
            self.language_tokens = tokens;
            self.targets.clear();
            self.recompute();
        }
    }

    pub fn set_targets(&mut self, generation: usize, probabilities: Result<Vec<f32>, String>) {
        self.targets.insert(
            generation,
            match probabilities {
                Ok(p) => Slot::Ready(p),
                Err(e) => Slot::Failed(e),
            },
        );
        self.recompute();
    }

    fn recompute(&mut self) {
        self.outcome = self.evaluate();
    }

    fn evaluate(&self) -> Outcome {
        if self.members.is_empty() {
            return Outcome::NoMembers;
        }
        if self.language_tokens.is_some() {
            let mut members = Vec::new();
            for m in &self.members {
                match self.targets.get(m) {
                    None | Some(Slot::Requested) => return Outcome::Reading,
                    Some(Slot::Failed(e)) => return Outcome::Failed(e.clone()),
                    Some(Slot::Ready(p)) => members.push(p.as_slice()),
                }
            }
            return Outcome::Ready(Ensemble {
                members: self.members.iter().copied().collect(),
                average: Averaging::Probabilities,
                metrics: Scores::from([(
                    Metric::TestPerplexity,
                    ensemble::ensemble_perplexity(&members),
                )]),
            });
        }
        let labels = match &self.labels {
            None | Some(Slot::Requested) => return Outcome::Reading,
            Some(Slot::Failed(e)) => return Outcome::Failed(e.clone()),
            Some(Slot::Ready(labels)) => labels,
        };
        let mut members = Vec::new();
        for m in &self.members {
            match self.logits.get(m) {
                None | Some(Slot::Requested) => return Outcome::Reading,
                Some(Slot::Failed(e)) => return Outcome::Failed(e.clone()),
                Some(Slot::Ready(logits)) => members.push(logits),
            }
        }
        let probabilities = ensemble::ensemble_probabilities(&members, self.average);
        Outcome::Ready(Ensemble {
            members: self.members.iter().copied().collect(),
            average: self.average,
            metrics: ensemble::metrics(&probabilities, members[0].classes, &labels.labels).into(),
        })
    }
}
