//! The run directory: the contract between the run process and everything that reads a run.
//!
//! ```text
//! spec.toml        the resolved spec (vision or language)
//! lock, heartbeat  the one writer: host, pid and start time; a time refreshed every few seconds
//! control          what a follower asks of the run: "run", "pause" or "stop"
//! events.jsonl     every event but progress, one JSON object per line, appended
//! progress.json    the latest progress within an epoch
//! run.log          what a detached run printed
//! metrics.jsonl    one EpochRecord per line
//! checkpoints/     gen-K.bpk, one per finished generation
//! logits/          gen-K.f32 (vision: test logits, little-endian f32, samples x classes) and
//!                  labels.json; gen-K.target.f32 (language: each test token's target probability)
//! results.json     Results: every finished generation and ensemble
//! results.md       the same as a table
//! ```
//! Every file is written atomically (temporary file + rename), so a reader in another SSH
//! session, or a crash, never sees half a file; events.jsonl is only appended to, a line at a
//! time, and readers keep only whole lines.

pub mod gradient_split;
pub mod lock;
pub mod records;

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::ensemble::Logits;
use crate::events::{Event, Progress};
use crate::experiment::Experiment;
use crate::spec::Overrides;
use records::{EpochRecord, Metric, Results, Task, members_label};

/// A new, empty directory `parent/NAME-YYYYmmdd-HHMMSS`, created here so that two runs started
/// in the same second (in two shells, say) each get their own: the second finds it taken and
/// moves on to `-2`, `-3`, ...
pub fn new_default_dir(parent: &Path, name: &str) -> Result<PathBuf> {
    let stem = format!("{name}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S"));
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    for n in 1.. {
        let dir = parent.join(if n == 1 {
            stem.clone()
        } else {
            format!("{stem}-{n}")
        });
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    unreachable!("some suffix is free")
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
/// The file is synced before the rename and the directory after it, so that after a crash or
/// a power loss the path holds either the old bytes or the new ones.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary_path(path);
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    rename_durably(&tmp, path)
}

/// Where a file is written before it is renamed into place: `.NAME.tmpPID-HOST` beside it
/// (what `remove_temporaries` recognises as a leftover). The host keeps two machines' writes
/// to a shared directory apart when their pids agree.
pub fn temporary_path(path: &Path) -> PathBuf {
    use std::sync::OnceLock;
    static HOST: OnceLock<String> = OnceLock::new();
    let host = HOST.get_or_init(|| lock::hostname().replace(['/', '\\'], "_"));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.tmp{}-{host}", std::process::id()))
}

/// Renames `from` to `to` and syncs the directory that now holds it.
pub fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether a file name is a temporary file that a crash left behind: banbench's own
/// (`.NAME.tmpPID`) or burn's checkpoint writes (`NAME.bpk.PID-N.tmp`).
fn is_temporary(name: &str) -> bool {
    (name.starts_with('.') && name.contains(".tmp")) || name.ends_with(".tmp")
}

/// Test labels and class names, stored once per run so ensembles need no dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestLabels {
    pub dataset: String,
    pub class_names: Vec<String>,
    pub labels: Vec<u16>,
}

#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

/// How far a generation's training got: after `epoch` epochs (1-based count) and, for a save
/// within the next epoch, that many of its batches; with its best-validation epoch and
/// perplexity so far when it selects on validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumePoint {
    pub epoch: usize,
    #[serde(default)]
    pub best: Option<(usize, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<WithinEpoch>,
}

impl ResumePoint {
    /// Batches done in the epoch after `epoch`: 0 at an epoch's end.
    pub fn batches(&self) -> usize {
        self.within.as_ref().map_or(0, |w| w.batches)
    }
}

/// A save between two batches of an epoch: what the epoch has done so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithinEpoch {
    pub batches: usize,
    pub sums: EpochSums,
    /// Seconds this generation had trained at the save, over all its processes.
    pub seconds: f64,
    /// What one batch hands the next (a language model's hidden states), as the task saves it.
    #[serde(default)]
    pub carry: serde_json::Value,
    /// The epoch's gradient-split sums so far (`distill::split_slot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient: Option<Vec<f32>>,
}

/// An epoch's training so far, as sums over its samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    pub loss: f64,
    /// Language models: the label loss alone (their training perplexity).
    pub label_nll: Option<f64>,
    pub wrong: usize,
    pub samples: usize,
}

impl EpochSums {
    pub fn add(&mut self, batch: EpochSums) {
        self.loss += batch.loss;
        self.label_nll = match (self.label_nll, batch.label_nll) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.wrong += batch.wrong;
        self.samples += batch.samples;
    }
}

/// What a follower asks of a running run, through the `control` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Run,
    Pause,
    Stop,
}

impl RunDir {
    /// Opens an existing run directory for reading.
    pub fn open(root: &Path) -> Result<RunDir> {
        let dir = RunDir {
            root: root.to_path_buf(),
        };
        if !dir.spec_path().is_file() {
            bail!("{}: not a run directory (no spec.toml)", root.display());
        }
        Ok(dir)
    }

    /// Creates a run directory for `experiment`, or reopens one that holds the same spec so
    /// that its finished generations are kept (resume). A directory holding another spec is an
    /// error.
    pub fn create(root: &Path, experiment: &Experiment) -> Result<RunDir> {
        let dir = RunDir {
            root: root.to_path_buf(),
        };
        if dir.spec_path().is_file() {
            let existing = dir.experiment().with_context(|| {
                format!(
                    "{}: spec.toml is corrupt; delete {} to start this run afresh, or choose \
                     another --out directory",
                    root.display(),
                    root.display()
                )
            })?;
            if &existing != experiment {
                return Err(crate::Refused(format!(
                    "{}: holds a run of another spec; choose another --out directory, or give \
                     the same spec and options to resume it",
                    root.display()
                ))
                .into());
            }
        } else if root.is_dir() && !only_leftovers(root)? {
            return Err(crate::Refused(format!(
                "{}: exists and is not empty; choose another --out directory",
                root.display()
            ))
            .into());
        }
        for sub in ["checkpoints", "logits"] {
            fs::create_dir_all(root.join(sub))
                .with_context(|| format!("creating {}", root.join(sub).display()))?;
        }
        write_atomic(&dir.spec_path(), experiment.to_toml().as_bytes())
            .with_context(|| format!("writing {}", dir.spec_path().display()))?;
        Ok(dir)
    }

    /// Takes the directory for this process, the one writer (printing a note when it takes
    /// over the lock of a writer that is gone), giving a writer that looks alive `patience` to
    /// go; the directory is free again when the lock is dropped.
    pub fn lock(&self, patience: Duration) -> Result<lock::RunLock> {
        let acquired = lock::RunLock::acquire_waiting(&self.root, patience, |held| {
            let _ = writeln!(
                io::stderr(),
                "banbench: {held}; waiting up to {} s for it to stop or fall silent",
                patience.as_secs()
            );
        })?;
        if let Some(previous) = acquired.took_over {
            let _ = writeln!(
                io::stderr(),
                "banbench: {}: took over the lock of {previous}, which is gone",
                self.root.display()
            );
        }
        Ok(acquired.lock)
    }

    /// Removes the temporary files a crash left in the directory (large, for large models).
    /// Call it only while holding the directory's lock: another writer's files are not stale.
    pub fn remove_temporaries(&self) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for dir in [
            self.root.clone(),
            self.root.join("checkpoints"),
            self.root.join("logits"),
        ] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_file() && entry.file_name().to_str().is_some_and(is_temporary) {
                    fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                    removed.push(path);
                }
            }
        }
        Ok(removed)
    }

    /// The experiment spec.toml holds.
    pub fn experiment(&self) -> Result<Experiment> {
        Ok(Experiment::load(&self.spec_path(), &Overrides::default())?)
    }

    /// How many generations a resumed run keeps: those its results list in order from the
    /// teacher (`listed`) whose checkpoint and saved test outputs are both on disk.
    pub fn finished_generations(
        &self,
        task: Task,
        listed: impl IntoIterator<Item = usize>,
    ) -> usize {
        listed
            .into_iter()
            .enumerate()
            .take_while(|&(k, g)| {
                g == k && self.outputs_path(task, k).exists() && self.checkpoint_path(k).exists()
            })
            .count()
    }

    pub fn spec_path(&self) -> PathBuf {
        self.root.join("spec.toml")
    }
    pub fn checkpoint_path(&self, generation: usize) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("gen-{generation}.bpk"))
    }
    /// A generation's saved test outputs: logits of every test image, or each test token's
    /// probability of its target (all a probability-averaged ensemble needs).
    pub fn outputs_path(&self, task: Task, generation: usize) -> PathBuf {
        let name = match task {
            Task::Vision => format!("gen-{generation}.f32"),
            Task::Language => format!("gen-{generation}.target.f32"),
        };
        self.root.join("logits").join(name)
    }
    fn labels_path(&self) -> PathBuf {
        self.root.join("logits").join("labels.json")
    }
    fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn results_path(&self) -> PathBuf {
        self.root.join("results.json")
    }
    pub fn events_path(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }
    fn progress_path(&self) -> PathBuf {
        self.root.join("progress.json")
    }
    fn control_path(&self) -> PathBuf {
        self.root.join("control")
    }
    /// What a detached run prints goes here.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("run.log")
    }

    pub fn write_outputs(&self, task: Task, generation: usize, values: &[f32]) -> Result<()> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let path = self.outputs_path(task, generation);
        write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))
    }

    /// A generation's saved test outputs, which must hold `len` floats.
    pub fn read_outputs(&self, task: Task, generation: usize, len: usize) -> Result<Vec<f32>> {
        let path = self.outputs_path(task, generation);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() != len * 4 {
            bail!(
                "{}: expected {} bytes ({len} values of f32), found {}",
                path.display(),
                len * 4,
                bytes.len()
            );
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A vision generation's test logits.
    pub fn read_logits(&self, generation: usize, classes: usize, samples: usize) -> Result<Logits> {
        let values = self.read_outputs(Task::Vision, generation, samples * classes)?;
        Ok(Logits { classes, values })
    }

    pub fn write_labels(&self, labels: &TestLabels) -> Result<()> {
        write_json(&self.labels_path(), labels)
    }
    pub fn labels(&self) -> Result<TestLabels> {
        read_json(&self.labels_path())
    }

    /// Rewrites metrics.jsonl with `records` (atomically: the file is small).
    pub fn write_metrics(&self, records: &[EpochRecord]) -> Result<()> {
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        let path = self.metrics_path();
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
    }

    /// metrics.jsonl, one record per line; a line that does not parse is left out.
    pub fn metrics(&self) -> Result<Vec<EpochRecord>> {
        Ok(self.read_metrics()?.0)
    }

    /// metrics.jsonl's records, and the numbers of the lines that do not parse.
    pub fn read_metrics(&self) -> Result<(Vec<EpochRecord>, Vec<usize>)> {
        let path = self.metrics_path();
        if !path.exists() {
            return Ok((Vec::new(), Vec::new()));
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let (mut records, mut bad) = (Vec::new(), Vec::new());
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(record) => records.push(record),
                Err(_) => bad.push(i + 1),
            }
        }
        Ok((records, bad))
    }

    /// Where generation `k`'s training stands at `point`: its model and optimizer state, for
    /// resuming within it (gen-K.epoch-E.bpk at an epoch's end, gen-K.epoch-E.batch-B.bpk
    /// within the next).
    pub fn epoch_checkpoint_paths(&self, generation: usize, point: &ResumePoint) -> [PathBuf; 2] {
        let dir = self.root.join("checkpoints");
        let stem = match point.batches() {
            0 => format!("gen-{generation}.epoch-{}", point.epoch),
            b => format!("gen-{generation}.epoch-{}.batch-{b}", point.epoch),
        };
        [
            dir.join(format!("{stem}.bpk")),
            dir.join(format!("{stem}.optim.bpk")),
        ]
    }

    pub fn best_checkpoint_path(&self, generation: usize, epoch: usize) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("gen-{generation}.best-{epoch}.bpk"))
    }

    /// gen-K.resume.json: the last save whose checkpoints are complete.
    pub fn resume_path(&self, generation: usize) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("gen-{generation}.resume.json"))
    }

    pub fn write_resume(&self, generation: usize, point: &ResumePoint) -> Result<()> {
        write_json(&self.resume_path(generation), point)
    }

    pub fn resume_point(&self, generation: usize) -> Option<ResumePoint> {
        read_json(&self.resume_path(generation)).ok()
    }

    /// Removes generation `k`'s in-generation saves except those of `keep` (the resume
    /// point's), or all of them.
    pub fn remove_epoch_checkpoints(&self, generation: usize, keep: Option<&ResumePoint>) {
        let kept: Vec<PathBuf> = keep
            .map(|p| {
                let mut kept = self.epoch_checkpoint_paths(generation, p).to_vec();
                kept.extend(
                    p.best
                        .map(|(e, _)| self.best_checkpoint_path(generation, e)),
                );
                kept
            })
            .unwrap_or_default();
        let prefix = format!("gen-{generation}.");
        let Ok(entries) = fs::read_dir(self.root.join("checkpoints")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let in_generation =
                name.starts_with(&prefix) && (name.contains(".epoch-") || name.contains(".best-"));
            if in_generation && !kept.contains(&entry.path()) {
                let _ = fs::remove_file(entry.path());
            }
        }
        if keep.is_none() {
            let _ = fs::remove_file(self.resume_path(generation));
        }
    }

    /// Writes results.json and results.md (`description`: the spec's, shown above the table).
    pub fn write_results(&self, results: &Results, description: &str) -> Result<()> {
        write_json(&self.results_path(), results)?;
        let path = self.root.join("results.md");
        write_atomic(&path, results_table(results, description).as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn results(&self) -> Result<Option<Results>> {
        if !self.results_path().exists() {
            return Ok(None);
        }
        read_json(&self.results_path()).map(Some)
    }

    /// Appends one event to events.jsonl (the run process is its only writer).
    pub fn append_event(&self, event: &Event) -> Result<()> {
        let path = self.events_path();
        let mut line = serde_json::to_string(event)?;
        line.push('\n');
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The whole events of events.jsonl from byte `offset` on, and the offset after the last
    /// whole line (a line still being written is read next time).
    pub fn events_since(&self, offset: u64) -> Result<(Vec<Event>, u64)> {
        let path = self.events_path();
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        file.seek(io::SeekFrom::Start(offset))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .with_context(|| format!("reading {}", path.display()))?;
        let whole = text.rfind('\n').map_or(0, |i| i + 1);
        let events = text[..whole]
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("{}: {l}", path.display())))
            .collect::<Result<_>>()?;
        Ok((events, offset + whole as u64))
    }

    pub fn write_progress(&self, progress: &Progress) -> Result<()> {
        write_json(&self.progress_path(), progress)
    }

    /// The latest progress, if the run has reported any.
    pub fn progress(&self) -> Option<Progress> {
        read_json(&self.progress_path()).ok()
    }

    /// Asks the run process to run, pause or stop (it reads the file between batches).
    pub fn request(&self, request: Request) -> Result<()> {
        let word = match request {
            Request::Run => "run",
            Request::Pause => "pause",
            Request::Stop => "stop",
        };
        let path = self.control_path();
        write_atomic(&path, word.as_bytes()).with_context(|| format!("writing {}", path.display()))
    }

    /// What the control file asks (run when there is none).
    pub fn requested(&self) -> Request {
        match fs::read_to_string(self.control_path())
            .as_deref()
            .map(str::trim)
        {
            Ok("pause") => Request::Pause,
            Ok("stop") => Request::Stop,
            _ => Request::Run,
        }
    }
}

/// Whether a directory without a spec.toml holds only what a run that crashed before writing
/// it leaves (its lock, heartbeat, empty subdirectories, temporary files): then it is resumed.
fn only_leftovers(root: &Path) -> Result<bool> {
    for entry in fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        let leftover = match name.as_ref() {
            "lock" | "heartbeat" | "run.log" => true,
            "checkpoints" | "logits" => fs::read_dir(&path)?
                .flatten()
                .all(|e| e.file_name().to_str().is_some_and(is_temporary)),
            other => is_temporary(other),
        };
        if !leftover {
            return Ok(false);
        }
    }
    Ok(true)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a valid banbench file (or one written by an older banbench; start a new run directory)",
            path.display()
        )
    })
}

/// results.md: one row per generation and ensemble with the task's metrics, the change of the
/// primary one against the teacher, and the paper's numbers beside the measured ones.
pub fn results_table(results: &Results, description: &str) -> String {
    let task = results.task;
    let primary = task.primary();
    let samples = match task {
        Task::Vision => format!(
            "{} test samples of {}",
            results.test_samples, results.dataset
        ),
        Task::Language => format!(
            "{} test tokens of {} (vocabulary {})",
            results.test_samples,
            results.dataset,
            results.vocabulary.unwrap_or(0)
        ),
    };
    let units = match task {
        Task::Vision => "Errors and ECE in %, NLL in nats.",
        Task::Language => {
            "Perplexity of the best-validation checkpoint; next-token top-1 error in %."
        }
    };
    let mut out = format!(
        "# {}\n\n{samples}, device {}, state {:?}.\n{units} Delta: measured minus the paper.\n\n",
        results.name, results.device, results.state
    );
    if !description.is_empty() {
        out.push_str(&format!("{description}\n\n"));
    }
    // The paper's columns: every metric the paper gives a number for in this run.
    let paper_metrics: Vec<Metric> = task
        .metrics()
        .iter()
        .copied()
        .filter(|m| {
            let generations = results.generations.iter().map(|g| &g.paper);
            let ensembles = results.ensembles.iter().map(|e| &e.paper);
            generations.chain(ensembles).any(|p| p.contains_key(m))
        })
        .collect();
    let mut header = vec!["Row", "Model", "Control", "Params"];
    header.extend(task.metrics().iter().map(|m| m.header()));
    header.push("vs teacher");
    for _ in &paper_metrics {
        header.extend(["Paper", "Delta"]);
    }
    if results.generations.iter().any(|g| g.best_epoch.is_some()) {
        header.push("Best epoch");
    }
    let best_epochs = header.last() == Some(&"Best epoch");
    header.push("Train s");
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    let teacher = results.teacher_score();
    let row = |metrics: &records::Scores, paper: &records::Scores, vs_teacher: bool| {
        let mut cells: Vec<String> = task
            .metrics()
            .iter()
            .map(|m| metrics.get(m).map(|&v| m.format(v)).unwrap_or_default())
            .collect();
        cells.push(match (vs_teacher, teacher, metrics.get(&primary)) {
            (true, Some(t), Some(v)) => format!("{:+.2}", v - t),
            _ => String::new(),
        });
        for m in &paper_metrics {
            match (paper.get(m), metrics.get(m)) {
                (Some(p), Some(v)) => cells.extend([m.format(*p), format!("{:+.2}", v - p)]),
                (Some(p), None) => cells.extend([m.format(*p), String::new()]),
                _ => cells.extend([String::new(), String::new()]),
            }
        }
        cells
    };
    for g in &results.generations {
        let mut cells = vec![
            g.label.clone(),
            g.model.clone(),
            g.control.clone(),
            g.parameters.to_string(),
        ];
        cells.extend(row(&g.metrics, &g.paper, g.generation != 0));
        if best_epochs {
            cells.push(g.best_epoch.map(|e| e.to_string()).unwrap_or_default());
        }
        cells.push(format!("{:.0}", g.train_seconds));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    for e in &results.ensembles {
        let mut cells = vec![
            e.name.clone(),
            members_label(&e.members),
            format!("mean of {}", e.average),
            String::new(),
        ];
        cells.extend(row(&e.metrics, &e.paper, true));
        if best_epochs {
            cells.push(String::new());
        }
        cells.push(String::new());
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push_str(&agreement_table(results));
    out
}

/// Each student's agreement with its teacher and with generation 0 on the test set, where the
/// saved outputs allow it.
fn agreement_table(results: &Results) -> String {
    let rows: Vec<String> = results
        .generations
        .iter()
        .filter_map(|g| {
            let a = g.agreement?;
            let cell = |a: &crate::agreement::Agreement| {
                format!(
                    "{:.2}% | {:.4} | {:.2}% | {:.2}%",
                    100.0 * a.top1,
                    a.mean_kl,
                    100.0 * a.fixed,
                    100.0 * a.broken
                )
            };
            Some(format!(
                "| {} | {} | {} |\n",
                g.label,
                cell(&a.with_teacher),
                cell(&a.with_generation_0)
            ))
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nAgreement on the test set: the share of samples with the same top-1 prediction, the \
         mean KL(teacher || student) in nats, and the samples the student fixed (teacher wrong, \
         student right) and broke; against its teacher, then against the Teacher (generation 0).\n\n\
         | Row | Top-1 agree | KL | Fixed | Broken | Top-1 agree (gen 0) | KL (gen 0) | Fixed (gen 0) | Broken (gen 0) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    out.extend(rows);
    out
}
