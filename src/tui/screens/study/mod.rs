//! The Study screen: a study directory (a preset trained once per seed, `crate::study`) followed
//! while its seeds train. For each chain, every row (generation, ensemble) by seed with its mean,
//! interval and paired difference against a reference row, beside a strip plot of the seeds.
//! Here its state (the seeds' progress, the chosen reference row and metric, the latest
//! statistics) and its keys; the drawing is in `view`. The statistics are computed by the
//! runtime (`study::collect`, which reads every seed's saved outputs) and arrive as messages.

pub mod view;

use std::path::PathBuf;

use crossterm::event::KeyCode;

use crate::run_dir::records::{Metric, Task, generation_label};
use crate::study::{StudyPlan, StudyResults, seed_dir};
use crate::tui::app::Effect;

/// How far one seed of a study has got, from its run directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedState {
    /// No run directory yet.
    Waiting,
    /// Its run process lives: `done` of the `generations` of chain `place` ("" for a single
    /// chain) have finished.
    Training {
        place: String,
        done: usize,
        generations: usize,
    },
    /// Every chain of the seed finished.
    Finished,
    /// Begun, and nothing trains it now: `state` is what its run says (stopped, failed, started)
    /// or what its lock says of the owner ("stale: owner gone 3m ago").
    Begun { state: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedProgress {
    pub seed: u64,
    pub state: SeedState,
}

/// The study's state in a word, from its seeds: running, finished, stale or what its first
/// unfinished seed says.
pub fn study_state(seeds: &[SeedProgress]) -> String {
    if seeds
        .iter()
        .any(|s| matches!(s.state, SeedState::Training { .. }))
    {
        return "running".into();
    }
    if seeds.iter().all(|s| s.state == SeedState::Finished) {
        return "finished".into();
    }
    match seeds.iter().find_map(|s| match &s.state {
        SeedState::Begun { state } => Some(state.as_str()),
        _ => None,
    }) {
        Some(state) if state.starts_with("stale") => "stale".into(),
        Some(state) => state.into(),
        // Seeds finished and seeds not begun, nothing between: the study process ended
        // between two seeds.
        None => "started".into(),
    }
}

pub fn finished(seeds: &[SeedProgress]) -> usize {
    seeds
        .iter()
        .filter(|s| s.state == SeedState::Finished)
        .count()
}

/// "1/4 seeds finished · seed 2 training BAN-1 (2/3) · seeds 3, 4 waiting": every seed, those
/// in the same state together.
pub fn seeds_line(seeds: &[SeedProgress]) -> String {
    let mut parts = vec![format!(
        "{}/{} seeds finished",
        finished(seeds),
        seeds.len()
    )];
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for s in seeds {
        let group = match &s.state {
            SeedState::Finished => continue,
            SeedState::Training {
                place,
                done,
                generations,
            } => {
                let place = if place.is_empty() {
                    String::new()
                } else {
                    format!("{place} ")
                };
                parts.push(format!(
                    "seed {} training {place}{} ({}/{generations})",
                    s.seed,
                    generation_label(*done),
                    (done + 1).min(*generations)
                ));
                continue;
            }
            SeedState::Waiting => "waiting".to_string(),
            SeedState::Begun { state } => state.clone(),
        };
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(s.seed.to_string()),
            None => groups.push((group, vec![s.seed.to_string()])),
        }
    }
    parts.extend(groups.into_iter().map(|(group, members)| {
        let seeds = if members.len() == 1 { "seed" } else { "seeds" };
        format!("{seeds} {} {group}", members.join(", "))
    }));
    parts.join(" · ")
}

/// A study directory found under runs/.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyEntry {
    pub dir: PathBuf,
    pub name: String,
    pub seeds: Vec<SeedProgress>,
}

/// The followed study.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyView {
    pub dir: PathBuf,
    pub plan: StudyPlan,
    pub seeds: Vec<SeedProgress>,
    /// The row every other is compared with, and the metric: what the statistics are asked
    /// for. `results` may still answer the previous choice while these are computed.
    pub reference: String,
    pub metric: Metric,
    pub results: Option<StudyResults>,
    /// Why the last computation failed.
    pub error: Option<String>,
    /// The chain shown (a table study has several).
    pub chain: usize,
    /// What the per-seed columns show: the metric's values, or McNemar's test of each row's
    /// test-set predictions against the reference's, seed by seed.
    pub mcnemar: bool,
    /// The last computation asked for, and the one `results` or `error` answer: answers can
    /// arrive out of order, and only a newer one replaces what is shown.
    asked: u64,
    answered: u64,
}

impl StudyView {
    /// The study in `dir`, against the teacher on the task's primary metric, as its
    /// results.md is.
    pub fn new(dir: PathBuf, plan: StudyPlan, seeds: Vec<SeedProgress>) -> StudyView {
        StudyView {
            metric: plan.task.primary(),
            dir,
            plan,
            seeds,
            reference: generation_label(0),
            results: None,
            error: None,
            chain: 0,
            mcnemar: false,
            asked: 0,
            answered: 0,
        }
    }

    /// Asks for the statistics of the current choice.
    pub fn collect(&mut self) -> Effect {
        self.asked += 1;
        Effect::CollectStudy {
            request: self.asked,
            reference: self.reference.clone(),
            metric: self.metric,
        }
    }

    /// The answer to computation `request`; an older one than what is shown, or one of a
    /// choice since left, is dropped.
    pub fn set_results(&mut self, request: u64, results: Result<StudyResults, String>) {
        if request <= self.answered {
            return;
        }
        match results {
            Ok(r) if r.reference != self.reference || r.metric != self.metric => return,
            Ok(r) => {
                self.chain = self.chain.min(r.chains.len().saturating_sub(1));
                self.results = Some(r);
                self.error = None;
            }
            Err(why) => self.error = Some(why),
        }
        self.answered = request;
    }

    /// Whether what is shown is of another reference or metric than the one chosen.
    pub fn computing(&self) -> bool {
        self.results
            .as_ref()
            .is_none_or(|r| r.reference != self.reference || r.metric != self.metric)
    }

    /// Every row label of the study, in order, over all its chains: the reference candidates.
    pub fn rows(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = Vec::new();
        for chain in self.results.iter().flat_map(|r| &r.chains) {
            for row in &chain.rows {
                if !labels.contains(&row.label.as_str()) {
                    labels.push(&row.label);
                }
            }
        }
        labels
    }

    /// The study's state in a word for the header (the screen says how far each seed is).
    pub fn state_text(&self) -> String {
        study_state(&self.seeds)
    }

    /// The run directory Enter follows: the selected chain of the seed in training, else of
    /// the last seed begun.
    fn seed_to_follow(&self) -> Option<PathBuf> {
        let place = self.plan.places.get(self.chain)?;
        let training = self.seeds.iter().find_map(|s| match &s.state {
            SeedState::Training { .. } => Some(s.seed),
            _ => None,
        });
        let begun = || {
            self.seeds
                .iter()
                .rev()
                .find(|s| s.state != SeedState::Waiting)
                .map(|s| s.seed)
        };
        let dir = seed_dir(&self.dir, training.or_else(begun)?);
        // A single chain's run directory is the seed's own (joining "" would add a slash).
        Some(if place.is_empty() {
            dir
        } else {
            dir.join(place)
        })
    }

    /// A key on the Study screen: its effects, or why it does nothing.
    pub fn on_key(&mut self, code: KeyCode) -> Result<Vec<Effect>, String> {
        let step = |forward: bool, len: usize, i: usize| {
            if forward {
                (i + 1) % len
            } else {
                (i + len - 1) % len
            }
        };
        match code {
            KeyCode::Char(c @ ('r' | 'R')) => {
                let rows = self.rows();
                if rows.is_empty() {
                    return Err("no row has a value yet".into());
                }
                let i = rows.iter().position(|&r| r == self.reference);
                let next = match i {
                    Some(i) => step(c == 'r', rows.len(), i),
                    None => 0,
                };
                self.reference = rows[next].to_string();
                Ok(vec![self.collect()])
            }
            KeyCode::Char(c @ ('m' | 'M')) => {
                let metrics = self.plan.task.metrics();
                let i = metrics.iter().position(|&m| m == self.metric).unwrap_or(0);
                self.metric = metrics[step(c == 'm', metrics.len(), i)];
                Ok(vec![self.collect()])
            }
            KeyCode::Char('n') => {
                if !self.mcnemar && self.plan.task != Task::Vision {
                    return Err("McNemar's test needs test-set predictions, and a language \
                                model's saved outputs hold only the target token's probability"
                        .into());
                }
                self.mcnemar = !self.mcnemar;
                Ok(Vec::new())
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.chain = self.chain.saturating_sub(1);
                Ok(Vec::new())
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.chain = (self.chain + 1).min(self.plan.places.len().saturating_sub(1));
                Ok(Vec::new())
            }
            KeyCode::Enter => match self.seed_to_follow() {
                Some(dir) => Ok(vec![Effect::Open(dir)]),
                None => Err("no seed has begun yet".into()),
            },
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::results::{ChainStudy, StudyRow};

    fn view() -> StudyView {
        let plan = StudyPlan {
            name: "tiny-study".into(),
            task: Task::Vision,
            seeds: vec![1, 2],
            places: vec![String::new()],
        };
        let seeds = vec![seed(1, SeedState::Finished), seed(2, SeedState::Waiting)];
        StudyView::new(PathBuf::from("runs/s"), plan, seeds)
    }

    fn answer(reference: &str, metric: Metric) -> StudyResults {
        let row = |label: &str| StudyRow {
            label: label.into(),
            values: vec![Some(1.0), None],
            summary: None,
            versus: None,
        };
        StudyResults {
            name: "tiny-study".into(),
            task: Task::Vision,
            metric,
            reference: reference.into(),
            seeds: vec![1, 2],
            chains: vec![ChainStudy {
                place: String::new(),
                rows: vec![row("Teacher"), row("BAN-1"), row("Ens*2")],
            }],
            comparisons: 2,
        }
    }

    fn asked(effects: Vec<Effect>) -> (u64, String, Metric) {
        match effects.as_slice() {
            [
                Effect::CollectStudy {
                    request,
                    reference,
                    metric,
                },
            ] => (*request, reference.clone(), *metric),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_reference_cycles_over_the_rows_and_the_metric_over_the_tasks() {
        let mut study = view();
        assert_eq!(
            study.collect(),
            Effect::CollectStudy {
                request: 1,
                reference: "Teacher".into(),
                metric: Metric::Top1Error,
            }
        );
        assert_eq!(
            study.on_key(KeyCode::Char('r')),
            Err("no row has a value yet".into())
        );
        study.set_results(1, Ok(answer("Teacher", Metric::Top1Error)));
        assert!(!study.computing());
        let next = asked(study.on_key(KeyCode::Char('r')).unwrap());
        assert_eq!(next, (2, "BAN-1".into(), Metric::Top1Error));
        assert!(study.computing());
        let back = asked(study.on_key(KeyCode::Char('R')).unwrap());
        assert_eq!(back, (3, "Teacher".into(), Metric::Top1Error));
        let back = asked(study.on_key(KeyCode::Char('R')).unwrap());
        assert_eq!(back, (4, "Ens*2".into(), Metric::Top1Error));
        let metric = asked(study.on_key(KeyCode::Char('M')).unwrap());
        assert_eq!(metric, (5, "Ens*2".into(), Metric::Ece));
    }

    #[test]
    fn n_switches_the_seed_columns_to_mcnemar_where_there_are_predictions() {
        let mut study = view();
        assert_eq!(study.on_key(KeyCode::Char('n')), Ok(Vec::new()));
        assert!(study.mcnemar);
        study.on_key(KeyCode::Char('n')).unwrap();
        assert!(!study.mcnemar);
        study.plan.task = Task::Language;
        let refused = study.on_key(KeyCode::Char('n')).unwrap_err();
        assert!(refused.contains("target token's probability"), "{refused}");
        assert!(!study.mcnemar);
    }

    #[test]
    fn only_a_newer_answer_of_the_current_choice_replaces_the_shown_one() {
        let mut study = view();
        study.collect();
        study.on_key(KeyCode::Char('m')).unwrap();
        // Request 1 answers the metric since left.
        study.set_results(1, Ok(answer("Teacher", Metric::Top1Error)));
        assert_eq!(study.results, None);
        study.set_results(3, Ok(answer("Teacher", Metric::Top5Error)));
        assert!(!study.computing());
        // Request 2, older, arrives late: its numbers are older than those shown.
        let mut late = answer("Teacher", Metric::Top5Error);
        late.comparisons = 0;
        study.set_results(2, Ok(late));
        assert_eq!(study.results.as_ref().unwrap().comparisons, 2);
        study.set_results(4, Err("seed-2/results.json: denied".into()));
        assert_eq!(study.error.as_deref(), Some("seed-2/results.json: denied"));
        study.set_results(5, Ok(answer("Teacher", Metric::Top5Error)));
        assert_eq!(study.error, None);
    }

    #[test]
    fn enter_follows_the_seed_in_training_else_the_last_begun() {
        let mut study = view();
        assert_eq!(
            study.on_key(KeyCode::Enter),
            Ok(vec![Effect::Open(PathBuf::from("runs/s/seed-1"))])
        );
        study.seeds[1].state = SeedState::Training {
            place: String::new(),
            done: 0,
            generations: 3,
        };
        assert_eq!(
            study.on_key(KeyCode::Enter),
            Ok(vec![Effect::Open(PathBuf::from("runs/s/seed-2"))])
        );
        study.seeds = vec![seed(1, SeedState::Waiting)];
        assert!(study.on_key(KeyCode::Enter).is_err());
    }

    fn seed(seed: u64, state: SeedState) -> SeedProgress {
        SeedProgress { seed, state }
    }

    #[test]
    fn the_seeds_line_names_the_seed_in_training_and_groups_the_rest() {
        let seeds = [
            seed(1, SeedState::Finished),
            seed(
                2,
                SeedState::Training {
                    place: String::new(),
                    done: 1,
                    generations: 3,
                },
            ),
            seed(3, SeedState::Waiting),
            seed(4, SeedState::Waiting),
        ];
        assert_eq!(
            seeds_line(&seeds),
            "1/4 seeds finished · seed 2 training BAN-1 (2/3) · seeds 3, 4 waiting"
        );
        assert_eq!(study_state(&seeds), "running");
    }

    #[test]
    fn a_study_nothing_trains_says_why() {
        let stale = SeedState::Begun {
            state: "stale: owner gone 3m ago".into(),
        };
        let seeds = [seed(1, SeedState::Finished), seed(2, stale)];
        assert_eq!(study_state(&seeds), "stale");
        assert_eq!(
            seeds_line(&seeds),
            "1/2 seeds finished · seed 2 stale: owner gone 3m ago"
        );
        let between = [seed(1, SeedState::Finished), seed(2, SeedState::Waiting)];
        assert_eq!(study_state(&between), "started");
        assert_eq!(study_state(&[seed(1, SeedState::Finished)]), "finished");
    }
}
