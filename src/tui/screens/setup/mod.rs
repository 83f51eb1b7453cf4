//! The Setup screen: a preset as the starting point, edited field by field (its keys here, its
//! drawing in `view`). Every edit
//! re-validates the whole spec through `Spec::parse` (`LmSpec::parse` for a language-model
//! preset), so an invalid combination is explained next to the form before Enter is pressed.

mod compose;
use compose::{arch_of, edit_experiment, source_name, step, step_in};
pub mod view;

use std::path::{Path, PathBuf};

use crossterm::event::KeyCode;

use crate::arch;
use crate::data;
use crate::device::DeviceChoice;
use crate::experiment::Experiment;
use crate::lm::spec::LmSpec;
use crate::spec::{Control, ControlKind, Overrides, Spec};

/// A preset file and its parsed spec (or why it does not parse).
#[derive(Debug, Clone, PartialEq)]
pub struct PresetEntry {
    pub path: PathBuf,
    pub spec: Result<Experiment, String>,
    /// A language-model preset's corpus as read when the preset was listed (or why it could
    /// not be read): what its parameter count and cost depend on.
    pub corpus: Option<Result<CorpusFacts, String>>,
    /// A table preset (several chains, which `spec` says in its place): Enter runs it as
    /// units and follows them.
    pub table: bool,
}

/// What a language-model preset's parameter count and cost depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusFacts {
    pub vocabulary: usize,
    pub characters: usize,
    pub train_tokens: usize,
}

impl PresetEntry {
    pub fn name(&self) -> String {
        match &self.spec {
            Ok(spec) => spec.name().to_string(),
            Err(_) => self.path.file_stem().map_or_else(
                || self.path.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Preset,
    Dataset,
    TrainSamples,
    Teacher,
    TeacherSize,
    Student,
    StudentSize,
    Control,
    Temperature,
    /// A two-stage control's first stage: its epochs (its lr is the schedule's).
    Stage,
    /// FitNets' hint and guided section, or FSP's sections.
    Section,
    Generations,
    Epochs,
    Seed,
    Device,
}

impl Field {
    pub const ALL: [Field; 15] = [
        Field::Preset,
        Field::Dataset,
        Field::TrainSamples,
        Field::Teacher,
        Field::TeacherSize,
        Field::Student,
        Field::StudentSize,
        Field::Control,
        Field::Temperature,
        Field::Stage,
        Field::Section,
        Field::Generations,
        Field::Epochs,
        Field::Seed,
        Field::Device,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::Preset => "Preset",
            Field::Dataset => "Dataset",
            Field::TrainSamples => "Train samples",
            Field::Teacher => "Teacher",
            Field::TeacherSize => "Teacher size",
            Field::Student => "Student",
            Field::StudentSize => "Student size",
            Field::Control => "Control",
            Field::Temperature => "Temperature",
            Field::Stage => "First stage",
            Field::Section => "Sections",
            Field::Generations => "Generations",
            Field::Epochs => "Epochs",
            Field::Seed => "Seed",
            Field::Device => "Device",
        }
    }
}

/// What the form currently adds up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The experiment Enter would start, or why it cannot start.
    pub spec: Result<Experiment, String>,
    pub teacher_parameters: Option<usize>,
    pub student_parameters: Option<usize>,
    /// Training cost: samples seen over all generations and the FLOPs they take.
    pub cost: Option<Cost>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Images (vision) or tokens (language) trained on over all generations.
    pub samples: u64,
    pub unit: &'static str,
    /// Known for the vision families, which count their FLOPs.
    pub flops: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    pub presets: Vec<PresetEntry>,
    pub preset: usize,
    /// The edited spec, except epochs and seed (applied as overrides so milestones scale).
    pub draft: Option<Experiment>,
    pub epochs: usize,
    pub seed: u64,
    pub device: DeviceChoice,
    /// Which devices this build and machine can open; empty until the runtime has asked.
    pub devices: Vec<(DeviceChoice, Result<(), String>)>,
    pub field: usize,
    pub check: Check,
}

pub const DEVICES: [DeviceChoice; 3] = [
    DeviceChoice::Flex,
    DeviceChoice::TchCpu,
    DeviceChoice::Cuda(0),
];

/// Images trained on and FLOPs spent (forward + backward taken as 3 forwards, plus one teacher
/// forward per image for every generation that distills).
pub fn cost(spec: &Spec) -> Cost {
    let shape = data::shape_of(&spec.data);
    let train = spec
        .data
        .train_samples
        .unwrap_or(data::full_train_len(spec.data.source))
        .saturating_sub(spec.data.validation_samples);
    let per_generation = (train * spec.schedule.epochs) as u64;
    let mut flops = 0.0;
    for k in 0..=spec.generations.count {
        flops += 3.0 * arch::forward_flops(spec.model_of(k), shape) as f64 * per_generation as f64;
        if k > 0 && spec.generations.control_of(k).needs_teacher() {
            flops +=
                arch::forward_flops(spec.model_of(k - 1), shape) as f64 * per_generation as f64;
        }
    }
    Cost {
        samples: per_generation * (spec.generations.count as u64 + 1),
        unit: "images",
        flops: Some(flops),
    }
}

/// What a key on the Setup screen asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum SetupKey {
    Done,
    Start,
    /// Why the key did nothing.
    Explain(String),
}

impl Setup {
    pub fn on_key(&mut self, code: KeyCode) -> SetupKey {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.move_field(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_field(1),
            KeyCode::Left | KeyCode::Char('h' | '-' | 'l' | '+') | KeyCode::Right
                if !self.editable(self.current_field()) =>
            {
                return SetupKey::Explain(
                    "a language model's corpus, model and control come from its preset file; \
                     generations, epochs, seed and device can be changed here"
                        .into(),
                );
            }
            KeyCode::Left | KeyCode::Char('h' | '-') => self.adjust(-1),
            KeyCode::Right | KeyCode::Char('l' | '+') => self.adjust(1),
            KeyCode::Enter => return SetupKey::Start,
            _ => {}
        }
        SetupKey::Done
    }

    pub fn new(presets: Vec<PresetEntry>, device: DeviceChoice) -> Setup {
        let mut setup = Setup {
            presets,
            preset: 0,
            draft: None,
            epochs: 1,
            seed: 1,
            device,
            devices: Vec::new(),
            field: 0,
            check: Check {
                spec: Err(String::new()),
                teacher_parameters: None,
                student_parameters: None,
                cost: None,
            },
        };
        setup.load_preset(0);
        setup
    }

    /// Selects the preset whose file is `path`, if listed.
    pub fn select(&mut self, path: &Path) {
        if let Some(i) = self.presets.iter().position(|p| p.path == path) {
            self.load_preset(i);
        }
    }

    fn load_preset(&mut self, index: usize) {
        self.preset = index;
        self.draft = self
            .presets
            .get(index)
            .and_then(|p| p.spec.as_ref().ok())
            .cloned();
        if let Some(draft) = &self.draft {
            self.epochs = draft.epochs();
            self.seed = draft.seed();
        }
        self.recheck();
    }

    pub fn set_devices(&mut self, devices: Vec<(DeviceChoice, Result<(), String>)>) {
        self.devices = devices;
        self.recheck();
    }

    pub fn current_field(&self) -> Field {
        Field::ALL[self.field]
    }

    pub fn move_field(&mut self, delta: i32) {
        self.field = step(self.field, delta, Field::ALL.len());
    }

    /// Whether left/right change `field`: a language model's corpus, architecture and control
    /// are its preset file's.
    pub fn editable(&self, field: Field) -> bool {
        !matches!(self.draft, Some(Experiment::Language(_)))
            || matches!(
                field,
                Field::Preset | Field::Generations | Field::Epochs | Field::Seed | Field::Device
            )
    }

    /// Changes the value of the field under the cursor by `delta` steps.
    pub fn adjust(&mut self, delta: i32) {
        let field = self.current_field();
        if field == Field::Preset {
            if !self.presets.is_empty() {
                self.load_preset(step(self.preset, delta, self.presets.len()));
            }
            return;
        }
        if field == Field::Device {
            self.device = DEVICES[step_in(&DEVICES, &self.device, delta)];
            self.recheck();
            return;
        }
        let Some(draft) = &mut self.draft else { return };
        match (field, draft) {
            (Field::Epochs, _) => self.epochs = step(self.epochs, delta, 10_000).max(1),
            (Field::Seed, _) => self.seed = (self.seed as i64 + i64::from(delta)).max(0) as u64,
            (Field::Generations, draft) => {
                draft.set_students(step(draft.students(), delta, 21));
            }
            (_, Experiment::Vision(spec)) => {
                edit_experiment(spec, field, delta);
                // The paper's numbers belong to the preset's experiment, not to an edited one.
                spec.paper.clear();
            }
            // A language model's corpus, architecture and control are the preset's (its
            // `[corpus]`, `[model]` and `[generations]` sections).
            (_, Experiment::Language(_)) => {}
        }
        self.recheck();
    }

    fn recheck(&mut self) {
        self.check = match &self.draft {
            None => Check {
                spec: Err(match self.presets.get(self.preset) {
                    Some(PresetEntry { spec: Err(e), .. }) => e.clone(),
                    _ => "no preset found under presets/".into(),
                }),
                teacher_parameters: None,
                student_parameters: None,
                cost: None,
            },
            Some(draft) => self.check_draft(draft),
        };
    }

    fn check_draft(&self, draft: &Experiment) -> Check {
        let preset = self.presets.get(self.preset);
        let file = preset.map_or_else(PathBuf::new, |p| p.path.clone());
        let overrides = Overrides {
            epochs: Some(self.epochs),
            seed: Some(self.seed),
            ..Overrides::default()
        };
        let mut check = match draft {
            Experiment::Vision(draft) => check_vision(draft, &file, &overrides),
            Experiment::Language(draft) => {
                let corpus = preset.and_then(|p| p.corpus.clone());
                check_language(draft, &file, &overrides, corpus)
            }
        };
        if check.spec.is_ok()
            && let Some((_, Err(why))) = self.devices.iter().find(|(d, _)| *d == self.device)
        {
            check.spec = Err(why.clone());
        }
        check
    }

    /// The value of `field` as the form shows it.
    pub fn value(&self, field: Field) -> String {
        match (field, &self.draft) {
            (Field::Preset, _) => self
                .presets
                .get(self.preset)
                .map_or_else(|| "(none)".into(), PresetEntry::name),
            (Field::Device, _) => self.device.to_string(),
            (_, None) => "-".into(),
            (Field::Epochs, _) => format!("{} per generation", self.epochs),
            (Field::Seed, _) => self.seed.to_string(),
            (Field::Generations, Some(draft)) => {
                format!("{} after the teacher", draft.students())
            }
            (_, Some(Experiment::Vision(spec))) => match field {
                Field::Dataset => source_name(spec.data.source).into(),
                Field::TrainSamples => spec
                    .data
                    .train_samples
                    .map_or_else(|| "all".into(), |n| n.to_string()),
                Field::Teacher => arch_of(&spec.teacher).into(),
                Field::TeacherSize => spec.teacher.to_string(),
                Field::Student => spec.student.as_ref().map_or_else(
                    || "same as teacher (born-again)".into(),
                    |m| arch_of(m).into(),
                ),
                Field::StudentSize => spec.student().to_string(),
                Field::Control => spec.generations.control_of(1).name(),
                Field::Temperature => format!("{}", spec.generations.temperature),
                Field::Stage => match spec.generations.control_of(1).first_stage() {
                    Some(stage) => format!(
                        "{} epochs of {} at lr {}, then {}",
                        stage.epochs, stage.name, stage.lr, stage.then
                    ),
                    None => "none (one stage)".into(),
                },
                Field::Section => match spec.generations.control_of(1) {
                    Control::Fitnets { fitnets, .. } => {
                        format!("hint {} -> guided {}", fitnets.hint, fitnets.guided)
                    }
                    Control::Fsp { sections, .. } => format!("flow of sections {sections}"),
                    _ => "none (reads the logits)".into(),
                },
                _ => unreachable!("task-neutral fields are handled above"),
            },
            (_, Some(Experiment::Language(spec))) => match field {
                Field::Dataset => format!("corpus {}", spec.corpus.path.display()),
                Field::TrainSamples => spec
                    .corpus
                    .max_tokens
                    .map_or_else(|| "all tokens".into(), |n| format!("first {n} tokens")),
                Field::Teacher => match spec.model {
                    arch::language::LmModelSpec::Lstm { .. } => "lstm".into(),
                    arch::language::LmModelSpec::CnnLstm { .. } => "cnn-lstm".into(),
                },
                Field::Student => "same as teacher (born-again)".into(),
                Field::TeacherSize | Field::StudentSize => spec.model.to_string(),
                Field::Control => spec.generations.control.clone(),
                Field::Temperature => "1".into(),
                Field::Stage => "none (one stage)".into(),
                Field::Section => "none".into(),
                _ => unreachable!("task-neutral fields are handled above"),
            },
        }
    }

    /// A note beside a field: parameter counts, what a temperature does, device availability.
    pub fn note(&self, field: Field) -> String {
        let params = |p: Option<usize>| {
            p.map_or_else(String::new, |p| format!("{} parameters", thousands(p)))
        };
        let Some(draft) = &self.draft else {
            return String::new();
        };
        match (field, draft) {
            (Field::TeacherSize, _) => params(self.check.teacher_parameters),
            (Field::StudentSize, _) => params(self.check.student_parameters),
            (Field::Device, _) => match self.devices.iter().find(|(d, _)| *d == self.device) {
                Some((_, Ok(()))) => "available".into(),
                Some((_, Err(_))) => "not available".into(),
                None => "checking".into(),
            },
            (Field::Temperature, Experiment::Vision(spec)) => match spec.generations.control {
                ControlKind::Label
                | ControlKind::Cwtm
                | ControlKind::LogitsL2
                | ControlKind::Fsp => "unused by this control".into(),
                ControlKind::Fitnets => "of the KD stage".into(),
                ControlKind::Kd => format!("alpha {}", spec.generations.kd_alpha),
                _ => String::new(),
            },
            (Field::Control, Experiment::Vision(spec))
                if !spec.generations.per_generation.is_empty() =>
            {
                "per generation in the preset".into()
            }
            _ => String::new(),
        }
    }
}

fn spec_error(e: crate::spec::SpecError) -> String {
    if e.field.is_empty() {
        e.message
    } else {
        format!("{}: {}", e.field, e.message)
    }
}

fn check_vision(draft: &Spec, file: &Path, overrides: &Overrides) -> Check {
    let parsed = Spec::parse(&draft.to_toml(), file, overrides);
    // A model the spec rejects has no parameter count to show.
    let (teacher_ok, student_ok) = match &parsed {
        Ok(_) => (true, true),
        Err(e) => (
            !e.field.starts_with("teacher"),
            !e.field.starts_with("student"),
        ),
    };
    let shape = data::shape_of(&draft.data);
    let spec = parsed.map_err(spec_error);
    Check {
        cost: spec.as_ref().ok().map(cost),
        spec: spec.map(|s| Experiment::Vision(Box::new(s))),
        teacher_parameters: teacher_ok.then(|| arch::parameter_count(&draft.teacher, shape)),
        student_parameters: student_ok.then(|| arch::parameter_count(draft.student(), shape)),
    }
}

/// A language model's parameters and cost need its corpus (vocabulary, characters, tokens);
/// without a readable corpus the preset cannot start, and the check says why.
fn check_language(
    draft: &LmSpec,
    file: &Path,
    overrides: &Overrides,
    corpus: Option<Result<CorpusFacts, String>>,
) -> Check {
    let spec = LmSpec::parse(&draft.to_toml(), file, overrides).map_err(spec_error);
    let corpus = corpus.unwrap_or_else(|| Err("the corpus has not been read".into()));
    let parameters = corpus
        .as_ref()
        .ok()
        .map(|c| arch::language::parameter_count(&draft.model, c.vocabulary, c.characters));
    let cost = match (&spec, &corpus) {
        (Ok(s), Ok(c)) => Some(Cost {
            samples: (c.train_tokens * s.schedule.epochs * (s.generations.count + 1)) as u64,
            unit: "tokens",
            flops: None,
        }),
        _ => None,
    };
    let spec = match corpus {
        Ok(_) => spec.map(|s| Experiment::Language(Box::new(s))),
        Err(why) => Err(format!("corpus: {why}")),
    };
    Check {
        spec,
        teacher_parameters: parameters,
        student_parameters: parameters,
        cost,
    }
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
