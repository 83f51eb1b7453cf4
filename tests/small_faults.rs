//! The small faults of "Faults and bad input": output to a closed pipe (the real binary, real
//! pipes), the diagnosis of a training loss that is no longer finite, and a directory where a
//! data file should be.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use banbench::data::{self, DataError, ImageSet, Source};
use banbench::events::non_finite_loss_message;
use banbench::experiment::Experiment;
use banbench::run_dir::RunDir;
use banbench::run_dir::records::RunState;
use banbench::spec::Overrides;

/// A teacher and one BAN generation, one epoch each, in seconds.
const TINY: &str = r#"
name = "tiny"
seed = 3

[data]
source = "embedded"
train_samples = 300
test_samples = 200

[teacher]
arch = "mlp"
hidden = [32]

[schedule]
epochs = 1
batch_size = 20
lr = 0.05

[generations]
count = 1
control = "ban"
"#;

fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_banbench"))
}

/// Waits for `child`, failing after `limit` (and killing it, so no test hangs).
fn wait(mut child: Child, limit: Duration) -> (ExitStatus, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut stderr).unwrap();
            }
            return (status, stderr);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `args` with stdout a pipe whose reader reads `lines` lines and then closes it (as
/// `| head -N` does); 0 closes it before the process starts, so its first write meets a
/// closed pipe. Returns the exit status, the lines read and stderr.
fn with_stdout_closed_after(args: &[&str], lines: usize) -> (ExitStatus, Vec<String>, String) {
    let mut command = exe();
    command.args(args).stderr(Stdio::piped());
    let mut read = Vec::new();
    let child = if lines == 0 {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        command.stdout(writer).spawn().unwrap()
    } else {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        for _ in 0..lines {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            read.push(line);
        }
        drop(out);
        child
    };
    let (status, stderr) = wait(child, Duration::from_secs(300));
    (status, read, stderr)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn output_to_a_closed_pipe_ends_report_and_check_quietly_and_does_not_stop_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let preset = write(dir.path(), "tiny.toml", TINY);
    let preset = preset.to_str().unwrap();

    // `banbench run ... | head -3`: the run trains on after its output is lost, to the end.
    let out = dir.path().join("run");
    let (status, lines, stderr) =
        with_stdout_closed_after(&["run", preset, "--out", out.to_str().unwrap()], 3);
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let results = RunDir::open(&out).unwrap().results().unwrap().unwrap();
    assert_eq!(results.state, RunState::Finished);
    assert_eq!(results.generations.len(), 2);

    // Its output closed before the first line: the same.
    let early = dir.path().join("early");
    let (status, _, stderr) =
        with_stdout_closed_after(&["run", preset, "--out", early.to_str().unwrap()], 0);
    assert!(status.success(), "{status}: {stderr}");
    let results = RunDir::open(&early).unwrap().results().unwrap().unwrap();
    assert_eq!(results.state, RunState::Finished);

    // `banbench report DIR | head -1`, `banbench check PRESET | head -1`: success, quietly.
    let run = out.to_str().unwrap();
    for args in [["report", run], ["check", preset]] {
        for lines in [0, 1] {
            let (status, read, stderr) = with_stdout_closed_after(&args, lines);
            assert_eq!(status.code(), Some(0), "{args:?} after {lines}: {stderr}");
            assert_eq!(stderr, "", "{args:?} after {lines}");
            assert_eq!(read.len(), lines, "{args:?}");
        }
    }
}

fn vision(settings: &str) -> Experiment {
    let source = format!(
        r#"
name = "nan"
[data]
source = "embedded"
train_samples = 100
test_samples = 100
[teacher]
arch = "mlp"
hidden = [8]
{settings}
"#
    );
    Experiment::parse(&source, Path::new("nan.toml"), &Overrides::default()).unwrap()
}

fn schedule(lr: f64, weight_decay: f64) -> String {
    format!(
        "[schedule]\nepochs = 2\nbatch_size = 10\nlr = {lr:e}\nweight_decay = {weight_decay:e}\n"
    )
}

fn generations(control: &str, temperature: f64) -> String {
    format!("[generations]\ncount = 2\ncontrol = \"{control}\"\ntemperature = {temperature:e}\n")
}

/// In a first stage (FitNets' hint, FSP's) the rate to lower is that stage's own.
#[test]
fn a_non_finite_loss_in_a_first_stage_names_its_lr() {
    for (control, table) in [("fitnets", "fitnets"), ("fsp", "fsp")] {
        let text = schedule(0.1, 5e-4)
            + &generations(control, 1.0)
            + &format!("{table} = {{ epochs = 2, lr = 0.001 }}\n");
        // Feature controls read a convolutional network's sections.
        let source = format!(
            "name = \"nan\"\n[data]\nsource = \"embedded\"\n[teacher]\narch = \"cnn\"\nwidth = 4\n{text}"
        );
        let e = Experiment::parse(&source, Path::new("nan.toml"), &Overrides::default()).unwrap();
        let m = non_finite_loss_message(&e, 1, 2, 0.001, f32::NAN);
        assert!(
            m.ends_with(&format!("lower generations.{table}.lr (now 0.001)")),
            "{m}"
        );
        // Epoch 3 is the schedule's first.
        let m = non_finite_loss_message(&e, 1, 3, 0.1, f32::NAN);
        assert!(m.ends_with("lower schedule.lr (now 0.1)"), "{m}");
    }
}

#[test]
fn a_non_finite_loss_names_the_likely_cause() {
    // A tiny temperature, printed as 1e-300, not as a 300-digit decimal.
    let e = vision(&(schedule(0.1, 5e-4) + &generations("ban", 1e-300)));
    let m = non_finite_loss_message(&e, 1, 2, 0.1, f32::NAN);
    assert_eq!(
        m,
        "BAN-1: the training loss became NaN at epoch 2; the likely cause: generations.temperature \
         = 1e-300 (far below 1: the BAN loss divides the logits by it, which overflows; 1 to 20 \
         is usual)"
    );
    assert!(!m.contains("schedule.lr"), "{m}");
    // The teacher trains on labels: its temperature is no cause.
    let m = non_finite_loss_message(&e, 0, 1, 0.1, f32::INFINITY);
    assert_eq!(
        m,
        "Teacher: the training loss became inf at epoch 1; lower schedule.lr (now 0.1)"
    );

    // A huge temperature for KD.
    let e = vision(&(schedule(0.1, 5e-4) + &generations("kd", 1e300)));
    let m = non_finite_loss_message(&e, 2, 1, 0.1, f64::NAN);
    assert!(
        m.contains(
            "generations.temperature = 1e300 (far above 1: the KD loss is scaled by its square"
        ),
        "{m}"
    );
    // CWTM uses no temperature.
    let e = vision(&(schedule(0.1, 5e-4) + &generations("cwtm", 1e300)));
    assert!(!non_finite_loss_message(&e, 1, 1, 0.1, f64::NAN).contains("temperature"));

    // A huge weight decay, and with it a large learning rate: both named.
    let e = vision(&(schedule(5.0, 1e300) + &generations("ban", 1.0)));
    let m = non_finite_loss_message(&e, 1, 3, 5.0, f64::NAN);
    assert_eq!(
        m,
        "BAN-1: the training loss became NaN at epoch 3; likely causes: schedule.weight_decay = \
         1e300 (above 1: each step overshoots zero; 5e-4 is usual); a learning rate of 5 (above \
         1; see schedule.lr)"
    );

    // Ordinary settings: the learning rate in effect is the suspect.
    let e = vision(&(schedule(0.5, 5e-4) + &generations("ban+l", 1.5)));
    assert_eq!(
        non_finite_loss_message(&e, 1, 1, 0.5, f64::NAN),
        "BAN-1: the training loss became NaN at epoch 1; lower schedule.lr (now 0.5)"
    );
}

#[test]
fn a_non_finite_language_loss_names_the_learning_rate_and_clipping() {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/lm/quick.toml"),
    )
    .unwrap();
    let e = Experiment::parse(&source, Path::new("quick.toml"), &Overrides::default()).unwrap();
    let Experiment::Language(spec) = &e else {
        panic!("a language preset");
    };
    // The paper's lr of 20 is ordinary with clipped gradients.
    let m = non_finite_loss_message(&e, 1, 4, 20.0, f64::NAN);
    assert_eq!(
        m,
        format!(
            "BAN-1: the training loss became NaN at epoch 4; lower schedule.lr (now 20) or \
             schedule.clip (now {})",
            spec.schedule.clip
        )
    );
    let m = non_finite_loss_message(&e, 0, 1, 1e6, f64::NAN);
    assert!(
        m.contains("the likely cause: a learning rate of 1e6 (above 100 even with clipping"),
        "{m}"
    );
}

fn image_set(n: usize) -> ImageSet {
    ImageSet {
        images: (0..n * 4).map(|i| i as u8).collect(),
        labels: (0..n).map(|i| (i % 10) as u16).collect(),
        channels: 1,
        height: 2,
        width: 2,
    }
}

fn load_err(source: Source) -> String {
    match data::load(&source) {
        Err(e @ DataError::Invalid { .. }) => e.to_string(),
        other => panic!("expected an invalid path, got {other:?}"),
    }
}

#[test]
fn a_directory_where_an_idx_file_should_be_is_named_as_such() {
    for gz in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        data::write_idx(dir, &image_set(20), &image_set(10), gz).unwrap();
        let name = "t10k-labels-idx1-ubyte";
        let file = dir.join(if gz {
            format!("{name}.gz")
        } else {
            name.into()
        });
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        let message = load_err(Source::Idx { dir: dir.into() });
        assert!(
            message.starts_with(&format!(
                "{}: is a directory, not a file (expected the IDX file {name} or {name}.gz here, \
                 one of the IDX files train-images-idx3-ubyte[.gz]",
                file.display()
            )),
            "{message}"
        );
        assert!(!message.contains("not found"), "{message}");
        assert!(
            message.ends_with(&format!("in {})", dir.display())),
            "{message}"
        );
    }
}

#[test]
fn a_directory_where_a_cifar_file_should_be_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("data_batch_1.bin")).unwrap();
    let message = load_err(Source::Cifar10 { dir: dir.into() });
    assert_eq!(
        message,
        format!(
            "{0}/data_batch_1.bin: is a directory, not a file (expected the file \
             data_batch_1.bin here, one of the CIFAR-10 binary files data_batch_1.bin .. \
             data_batch_5.bin, test_batch.bin in {0} or {0}/cifar-10-batches-bin)",
            dir.display()
        )
    );
    std::fs::create_dir(dir.join("train.bin")).unwrap();
    let message = load_err(Source::Cifar100 {
        dir: dir.into(),
        coarse: false,
    });
    assert!(
        message.starts_with(&format!(
            "{}/train.bin: is a directory, not a file (expected the file train.bin here, one of \
             the CIFAR-100 binary files train.bin, test.bin",
            dir.display()
        )),
        "{message}"
    );
}
