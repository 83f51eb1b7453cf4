use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use banbench::device::DeviceChoice;
use banbench::events::RunState;
use banbench::run_dir::{RunDir, results_table};
use banbench::spec::{Overrides, Spec};
use banbench::{headless, models, train};

/// A terminal lab bench for Born-Again Neural Networks (Furlanello et al., ICML 2018).
///
/// A teacher is trained on labels; each generation then trains a fresh network on the
/// previous generation's outputs (BAN, BAN+L), or on a control that separates why that works
/// (CWTM: labels weighted by the teacher's confidence; DKPP: the teacher's distribution with its
/// non-argmax entries permuted), or Hinton KD. Generations and their ensembles (BANE) are
/// evaluated on the test set: top-1/top-5 error, NLL and calibration (ECE).
///
/// An experiment is a TOML preset (see presets/quick.toml). Quick start:
///
///   banbench run presets/quick.toml
#[derive(Parser, Debug)]
#[command(name = "banbench", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a preset's teacher and generations without a terminal UI (SSH, scripts, CI).
    ///
    /// Prints one line per epoch and the results table at the end. Everything goes into the run
    /// directory: spec.toml, metrics.jsonl, checkpoints/, logits/, results.json, results.md.
    /// Ctrl-C stops after the current batch, keeping finished generations; running the same
    /// preset with the same options and --out resumes from the first unfinished generation.
    Run(RunArgs),
    /// Validate a preset without training: parse, check every field, report the plan.
    Check {
        /// The preset (TOML) to validate.
        preset: PathBuf,
    },
    /// Measure training and inference throughput (images/s) of a preset's models on a device.
    Bench {
        /// The preset whose models, batch size and data are measured.
        preset: PathBuf,
        #[arg(long, default_value = "flex", value_name = "DEVICE")]
        device: DeviceChoice,
        /// Timed batches per measurement (after one warm-up batch).
        #[arg(long, default_value_t = 20, value_name = "N")]
        steps: usize,
    },
    /// Print the results table of a run directory (finished or still running).
    Report {
        /// A run directory written by `banbench run`.
        run_dir: PathBuf,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The preset (TOML) to run, e.g. presets/quick.toml.
    preset: PathBuf,
    /// Run directory [default: runs/NAME-YYYYmmdd-HHMMSS].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// flex (pure-Rust CPU), tch-cpu (LibTorch CPU) or cuda[:N] (LibTorch CUDA); LibTorch needs a
    /// build with `--features tch`.
    #[arg(long, default_value = "flex", value_name = "DEVICE")]
    device: DeviceChoice,
    /// Override the epochs of every generation; learning-rate milestones scale with it.
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Override the seed (generation k is initialised from seed + k).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

/// Bad input (a preset, a path, a device) exits with 2; a failure while running with 1.
enum Failure {
    Input(anyhow::Error),
    Run(anyhow::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(args),
        Command::Check { preset } => check(&preset),
        Command::Bench { preset, device, steps } => bench(&preset, device, steps),
        Command::Report { run_dir } => report(&run_dir),
    };
    match outcome {
        Ok(code) => code,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: RunArgs) -> Result<ExitCode, Failure> {
    let overrides = Overrides { epochs: args.epochs, seed: args.seed };
    let spec = Spec::load(&args.preset, &overrides).map_err(|e| Failure::Input(e.into()))?;
    args.device.open().map_err(|e| Failure::Input(anyhow::anyhow!(e)))?;
    let data = train::load_data(&spec).map_err(Failure::Input)?;
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("{}-{}", spec.name, chrono::Local::now().format("%Y%m%d-%H%M%S")))
    });
    let run_dir = RunDir::create(&out, &spec).map_err(Failure::Input)?;
    let results = headless::run(&spec, data, args.device, &run_dir).map_err(Failure::Run)?;
    Ok(match results.state {
        RunState::Stopped => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    })
}

fn check(preset: &Path) -> Result<ExitCode, Failure> {
    let spec = Spec::load(preset, &Overrides::default()).map_err(|e| Failure::Input(e.into()))?;
    let data = train::load_data(&spec).map_err(Failure::Input)?;
    println!("{}: ok", preset.display());
    println!(
        "  data      {}: {} train, {} validation, {} test, {} classes, {}x{}x{}",
        data.name,
        data.train.len(),
        data.validation.as_ref().map_or(0, |v| v.len()),
        data.test.len(),
        data.shape.classes,
        data.shape.channels,
        data.shape.height,
        data.shape.width
    );
    for k in 0..=spec.generations.count {
        let model = spec.model_of(k);
        let control = if k == 0 { "labels".to_string() } else { spec.generations.control_of(k).name() };
        println!(
            "  {:<9} {model} ({} parameters), trained on {control}",
            banbench::events::generation_label(k),
            models::parameter_count(model, data.shape)
        );
    }
    for e in spec.ensembles() {
        let members: Vec<String> = e.members.iter().map(|&m| banbench::events::generation_label(m)).collect();
        println!("  {:<9} mean of {} over {}", e.name, e.average, members.join(" + "));
    }
    let s = &spec.schedule;
    println!(
        "  schedule  {} epochs, batch {}, SGD lr {} (x{} at {:?}), momentum {}{}, weight decay {}",
        s.epochs,
        s.batch_size,
        s.lr,
        s.lr_factor,
        s.milestones,
        s.momentum,
        if s.nesterov { " Nesterov" } else { "" },
        s.weight_decay
    );
    Ok(ExitCode::SUCCESS)
}

fn bench(preset: &Path, device: DeviceChoice, steps: usize) -> Result<ExitCode, Failure> {
    let spec = Spec::load(preset, &Overrides::default()).map_err(|e| Failure::Input(e.into()))?;
    device.open().map_err(|e| Failure::Input(anyhow::anyhow!(e)))?;
    let data = train::load_data(&spec).map_err(Failure::Input)?;
    println!("{}: batch {}, device {device}, {steps} timed batches", spec.name, spec.schedule.batch_size);
    for t in banbench::bench::run(&spec, &data, device, steps.max(1)).map_err(Failure::Run)? {
        println!("  {:>8.0} img/s  {}", t.images_per_sec, t.what);
    }
    Ok(ExitCode::SUCCESS)
}

fn report(path: &Path) -> Result<ExitCode, Failure> {
    let run_dir = RunDir::open(path).map_err(Failure::Input)?;
    let spec = run_dir.spec().map_err(Failure::Input)?;
    match run_dir.results().map_err(Failure::Input)? {
        Some(results) => println!("{}", results_table(&results, &spec)),
        None => println!("{}: no generation has finished yet", path.display()),
    }
    Ok(ExitCode::SUCCESS)
}
