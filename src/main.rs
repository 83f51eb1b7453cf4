use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use anyhow::anyhow;
use banbench::device::DeviceChoice;
use banbench::experiment::{Experiment, Preset, TableRun};
use banbench::run_dir::lock::LockError;
use banbench::run_dir::records::{RunState, generation_label, members_label};
use banbench::run_dir::{RunDir, results_table};
use banbench::spec::Overrides;
use banbench::task::Loaded;
use banbench::worker::RunControl;
use banbench::{arch, data, headless, lm, study, table, units};

/// A terminal lab bench for Born-Again Neural Networks (Furlanello et al., ICML 2018).
///
/// A teacher is trained on labels; each generation then trains a fresh network on the
/// previous generation's outputs (BAN, BAN+L), or on a control that separates why that works
/// (CWTM: labels weighted by the teacher's confidence; DKPP: the teacher's distribution with its
/// non-argmax entries permuted), or Hinton KD. Generations and their ensembles (BANE) are
/// evaluated on the test set: top-1/top-5 error, NLL and calibration (ECE). Language models
/// (the paper's Table 6: LSTM and CNN-LSTM on Penn Treebank, BAN+L) report perplexity instead.
///
/// An experiment is a TOML preset (see presets/quick.toml, presets/lm/quick.toml); the paper's
/// tables are presets too (presets/paper/). Quick start:
///
///   banbench run presets/quick.toml
#[derive(Parser, Debug)]
#[command(name = "banbench", version, verbatim_doc_comment)]
struct Cli {
    /// Without a subcommand, the terminal UI opens.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a preset's teacher and generations without a terminal UI (SSH, scripts, CI).
    ///
    /// Prints one line per epoch and the results table at the end. Everything goes into the run
    /// directory: spec.toml, metrics.jsonl, events.jsonl, checkpoints/, logits/, results.json,
    /// results.md. One process owns a run directory at a time (its lock file); a second run on
    /// it is refused, naming the owner. Ctrl-C stops after the current batch, keeping finished
    /// generations; running the same preset with the same options and --out (or `banbench run
    /// DIR`) resumes from the first unfinished generation. The TUI starts runs this way,
    /// detached, so they outlive the terminal.
    Run(RunArgs),
    /// Validate a preset without training: parse, check every field, load the data, report the
    /// plan. For a paper table preset, every chain of the profile is checked.
    Check {
        /// The preset (TOML) to validate.
        preset: PathBuf,
        /// Profile of a table preset [default: full].
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Directory of the data files, replacing the preset's `data.path` (`corpus.path` for
        /// a language model).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// The device whose memory the models and batch must fit (flex, tch-cpu, cuda[:N]).
        #[arg(long, default_value = "flex", value_name = "DEVICE")]
        device: DeviceChoice,
    },
    /// Measure training and inference throughput of a preset's models on a device: images/s
    /// for a vision preset, target tokens/s for a language model.
    ///
    /// Three kinds of step, each timed around the code `banbench run` runs: a teacher's training
    /// step on labels; a student's training step on the preset's control (BAN, BAN+L, ...) with
    /// its teacher's eval-mode forward; and inference, one evaluation pass in eval mode (the
    /// test split of a vision preset; validation and test of a language model). A training step
    /// includes making the batch from the preset's data (augmentation too), the loss, backward,
    /// the SGD step and the step's diagnostics; weights are fresh, which does not change speed.
    ///
    /// bench/side-by-side.sh runs this (--json) and bench/reference.py, the same models in
    /// PyTorch eager, in alternating rounds and prints their ratio per step kind; bench/presets/
    /// holds the presets measured in the README.
    #[command(verbatim_doc_comment)]
    Bench {
        /// The preset (one chain) whose models, batch size and data are measured.
        preset: PathBuf,
        /// flex, tch-cpu or cuda[:N] (LibTorch needs a build with --features tch).
        #[arg(long, default_value = "flex", value_name = "DEVICE")]
        device: DeviceChoice,
        /// Timed training batches per kind, after three untimed warm-up batches (inference
        /// times one pass after an untimed one).
        #[arg(long, default_value_t = 20, value_name = "N")]
        steps: usize,
        /// Directory of the data files, replacing the preset's `data.path` (`corpus.path` for
        /// a language model).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// One JSON object per step kind on stdout instead of the table: preset, device, kind
        /// (train-labels, train-ban, inference), model, parameters, control, unit (images or
        /// tokens), batch, batches, samples, seconds, per_sec.
        #[arg(long)]
        json: bool,
    },
    /// Run a table or study on a Slurm cluster: writes sbatch scripts into OUT/slurm/, one job
    /// array per dependency level chained with `afterok`, each array task one unit
    /// (`banbench run PRESET --unit ID --out OUT`) that saves and requeues itself before its
    /// time limit; `--submit` submits them. OUT must be a directory every node sees (NFS is
    /// fine); `banbench tui OUT` and `banbench report OUT` follow it from anywhere.
    Slurm(SlurmArgs),
    /// The units of work of a table or study preset, with stable ids, what each waits for and
    /// its estimated cost: `banbench run PRESET --unit ID --out DIR` runs one, `--jobs N` or
    /// `--devices LIST` runs them side by side.
    Plan {
        /// A table or study preset (or any preset: a lone chain is one unit).
        preset: PathBuf,
        /// Profile of a table preset [default: full].
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// A study's seeds, replacing the preset's `seeds` (a count or a list).
        #[arg(long, value_name = "N|LIST")]
        seeds: Option<banbench::spec::Seeds>,
    },
    /// Parameter counts (the paper's beside them, where a table preset has them) and forward
    /// FLOPs per sample of a preset's models.
    Inspect {
        /// A preset or a paper table preset.
        preset: PathBuf,
        /// Profile of a table preset [default: full].
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
    },
    /// Write synthetic data in the CIFAR-10 and CIFAR-100 binary formats (class-coloured stripes
    /// plus noise) into DIR/cifar-10-batches-bin and DIR/cifar-100-binary, for trying presets
    /// and the paper tables' smoke profiles without the real data (`--data DIR`).
    SyntheticCifar {
        /// Output directory.
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Open the terminal UI (the default): compose or pick an experiment, watch it train, compare
    /// generations and ensembles.
    ///
    /// TARGET is a preset to select (vision or language model), a run directory to open (one
    /// still training elsewhere, say from `banbench run` in another SSH session, is followed as
    /// it goes), a study directory (`run --seeds`) for the Study screen, or a directory of
    /// units (`run --jobs`, `--devices`, `slurm`) for the Units screen. Without TARGET, Setup
    /// lists the presets under ./presets.
    Tui {
        /// A preset (TOML), a run directory, a study directory or a directory of units.
        target: Option<PathBuf>,
        /// Device for runs started from the UI: flex, tch-cpu or cuda[:N].
        #[arg(long, default_value = "flex", value_name = "DEVICE")]
        device: DeviceChoice,
    },
    /// Print the results table of a run directory (finished or still running).
    Report {
        /// A run directory written by `banbench run`.
        run_dir: PathBuf,
    },
    /// Draw a run, study or table directory as SVG figures, printing each file written.
    ///
    /// Figures are 800x500 with axes named with their units and a legend, ready for a paper
    /// draft; a run still training can be plotted too. A run directory gives one line per
    /// generation over its own epochs (the learning rate restarts with each): test-error.svg
    /// (validation-error.svg where data is held out; test-perplexity.svg and
    /// validation-perplexity.svg for a language model), train-loss.svg (each generation's own
    /// objective), and, where students recorded the split of their distillation gradient
    /// g = q - p (paper Section 3.1), gradient-dark-share.svg (the share of |g|^2 off the true
    /// class), gradient-cosine.svg (cosine with the label gradient) and gradient-magnitudes.svg
    /// (the two halves' sizes). A study directory (`run --seeds`) gives study-seeds.svg (each
    /// row's per-seed values, mean and 95% CI), study-versus.svg (paired differences from the
    /// teacher with their CI, Holm's p and a zero line), one of each per chain of a table
    /// (study-seeds-ROW-CHAIN.svg), and every seed's run figures in FIGDIR/seed-S/. A table
    /// directory (results.md and ROW/CHAIN/) gives each chain's run figures in
    /// FIGDIR/ROW/CHAIN/.
    ///
    ///   banbench plot runs/quick-20250101-120000
    ///   banbench plot runs/tiny-study --out paper/figures
    #[command(verbatim_doc_comment)]
    Plot {
        /// A run, study or table directory written by `banbench run`.
        dir: PathBuf,
        /// Where the figures go [default: DIR/figures].
        #[arg(long, value_name = "FIGDIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct SlurmArgs {
    /// A table or study preset (a lone chain is one unit).
    preset: PathBuf,
    /// The shared output directory, seen by every node.
    #[arg(long, value_name = "SHARED_DIR")]
    out: PathBuf,
    /// Profile of a table preset [default: full].
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// A study's seeds, replacing the preset's `seeds` (a count or a list).
    #[arg(long, value_name = "N|LIST")]
    seeds: Option<banbench::spec::Seeds>,
    /// Directory of the data files, as for `run`.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Override the epochs of every generation.
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// The device of every task [default: cuda with --gpus-per-task, else flex].
    #[arg(long, value_name = "DEVICE")]
    device: Option<DeviceChoice>,
    #[arg(long, value_name = "P")]
    partition: Option<String>,
    #[arg(long, value_name = "N")]
    gpus_per_task: Option<u32>,
    #[arg(long, value_name = "N")]
    cpus_per_task: Option<u32>,
    /// Each task's time limit (HH:MM:SS); before it a task saves and requeues itself.
    #[arg(long, value_name = "HH:MM:SS")]
    time: Option<String>,
    /// Tasks of one array running at once.
    #[arg(long, value_name = "K")]
    max_parallel: Option<usize>,
    /// Seconds before the time limit at which a task saves and requeues itself. A save still
    /// running after three quarters of them is requeued anyway, to resume from the last save
    /// instead of ending TIMEOUT.
    #[arg(long, default_value_t = 120, value_name = "S")]
    signal_seconds: u32,
    /// Submit the scripts with sbatch (else print how).
    #[arg(long)]
    submit: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The preset (TOML) to run, e.g. presets/quick.toml; or a run directory, to resume the
    /// run its spec.toml describes in place.
    preset: PathBuf,
    /// Run directory [default: runs/NAME-YYYYmmdd-HHMMSS, with -2, -3, ... if that exists].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// flex (pure-Rust CPU), tch-cpu (LibTorch CPU) or cuda[:N] (LibTorch CUDA); LibTorch needs a
    /// build with `--features tch`.
    #[arg(long, default_value = "flex", value_name = "DEVICE")]
    device: DeviceChoice,
    /// Override the epochs of every generation; learning-rate milestones scale with it.
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Override the seed (each generation draws from a seed derived from it).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Run a study: the whole chain (or table) once per seed, each seed a run directory
    /// OUT/seed-S, and statistics across seeds in OUT/results.md. A count (5: the preset's seed
    /// and the four after it) or a list (1,2,3); replaces the preset's `seeds`.
    #[arg(long, value_name = "N|LIST")]
    seeds: Option<banbench::spec::Seeds>,
    /// Directory of the data files, replacing the preset's `data.path` (CIFAR, IDX), or a
    /// language model's corpus directory (ptb.train.txt, ptb.valid.txt, ptb.test.txt).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Profile of a paper table preset: `full` (the paper's protocol) or `smoke` (the same
    /// structure shrunk to minutes on a CPU) [default: full].
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// How often to save within an epoch, besides every epoch's end (e.g. 90s, 10m, 1h): a
    /// kill loses at most this much training. `0s` saves after every batch.
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = humantime::parse_duration)]
    save_every: std::time::Duration,
    /// Run exactly one unit of a table or study (an id from `banbench plan`) into the shared
    /// output directory `--out`, refusing while a unit it depends on is not done.
    #[arg(long, value_name = "ID", requires = "out", conflicts_with_all = ["jobs", "devices"])]
    unit: Option<String>,
    /// Run up to N units of a table or study at once on `--device`, each a child process,
    /// each started as soon as the units it depends on are done.
    #[arg(long, value_name = "N", conflicts_with = "devices")]
    jobs: Option<usize>,
    /// Run units at once, one per device (e.g. cuda:0,cuda:1,cuda:2,cuda:3).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    devices: Option<Vec<DeviceChoice>>,
}

/// Bad input (a preset, a path, a device) exits with 2; a failure while running with 1.
enum Failure {
    Input(anyhow::Error),
    Run(anyhow::Error),
}

/// Writes to stdout. A reader that has gone (`banbench report DIR | head -1`: a closed pipe)
/// ends the command quietly with success, as Unix tools do, instead of `println!`'s panic;
/// any other write error ends it with 1. `run` prints through [`headless::print_line`] instead,
/// which goes on training when its output is lost.
fn write_stdout(args: fmt::Arguments) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(io::stderr(), "error: writing the output: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`write_stdout`].
macro_rules! say {
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

fn main() -> ExitCode {
    banbench::allocator::keep_tensor_memory();
    let cli = Cli::parse();
    let outcome = match cli.command {
        None => tui(None, DeviceChoice::default()),
        Some(Command::Tui { target, device }) => tui(target, device),
        Some(Command::Run(args)) => run(args),
        Some(Command::Check {
            preset,
            profile,
            data,
            device,
        }) => {
            let overrides = Overrides {
                data,
                ..Default::default()
            };
            check(&preset, profile.as_deref(), &overrides, device)
        }
        Some(Command::Inspect { preset, profile }) => inspect(&preset, profile.as_deref()),
        Some(Command::Slurm(args)) => slurm(args),
        Some(Command::Plan {
            preset,
            profile,
            seeds,
        }) => plan_units(&preset, profile.as_deref(), seeds),
        Some(Command::SyntheticCifar { dir, seed }) => synthetic_cifar(&dir, seed),
        Some(Command::Bench {
            preset,
            device,
            steps,
            data,
            json,
        }) => bench(&preset, device, steps, data, json),
        Some(Command::Report { run_dir }) => report(&run_dir),
        Some(Command::Plot { dir, out }) => {
            banbench::plot::plot(&dir, out.as_deref(), &mut |line| say!("{line}"))
                .map(|()| ExitCode::SUCCESS)
                .map_err(Failure::Input)
        }
    };
    // A closed stderr loses the message, not the exit status.
    let fail = |e: anyhow::Error, code: u8| {
        let _ = writeln!(io::stderr(), "error: {e:#}");
        ExitCode::from(code)
    };
    match outcome {
        Ok(code) => code,
        Err(Failure::Input(e)) => fail(e, 2),
        // A run directory another process owns, or input refused once the run had found what
        // it names on disk, is bad input too.
        Err(Failure::Run(e))
            if e.downcast_ref::<LockError>().is_some()
                || e.downcast_ref::<banbench::Refused>().is_some() =>
        {
            fail(e, 2)
        }
        Err(Failure::Run(e)) => fail(e, 1),
    }
}

fn input<E: Into<anyhow::Error>>(e: E) -> Failure {
    Failure::Input(e.into())
}

/// `runs/NAME-YYYYmmdd-HHMMSS`, unique even for two runs started in the same second.
fn default_out(name: &str) -> Result<PathBuf, Failure> {
    banbench::run_dir::new_default_dir(Path::new("runs"), name).map_err(input)
}

fn tui(target: Option<PathBuf>, device: DeviceChoice) -> Result<ExitCode, Failure> {
    banbench::tui::run(target, device).map_err(Failure::Input)?;
    Ok(ExitCode::SUCCESS)
}

/// Loads an experiment's data and checks that its models fit `device`'s memory, before hours of
/// training start; a problem with either is bad input.
fn load(place: &str, experiment: &Experiment, device: DeviceChoice) -> Result<Loaded, Failure> {
    load_for(place, experiment, &[device])
}

/// [`load`] for units side by side on `slots`: the models must fit every slot's device, with
/// the slots that share a device's memory (every CPU slot shares the host's) splitting it.
fn load_for(
    place: &str,
    experiment: &Experiment,
    slots: &[DeviceChoice],
) -> Result<Loaded, Failure> {
    let shares_memory = |a: DeviceChoice, b: DeviceChoice| match (a, b) {
        (DeviceChoice::Cuda(x), DeviceChoice::Cuda(y)) => x == y,
        (DeviceChoice::Cuda(_), _) | (_, DeviceChoice::Cuda(_)) => false,
        _ => true,
    };
    Loaded::new(experiment)
        .and_then(|loaded| {
            for (i, &device) in slots.iter().enumerate() {
                if slots[..i].contains(&device) {
                    continue;
                }
                let sharing = slots.iter().filter(|&&s| shares_memory(s, device)).count();
                loaded.check_memory(device, sharing)?;
            }
            Ok(loaded)
        })
        .map_err(|e| {
            input(if place.is_empty() {
                e
            } else {
                e.context(place.to_string())
            })
        })
}

fn run(args: RunArgs) -> Result<ExitCode, Failure> {
    let overrides = Overrides {
        epochs: args.epochs,
        seed: args.seed,
        seeds: args.seeds.clone(),
        data: args.data.clone(),
    };
    // A run directory resumes in place.
    let (preset, out) = if args.preset.join("spec.toml").is_file() {
        let experiment = RunDir::open(&args.preset)
            .and_then(|d| d.experiment())
            .map_err(input)?;
        (Preset::Chain(experiment), Some(args.preset.clone()))
    } else {
        let preset =
            Preset::load(&args.preset, args.profile.as_deref(), &overrides).map_err(input)?;
        (preset, args.out.clone())
    };
    args.device.open().map_err(|e| input(anyhow!(e)))?;
    if args.unit.is_some() || args.jobs.is_some() || args.devices.is_some() {
        return run_units(&args, &preset, out);
    }
    if let Some(seeds) = preset.seeds().map_err(input)? {
        // Every chain's data and memory are checked once, before the first seed trains.
        for (place, experiment) in preset.experiments() {
            load(&place, experiment, args.device)?;
        }
        let out = match out {
            Some(out) => out,
            None => default_out(&format!(
                "{}-study",
                study::StudyPlan::of(&preset, vec![]).name
            ))?,
        };
        let finished = headless::run_study(&preset, &seeds, args.device, args.save_every, &out)
            .map_err(Failure::Run)?;
        return Ok(if finished {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(130)
        });
    }
    let finished = match preset {
        Preset::Chain(experiment) => {
            let loaded = load("", &experiment, args.device)?;
            let out = match out {
                Some(out) => out,
                None => default_out(experiment.name())?,
            };
            let run_dir = RunDir::create(&out, &experiment).map_err(input)?;
            headless::run(
                &experiment,
                loaded,
                args.device,
                RunControl::new(args.save_every),
                &run_dir,
            )
            .map_err(Failure::Run)?
            .state
                == RunState::Finished
        }
        Preset::Table(table_run) => {
            for (place, experiment) in Preset::Table(table_run.clone()).experiments() {
                load(&place, experiment, args.device)?;
            }
            let out = match out {
                Some(out) => out,
                None => default_out(&table_run.name())?,
            };
            let (rendered, finished) =
                headless::run_table(&table_run, args.device, args.save_every, &out)
                    .map_err(Failure::Run)?;
            headless::print_line(format_args!(
                "\n{rendered}\ntable directory: {}",
                out.display()
            ));
            finished
        }
    };
    Ok(if finished {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(130)
    })
}

/// `banbench plan`: the units of a preset and what each waits for.
fn plan_units(
    path: &Path,
    profile: Option<&str>,
    seeds: Option<banbench::spec::Seeds>,
) -> Result<ExitCode, Failure> {
    let overrides = Overrides {
        seeds,
        ..Default::default()
    };
    let preset = Preset::load(path, profile, &overrides).map_err(input)?;
    let seeds = preset.seeds().map_err(input)?;
    let units = units::units(&preset, seeds.as_deref());
    let width = units.iter().map(|u| u.id.len()).max().unwrap_or(4).max(4);
    say!("{:<width$}  {:>10}  WAITS FOR", "UNIT", "COST");
    for u in &units {
        let waits = if u.depends.is_empty() {
            "-".to_string()
        } else {
            u.depends.join(", ")
        };
        say!(
            "{:<width$}  {:>10}  {waits}",
            u.id,
            units::format_cost(u.cost)
        );
    }
    say!(
        "\n{} unit(s); `banbench run {} --unit ID --out DIR` runs one, `--jobs N` or `--devices LIST` runs them side by side",
        units.len(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `banbench slurm`: the units as job arrays, written and perhaps submitted.
fn slurm(args: SlurmArgs) -> Result<ExitCode, Failure> {
    if args.max_parallel == Some(0) {
        return Err(input(anyhow!("--max-parallel 0: expected at least 1")));
    }
    let overrides = Overrides {
        epochs: args.epochs,
        seeds: args.seeds.clone(),
        data: args.data.clone(),
        ..Default::default()
    };
    let preset = Preset::load(&args.preset, args.profile.as_deref(), &overrides).map_err(input)?;
    let seeds = preset.seeds().map_err(input)?;
    let units = units::units(&preset, seeds.as_deref());
    let device = args
        .device
        .unwrap_or(if args.gpus_per_task.is_some_and(|g| g > 0) {
            DeviceChoice::Cuda(0)
        } else {
            DeviceChoice::Flex
        });
    // The tasks run this same binary on the preset by absolute paths, from any directory.
    let absolute =
        |p: &Path| std::path::absolute(p).map_err(|e| input(anyhow!("{}: {e}", p.display())));
    let out = absolute(&args.out)?;
    let run = RunArgs {
        preset: absolute(&args.preset)?,
        out: Some(out.clone()),
        device,
        epochs: args.epochs,
        seed: None,
        data: args.data.as_deref().map(absolute).transpose()?,
        profile: args.profile.clone(),
        save_every: banbench::worker::SAVE_EVERY,
        seeds: args.seeds.clone(),
        unit: None,
        jobs: None,
        devices: None,
    };
    let mut command = vec![
        std::env::current_exe()
            .map_err(|e| Failure::Run(e.into()))?
            .display()
            .to_string(),
    ];
    command.extend(unit_args(&run, &out));
    command.extend(["--device".to_string(), device.to_string()]);
    let options = banbench::slurm::SlurmOptions {
        partition: args.partition,
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        time: args.time,
        max_parallel: args.max_parallel,
        signal_seconds: args.signal_seconds,
    };
    let name = study::StudyPlan::of(&preset, vec![]).name;
    let scripts = banbench::slurm::write_scripts(&name, &units, &command, &out, &options)
        .map_err(Failure::Run)?;
    for (level, script) in scripts.iter().enumerate() {
        say!("level {level}: {}", script.display());
    }
    if !args.submit {
        say!(
            "{} unit(s) in {} level(s); submit with: bash {}",
            units.len(),
            scripts.len(),
            out.join("slurm/submit.sh").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let ids = banbench::slurm::submit(&scripts).map_err(Failure::Run)?;
    for (level, id) in ids.iter().enumerate() {
        say!("submitted level {level}: job {id}");
    }
    say!(
        "watch with: banbench tui {} (or squeue; banbench report {})",
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `run --unit ID`, `--jobs N`, `--devices LIST`: one unit, or all of them side by side.
fn run_units(args: &RunArgs, preset: &Preset, out: Option<PathBuf>) -> Result<ExitCode, Failure> {
    let seeds = preset.seeds().map_err(input)?;
    let units = units::units(preset, seeds.as_deref());
    let out = match out {
        Some(out) => out,
        None => default_out(&format!(
            "{}-units",
            study::StudyPlan::of(preset, vec![]).name
        ))?,
    };
    if let Some(id) = &args.unit {
        let Some(unit) = units.iter().find(|u| &u.id == id) else {
            let known: Vec<&str> = units.iter().map(|u| u.id.as_str()).collect();
            return Err(input(anyhow!(
                "--unit {id}: no such unit; `banbench plan` lists them: {}",
                known.join(", ")
            )));
        };
        let state = headless::run_unit(preset, unit, &units, args.device, args.save_every, &out)
            .map_err(Failure::Run)?;
        // A teacher unit stops after the teacher, as asked; stopped before it, it is not done.
        let done = state == RunState::Finished || unit.done(&out);
        return Ok(if done {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(130)
        });
    }
    let slots = match (&args.devices, args.jobs) {
        (Some(devices), _) => devices.clone(),
        (None, Some(0)) => return Err(input(anyhow!("--jobs 0: expected at least 1"))),
        (None, Some(n)) => vec![args.device; n],
        (None, None) => vec![args.device],
    };
    for d in &slots {
        d.open().map_err(|e| input(anyhow!(e)))?;
    }
    for (place, experiment) in preset.experiments() {
        load_for(&place, experiment, &slots)?;
    }
    let command = headless::UnitCommand {
        program: std::env::current_exe().map_err(|e| Failure::Run(e.into()))?,
        args: unit_args(args, &out),
    };
    let state =
        headless::run_units(preset, &units, &command, &slots, &out).map_err(Failure::Run)?;
    Ok(match state {
        RunState::Finished => ExitCode::SUCCESS,
        RunState::Stopped => ExitCode::from(130),
        _ => ExitCode::from(1),
    })
}

/// What every child unit is started with: the same preset, profile, seeds and overrides.
fn unit_args(args: &RunArgs, out: &Path) -> Vec<String> {
    let mut a = vec![
        "run".to_string(),
        args.preset.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--save-every".into(),
        format!("{}s", args.save_every.as_secs_f64()),
    ];
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            a.extend([name.to_string(), v]);
        }
    };
    flag("--profile", args.profile.clone());
    flag("--epochs", args.epochs.map(|e| e.to_string()));
    flag("--seed", args.seed.map(|s| s.to_string()));
    flag("--seeds", args.seeds.as_ref().map(ToString::to_string));
    flag(
        "--data",
        args.data.as_ref().map(|d| d.display().to_string()),
    );
    a
}

fn check(
    path: &Path,
    profile: Option<&str>,
    overrides: &Overrides,
    device: DeviceChoice,
) -> Result<ExitCode, Failure> {
    let preset = Preset::load(path, profile, overrides).map_err(input)?;
    // Everything is checked, data included, before anything is called ok.
    let mut plans = Vec::new();
    for (place, experiment) in preset.experiments() {
        let loaded = load(&place, experiment, device)?;
        plans.push((place, plan(experiment, &loaded)));
    }
    match &preset {
        Preset::Chain(_) => say!("{}: ok", path.display()),
        Preset::Table(t) => say!(
            "{}: ok, profile `{}` (profiles: {})",
            path.display(),
            t.profile,
            t.preset.profile_names().join(", ")
        ),
    }
    if let Some(seeds) = preset.seeds().map_err(input)? {
        let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
        say!(
            "  study     every chain once per seed: {} seeds ({})",
            seeds.len(),
            list.join(", ")
        );
    }
    let teachers_from = |place: &str| match &preset {
        Preset::Table(t) => t
            .chains
            .iter()
            .find(|c| place == format!("row `{}`, chain `{}`", c.row, c.name))
            .and_then(|c| c.teacher_from.as_ref())
            .map(|t| format!(" (teacher from `{t}`)"))
            .unwrap_or_default(),
        Preset::Chain(_) => String::new(),
    };
    for (place, plan) in plans {
        if !place.is_empty() {
            say!("\n{place}{}", teachers_from(&place));
        }
        write_stdout(format_args!("{plan}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// What a chain will train: its data, each generation's model and control, its ensembles and
/// its schedule.
fn plan(experiment: &Experiment, loaded: &Loaded) -> String {
    let mut out = format!("  {}\n", loaded.summary());
    for k in 0..=experiment.students() {
        // A two-stage control's first stage trains before the schedule.
        let first = match experiment {
            Experiment::Vision(spec) if k > 0 => spec.generations.control_of(k).first_stage(),
            _ => None,
        };
        let stage = first.map_or(String::new(), |s| {
            format!(", after {} epoch(s) of {} at lr {}", s.epochs, s.name, s.lr)
        });
        out.push_str(&format!(
            "  {:<9} {} ({} parameters), trained on {}{stage}\n",
            generation_label(k),
            experiment.model_of(k),
            loaded.parameters(k),
            experiment.control_of(k)
        ));
    }
    for e in experiment.ensembles() {
        out.push_str(&format!(
            "  {:<9} mean of {} over {}\n",
            e.name,
            e.average,
            members_label(&e.members)
        ));
    }
    out.push_str(&format!("  schedule  {}\n", experiment.schedule_summary()));
    out
}

fn inspect(path: &Path, profile: Option<&str>) -> Result<ExitCode, Failure> {
    let preset = Preset::load(path, profile, &Overrides::default()).map_err(input)?;
    // (row, experiment, generation, the paper's parameter count)
    let mut lines: Vec<(String, &Experiment, usize, Option<String>)> = Vec::new();
    match &preset {
        Preset::Chain(experiment) => {
            lines.push(("teacher".into(), experiment, 0, None));
            if experiment.model_of(1) != experiment.model_of(0) {
                lines.push(("student".into(), experiment, 1, None));
            }
        }
        Preset::Table(t) => {
            let TableRun {
                preset: table,
                chains,
                profile,
            } = t.as_ref();
            // A profile that shrinks the networks has nothing to compare with the paper's counts.
            let shrunk = table.profiles.get(profile).is_some_and(|p| p.shrink);
            let paper = if shrunk {
                Vec::new()
            } else {
                table::paper_parameter_counts(table, chains)
            };
            for chain in chains {
                // A chain of the teacher alone trains no student.
                let generations = if chain.experiment.students() > 0 {
                    2
                } else {
                    1
                };
                for k in 0..generations {
                    let role = if k == 0 { "teacher" } else { "student" };
                    let model = chain.experiment.model_of(k);
                    // Each model once per row (a teacher shared by a row's chains, say).
                    let seen = lines.iter().any(|(r, e, g, _)| {
                        r.starts_with(&format!("{} ", chain.row)) && e.model_of(*g) == model
                    });
                    if seen {
                        continue;
                    }
                    let count = paper
                        .iter()
                        .find(|(c, g, _)| c.experiment.model_of(*g) == model)
                        .map(|(_, _, p)| p.clone());
                    lines.push((
                        format!("{} {} {role}", chain.row, chain.name),
                        &chain.experiment,
                        k,
                        count,
                    ));
                }
            }
        }
    }
    let mut table_lines = Vec::new();
    let mut vision = true;
    for (row, experiment, k, paper) in lines {
        let (params, last) = match experiment {
            Experiment::Vision(spec) => {
                let shape = data::shape_of(&spec.data);
                let model = spec.model_of(k);
                let flops = arch::forward_flops(model, shape);
                (
                    arch::parameter_count(model, shape),
                    format!("{:.3}G", flops as f64 / 1e9),
                )
            }
            Experiment::Language(spec) => {
                vision = false;
                let (vocab, chars, source) = language_vocabulary(spec);
                (
                    arch::language::parameter_count(&spec.model, vocab, chars),
                    format!("{vocab} from {source}"),
                )
            }
        };
        table_lines.push(vec![
            row,
            experiment.model_of(k),
            format!("{:.3}M", params as f64 / 1e6),
            paper.unwrap_or_default(),
            last,
        ]);
    }
    let last = if vision {
        "forward FLOPs"
    } else {
        "vocabulary"
    };
    print_columns(&["row", "model", "parameters", "paper", last], &table_lines);
    Ok(ExitCode::SUCCESS)
}

/// A language model's vocabulary and characters from its corpus when it is there, else Penn
/// Treebank's: 10k words, 48 characters plus padding and the start and end markers.
fn language_vocabulary(spec: &lm::spec::LmSpec) -> (usize, usize, String) {
    match banbench::lm::corpus::load_corpus(spec) {
        Ok(c) => (
            c.vocab.len(),
            arch::language::char_count(&c.vocab),
            c.dir.display().to_string(),
        ),
        Err(_) => (
            10_000,
            51,
            format!(
                "the paper's Penn Treebank (no corpus at {})",
                spec.corpus.path.display()
            ),
        ),
    }
}

/// Prints rows under a header, each column as wide as its widest cell; text columns (the first
/// two) left-aligned, numbers right-aligned.
fn print_columns(header: &[&str], lines: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let print = |cells: &mut dyn Iterator<Item = &str>| {
        let line: Vec<String> = cells
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| match c {
                0 | 1 => format!("{cell:<w$}"),
                _ => format!("{cell:>w$}"),
            })
            .collect();
        say!("{}", line.join("  ").trim_end());
    };
    print(&mut header.iter().copied());
    for line in lines {
        print(&mut line.iter().map(String::as_str));
    }
}

fn synthetic_cifar(dir: &Path, seed: u64) -> Result<ExitCode, Failure> {
    let write = |sub: &str, f: fn(&Path, u64) -> std::io::Result<()>| {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path)
            .and_then(|_| f(&path, seed))
            .map_err(|e| input(anyhow!("{}: {e}", path.display())))
    };
    write("cifar-10-batches-bin", data::write_synthetic_cifar10)?;
    write("cifar-100-binary", data::write_synthetic_cifar100)?;
    say!(
        "wrote synthetic CIFAR-10 and CIFAR-100 binary files under {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn bench(
    preset: &Path,
    device: DeviceChoice,
    steps: usize,
    data: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let overrides = Overrides {
        data,
        ..Default::default()
    };
    let Preset::Chain(experiment) = Preset::load(preset, None, &overrides).map_err(input)? else {
        return Err(input(anyhow!(
            "{}: bench measures a preset of one chain, not a table (bench/presets/ has one per architecture)",
            preset.display()
        )));
    };
    device
        .open()
        .map_err(|e| Failure::Input(anyhow::anyhow!(e)))?;
    let loaded = Loaded::new(&experiment).map_err(Failure::Input)?;
    let steps = steps.max(1);
    if !json {
        say!(
            "{}: batch {}, device {device}, {steps} timed batches after {} warm-up ones",
            experiment.name(),
            experiment.batch_size(),
            banbench::bench::WARM_UP
        );
    }
    for t in banbench::bench::run(&loaded, device, steps).map_err(Failure::Run)? {
        if json {
            say!("{}", t.json(experiment.name(), device));
        } else {
            say!("  {}", t.line());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(path: &Path) -> Result<ExitCode, Failure> {
    // A shared directory of units (run --jobs/--devices/--unit, slurm): what each unit does now.
    if let Some(all) = units::read_manifest(path).map_err(Failure::Input)? {
        let width = all.iter().map(|u| u.id.len()).max().unwrap_or(4).max(4);
        say!("{:<width$}  STATE", "UNIT");
        for (u, state) in all.iter().zip(units::states(path, &all)) {
            say!("{:<width$}  {state}", u.id);
        }
        if study::StudyPlan::read(path)
            .map_err(Failure::Input)?
            .is_none()
        {
            match std::fs::read_to_string(path.join("results.md")) {
                Ok(table) => say!("\n{table}"),
                Err(_) => say!("\nno chain has finished yet"),
            }
            return Ok(ExitCode::SUCCESS);
        }
        say!("");
    }
    if let Some(plan) = study::StudyPlan::read(path).map_err(Failure::Input)? {
        let results = study::collect(path, &plan, "Teacher", None).map_err(Failure::Input)?;
        say!("{}", study::render(&results));
        return Ok(ExitCode::SUCCESS);
    }
    let run_dir = RunDir::open(path).map_err(Failure::Input)?;
    let experiment = run_dir.experiment().map_err(Failure::Input)?;
    match run_dir.results().map_err(Failure::Input)? {
        Some(results) => say!("{}", results_table(&results, experiment.description())),
        None => say!("{}: no generation has finished yet", path.display()),
    }
    Ok(ExitCode::SUCCESS)
}
