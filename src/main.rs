use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use anyhow::anyhow;
use banbench::arch::{self, Shape};
use banbench::device::DeviceChoice;
use banbench::events::{RunState, generation_label};
use banbench::lm::table::{LmRow, LmTablePreset};
use banbench::lm::{self, LmSpec};
use banbench::run_dir::{RunDir, results_table};
use banbench::spec::{ModelSpec, Overrides, Spec};
use banbench::table::{self, Chain, TablePreset};
use banbench::{data, headless, train};

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
    /// directory: spec.toml, metrics.jsonl, checkpoints/, logits/, results.json, results.md.
    /// Ctrl-C stops after the current batch, keeping finished generations; running the same
    /// preset with the same options and --out resumes from the first unfinished generation.
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
    },
    /// Measure training and inference throughput (images/s) of a preset's models on a device.
    Bench {
        /// The preset whose models, batch size and data are measured.
        preset: PathBuf,
        #[arg(long, default_value = "flex", value_name = "DEVICE")]
        device: DeviceChoice,
        /// Timed batches per measurement (after three warm-up batches).
        #[arg(long, default_value_t = 20, value_name = "N")]
        steps: usize,
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
    /// TARGET is a preset to select (vision or language model), or a run directory to open (one
    /// still training elsewhere, say from `banbench run` in another SSH session, is followed as
    /// it goes). Without TARGET, Setup lists the presets under ./presets.
    Tui {
        /// A preset (TOML) or a run directory.
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
    /// Directory of the data files, replacing the preset's `data.path` (CIFAR, IDX), or a
    /// language model's corpus directory (ptb.train.txt, ptb.valid.txt, ptb.test.txt).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Profile of a paper table preset: `full` (the paper's protocol) or `smoke` (the same
    /// structure shrunk to minutes on a CPU) [default: full].
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
}

/// Bad input (a preset, a path, a device) exits with 2; a failure while running with 1.
enum Failure {
    Input(anyhow::Error),
    Run(anyhow::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        None => tui(None, DeviceChoice::default()),
        Some(Command::Tui { target, device }) => tui(target, device),
        Some(Command::Run(args)) => run(args),
        Some(Command::Check {
            preset,
            profile,
            data,
        }) => {
            let overrides = Overrides {
                data,
                ..Default::default()
            };
            check(&preset, profile.as_deref(), &overrides)
        }
        Some(Command::Inspect { preset, profile }) => inspect(&preset, profile.as_deref()),
        Some(Command::SyntheticCifar { dir, seed }) => synthetic_cifar(&dir, seed),
        Some(Command::Bench {
            preset,
            device,
            steps,
        }) => bench(&preset, device, steps),
        Some(Command::Report { run_dir }) => report(&run_dir),
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

fn input<E: Into<anyhow::Error>>(e: E) -> Failure {
    Failure::Input(e.into())
}

/// A preset is either one chain (a spec) or a paper table of chains, for vision or (naming a
/// `[corpus]`) for language models.
enum Preset {
    Spec(Box<Spec>),
    Table(Box<TableRun>),
    Lm(Box<LmSpec>),
    LmTable(Box<LmTableRun>),
}

struct TableRun {
    preset: TablePreset,
    chains: Vec<Chain>,
    profile: String,
}

fn load_preset(
    path: &Path,
    profile: Option<&str>,
    overrides: &Overrides,
) -> Result<Preset, Failure> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| input(anyhow!("{}: cannot read the preset: {e}", path.display())))?;
    if lm::is_lm_source(&source) {
        return load_lm_preset(path, &source, profile, overrides);
    }
    if table::is_table_preset(&source) {
        let preset = TablePreset::load(path).map_err(input)?;
        let profile = profile.unwrap_or("full").to_string();
        let chains = preset.chains(path, &profile, overrides).map_err(input)?;
        return Ok(Preset::Table(Box::new(TableRun {
            preset,
            chains,
            profile,
        })));
    }
    no_profile(path, profile)?;
    Ok(Preset::Spec(Box::new(
        Spec::parse(&source, path, overrides).map_err(input)?,
    )))
}

fn default_out(name: &str) -> PathBuf {
    PathBuf::from("runs").join(format!(
        "{name}-{}",
        chrono::Local::now().format("%Y%m%d-%H%M%S")
    ))
}

fn tui(target: Option<PathBuf>, device: DeviceChoice) -> Result<ExitCode, Failure> {
    banbench::tui::run(target, device).map_err(Failure::Input)?;
    Ok(ExitCode::SUCCESS)
}

fn run(args: RunArgs) -> Result<ExitCode, Failure> {
    let overrides = Overrides {
        epochs: args.epochs,
        seed: args.seed,
        data: args.data,
    };
    let preset = load_preset(&args.preset, args.profile.as_deref(), &overrides)?;
    args.device.open().map_err(|e| input(anyhow!(e)))?;
    let finished = match preset {
        Preset::Spec(spec) => {
            let data = train::load_data(&spec).map_err(Failure::Input)?;
            let run_dir =
                RunDir::create(&args.out.unwrap_or_else(|| default_out(&spec.name)), &spec)
                    .map_err(input)?;
            headless::run(&spec, data, args.device, &run_dir)
                .map_err(Failure::Run)?
                .state
                == RunState::Finished
        }
        Preset::Table(run) => {
            let TableRun {
                preset: table,
                chains,
                profile,
            } = *run;
            // Every chain's data must load before hours of training start.
            for chain in &chains {
                train::load_data(&chain.spec).map_err(|e| {
                    input(e.context(format!("row `{}`, chain `{}`", chain.row, chain.name)))
                })?;
            }
            let out = args
                .out
                .unwrap_or_else(|| default_out(&format!("{}-{profile}", table.table.name)));
            let (rendered, finished) =
                table::run(&table, &chains, &profile, args.device, &out).map_err(Failure::Run)?;
            println!("\n{rendered}\ntable directory: {}", out.display());
            finished
        }
        Preset::Lm(spec) => run_lm(&spec, args.out, args.device)?,
        Preset::LmTable(run) => run_lm_table(*run, args.out, args.device)?,
    };
    Ok(if finished {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(130)
    })
}

fn check(path: &Path, profile: Option<&str>, overrides: &Overrides) -> Result<ExitCode, Failure> {
    match load_preset(path, profile, overrides)? {
        Preset::Spec(spec) => {
            println!("{}: ok", path.display());
            print_plan(&spec)?;
        }
        Preset::Table(run) => {
            let TableRun {
                preset: table,
                chains,
                profile,
            } = *run;
            println!(
                "{}: ok, profile `{profile}` (profiles: {})",
                path.display(),
                table.profile_names().join(", ")
            );
            for chain in &chains {
                println!(
                    "\nrow `{}`, chain `{}`{}",
                    chain.row,
                    chain.name,
                    chain
                        .teacher_from
                        .as_ref()
                        .map(|t| format!(" (teacher from `{t}`)"))
                        .unwrap_or_default()
                );
                print_plan(&chain.spec)?;
            }
        }
        Preset::Lm(spec) => {
            println!("{}: ok", path.display());
            print_lm_plan(&spec)?;
        }
        Preset::LmTable(run) => {
            println!(
                "{}: ok, profile `{}` (profiles: {})",
                path.display(),
                run.profile,
                run.preset.profile_names().join(", ")
            );
            for row in &run.rows {
                println!("\nrow `{}`", row.name);
                print_lm_plan(&row.spec)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(spec: &Spec) -> Result<(), Failure> {
    let data = train::load_data(spec).map_err(Failure::Input)?;
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
        let control = if k == 0 {
            "labels".to_string()
        } else {
            spec.generations.control_of(k).name()
        };
        println!(
            "  {:<9} {model} ({} parameters), trained on {control}",
            generation_label(k),
            arch::parameter_count(model, data.shape)
        );
    }
    for e in spec.ensembles() {
        let members: Vec<String> = e.members.iter().map(|&m| generation_label(m)).collect();
        println!(
            "  {:<9} mean of {} over {}",
            e.name,
            e.average,
            members.join(" + ")
        );
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
    Ok(())
}

fn inspect(path: &Path, profile: Option<&str>) -> Result<ExitCode, Failure> {
    // (row, model, paper's parameter count)
    let mut models: Vec<(String, ModelSpec, Shape, Option<String>)> = Vec::new();
    match load_preset(path, profile, &Overrides::default())? {
        Preset::Spec(spec) => {
            let shape = data::shape_of(&spec.data);
            models.push(("teacher".into(), spec.teacher.clone(), shape, None));
            if let Some(student) = &spec.student {
                models.push(("student".into(), student.clone(), shape, None));
            }
        }
        Preset::Table(run) => {
            let TableRun {
                preset: table,
                chains,
                profile,
            } = *run;
            // A profile that shrinks the networks has nothing to compare with the paper's counts.
            let shrunk = table.profiles.get(&profile).is_some_and(|p| p.shrink);
            let paper = if shrunk {
                Vec::new()
            } else {
                banbench::table::paper_parameter_counts(&table, &chains)
            };
            for chain in &chains {
                for (role, model) in [
                    ("teacher", Some(&chain.spec.teacher)),
                    // A chain of the teacher alone trains no student.
                    (
                        "student",
                        chain
                            .spec
                            .student
                            .as_ref()
                            .filter(|_| chain.spec.generations.count > 0),
                    ),
                ] {
                    let Some(model) = model else { continue };
                    // Each model once per row (a teacher shared by a row's chains, say).
                    let row = format!("{} {} {role}", chain.row, chain.name);
                    let same_row = |r: &str| r.starts_with(&format!("{} ", chain.row));
                    if !models.iter().any(|(r, m, _, _)| m == model && same_row(r)) {
                        models.push((
                            row,
                            model.clone(),
                            data::shape_of(&chain.spec.data),
                            paper
                                .iter()
                                .find(|(m, _)| *m == model)
                                .map(|(_, p)| p.clone()),
                        ));
                    }
                }
            }
        }
        Preset::Lm(spec) => return inspect_lm(&[("model".into(), *spec, None)]),
        Preset::LmTable(run) => {
            let rows = run
                .rows
                .into_iter()
                .map(|r| {
                    let paper = run
                        .preset
                        .rows
                        .iter()
                        .find(|p| p.name == r.name)
                        .and_then(|p| p.paper.get("Params"))
                        .map(banbench::table::paper_text);
                    (r.name, r.spec, paper)
                })
                .collect::<Vec<_>>();
            return inspect_lm(&rows);
        }
    }
    let lines: Vec<Vec<String>> = models
        .into_iter()
        .map(|(row, model, shape, paper)| {
            let params = arch::parameter_count(&model, shape);
            let flops = arch::forward_flops(&model, shape);
            vec![
                row,
                model.to_string(),
                format!("{:.3}M", params as f64 / 1e6),
                paper.unwrap_or_default(),
                format!("{:.3}G", flops as f64 / 1e9),
            ]
        })
        .collect();
    print_columns(
        &["row", "model", "parameters", "paper", "forward FLOPs"],
        &lines,
    );
    Ok(ExitCode::SUCCESS)
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
        println!("{}", line.join("  ").trim_end());
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
    println!(
        "wrote synthetic CIFAR-10 and CIFAR-100 binary files under {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn bench(preset: &Path, device: DeviceChoice, steps: usize) -> Result<ExitCode, Failure> {
    if std::fs::read_to_string(preset).is_ok_and(|s| lm::is_lm_source(&s)) {
        return Err(input(anyhow!(
            "{}: bench measures vision presets; a language-model run prints its tokens/s every epoch",
            preset.display()
        )));
    }
    let spec = Spec::load(preset, &Overrides::default()).map_err(input)?;
    device
        .open()
        .map_err(|e| Failure::Input(anyhow::anyhow!(e)))?;
    let data = train::load_data(&spec).map_err(Failure::Input)?;
    println!(
        "{}: batch {}, device {device}, {steps} timed batches",
        spec.name, spec.schedule.batch_size
    );
    for t in banbench::bench::run(&spec, &data, device, steps.max(1)).map_err(Failure::Run)? {
        println!("  {:>8.0} img/s  {}", t.images_per_sec, t.what);
    }
    Ok(ExitCode::SUCCESS)
}

fn report(path: &Path) -> Result<ExitCode, Failure> {
    let run_dir = RunDir::open(path).map_err(Failure::Input)?;
    let spec_text = std::fs::read_to_string(run_dir.spec_path()).map_err(input)?;
    if lm::is_lm_source(&spec_text) {
        return report_lm(&run_dir, &spec_text);
    }
    let spec = run_dir.spec().map_err(Failure::Input)?;
    match run_dir.results().map_err(Failure::Input)? {
        Some(results) => println!("{}", results_table(&results, &spec)),
        None => println!("{}: no generation has finished yet", path.display()),
    }
    Ok(ExitCode::SUCCESS)
}

// Language models (src/lm): the same commands for presets that name a `[corpus]`.

struct LmTableRun {
    preset: LmTablePreset,
    rows: Vec<LmRow>,
    profile: String,
}

/// `--profile` names a profile of a paper table; any other preset refuses it.
fn no_profile(path: &Path, profile: Option<&str>) -> Result<(), Failure> {
    match profile {
        Some(p) => Err(input(anyhow!(
            "{}: --profile {p}: only paper table presets have profiles",
            path.display()
        ))),
        None => Ok(()),
    }
}

fn load_lm_preset(
    path: &Path,
    source: &str,
    profile: Option<&str>,
    overrides: &Overrides,
) -> Result<Preset, Failure> {
    if table::is_table_preset(source) {
        let preset = LmTablePreset::load(path).map_err(input)?;
        let profile = profile.unwrap_or("full").to_string();
        let rows = preset.rows(path, &profile, overrides).map_err(input)?;
        return Ok(Preset::LmTable(Box::new(LmTableRun {
            preset,
            rows,
            profile,
        })));
    }
    no_profile(path, profile)?;
    Ok(Preset::Lm(Box::new(
        LmSpec::parse(source, path, overrides).map_err(input)?,
    )))
}

/// Returns whether the run finished.
fn run_lm(spec: &LmSpec, out: Option<PathBuf>, device: DeviceChoice) -> Result<bool, Failure> {
    let corpus = lm::train::load_corpus(spec).map_err(Failure::Input)?;
    let run_dir = RunDir::create_language(&out.unwrap_or_else(|| default_out(&spec.name)), spec)
        .map_err(input)?;
    let results = lm::headless::run(spec, corpus, device, &run_dir).map_err(Failure::Run)?;
    Ok(results.state == RunState::Finished)
}

fn run_lm_table(
    run: LmTableRun,
    out: Option<PathBuf>,
    device: DeviceChoice,
) -> Result<bool, Failure> {
    // Every row's corpus must load before training starts.
    for row in &run.rows {
        lm::train::load_corpus(&row.spec)
            .map_err(|e| input(e.context(format!("row `{}`", row.name))))?;
    }
    let out =
        out.unwrap_or_else(|| default_out(&format!("{}-{}", run.preset.table.name, run.profile)));
    let (rendered, finished) =
        lm::table::run(&run.preset, &run.rows, &run.profile, device, &out).map_err(Failure::Run)?;
    println!("\n{rendered}\ntable directory: {}", out.display());
    Ok(finished)
}

fn print_lm_plan(spec: &LmSpec) -> Result<(), Failure> {
    let corpus = lm::train::load_corpus(spec).map_err(Failure::Input)?;
    println!("  corpus    {}", corpus.summary());
    let parameters = lm::train::parameter_count(spec, &corpus);
    for k in 0..=spec.generations.count {
        let control = if k == 0 { "labels" } else { "BAN+L" };
        println!(
            "  {:<9} {} ({parameters} parameters), trained on {control}",
            generation_label(k),
            spec.model
        );
    }
    for e in spec.ensembles() {
        let members: Vec<String> = e.members.iter().map(|&m| generation_label(m)).collect();
        println!(
            "  {:<9} mean of probabilities over {}",
            e.name,
            members.join(" + ")
        );
    }
    let s = &spec.schedule;
    println!(
        "  schedule  {} epochs, batch {}, BPTT {} steps, SGD lr {} (x{} when validation perplexity does not improve by {}), gradient norm clipped at {}",
        s.epochs, s.batch_size, s.bptt, s.lr, s.plateau_factor, s.plateau_threshold, s.clip
    );
    Ok(())
}

/// Parameter counts of language models, from the corpus's vocabulary when it is there, else
/// Penn Treebank's: 10k words, 48 characters plus padding and the start and end markers.
fn inspect_lm(rows: &[(String, LmSpec, Option<String>)]) -> Result<ExitCode, Failure> {
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|(row, spec, paper)| {
            let (vocab, chars, source) = match lm::train::load_corpus(spec) {
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
            };
            let params = arch::language::parameter_count(&spec.model, vocab, chars);
            vec![
                row.clone(),
                spec.model.to_string(),
                format!("{:.3}M", params as f64 / 1e6),
                paper.clone().unwrap_or_default(),
                format!("{vocab} from {source}"),
            ]
        })
        .collect();
    print_columns(
        &["row", "model", "parameters", "paper", "vocabulary"],
        &lines,
    );
    Ok(ExitCode::SUCCESS)
}

fn report_lm(run_dir: &RunDir, spec_text: &str) -> Result<ExitCode, Failure> {
    let spec =
        LmSpec::parse(spec_text, &run_dir.spec_path(), &Overrides::default()).map_err(input)?;
    match run_dir.language_results().map_err(Failure::Input)? {
        Some(results) => println!(
            "{}",
            banbench::run_dir::language_results_table(&results, &spec.description)
        ),
        None => println!("{}: no generation has finished yet", run_dir.root.display()),
    }
    Ok(ExitCode::SUCCESS)
}
