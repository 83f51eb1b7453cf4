//! "`check` refuses what `run` cannot do": the real binary's `check` on presets that `run` could
//! not train (or would train into nonsense) exits 2, naming the field, its line where there is
//! one, and what was expected; never a panic, an abort or a silent "ok".

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use banbench::data::{ImageSet, write_idx};

/// A vision chain that `check` accepts: every case below changes one thing of it.
const VISION: &str = r#"name = "base"
seed = 1

[data]
source = "embedded"
train_samples = 100
test_samples = 50

[teacher]
arch = "mlp"
hidden = [16]

[schedule]
epochs = 1
batch_size = 20
lr = 0.05

[generations]
count = 2
control = "ban"

[[ensemble]]
name = "Ens*2"
members = [1, 2]

[[ensemble]]
name = "all"
members = [0, 1, 2]

[paper]
Teacher = 10.0
"#;

/// A language-model chain over a generated corpus (`CORPUS` is replaced by its directory).
const LANGUAGE: &str = r#"name = "lm-base"
seed = 1

[corpus]
path = "CORPUS"

[model]
arch = "lstm"
layers = 1
hidden = 8
dropout = 0.1

[schedule]
epochs = 1
batch_size = 4
eval_batch_size = 4
bptt = 5
lr = 1.0
plateau_factor = 0.25
clip = 5.0

[generations]
count = 2
control = "ban+l"

[[ensemble]]
name = "Teacher+BAN-1"
members = [0, 1]

[paper]
Teacher = { valid = 80.0, test = 78.0 }
"#;

fn banbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_banbench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The 1-based line of the first line of `text` that starts with `start` (after `after`, a
/// line that must come first, such as a section header).
fn line_of(text: &str, after: &str, start: &str) -> usize {
    let from = text
        .lines()
        .position(|l| l.trim() == after)
        .unwrap_or_else(|| panic!("no line `{after}`"));
    from + 1
        + text
            .lines()
            .skip(from)
            .position(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting `{start}` after `{after}`:\n{text}"))
}

/// `text` with the first occurrence of `from` replaced, which must be there.
fn with(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in the preset");
    text.replacen(from, to, 1)
}

/// `check` on `text` exits 2 without a panic; returns stderr.
fn refused(dir: &Path, text: &str) -> String {
    let preset = write(dir, "bad.toml", text);
    let o = banbench(&["check", preset.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected exit 2 for:\n{text}\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `check` refuses `text` naming `field` at `line` (`bad.toml:LINE: FIELD: ...`) and saying
/// `expected`.
fn refuses_at(dir: &Path, text: &str, line: usize, field: &str, expected: &str) {
    let err = refused(dir, text);
    assert!(
        err.contains(&format!("bad.toml:{line}: {field}: ")) && err.contains(expected),
        "expected `bad.toml:{line}: {field}: ... {expected}` for:\n{text}\n{err}"
    );
}

fn accepted(dir: &Path, text: &str) -> String {
    let preset = write(dir, "ok.toml", text);
    let o = banbench(&["check", preset.to_str().unwrap()]);
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_base_presets_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    accepted(dir.path(), VISION);
    let corpus = corpus(dir.path(), 200, 40, 40);
    accepted(dir.path(), &language(&corpus));
}

#[test]
fn a_vision_batch_of_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = with(VISION, "batch_size = 20", "batch_size = 1");
    let line = line_of(&text, "[schedule]", "batch_size");
    refuses_at(dir.path(), &text, line, "schedule.batch_size", "at least 2");
    let text = with(VISION, "batch_size = 20", "batch_size = 0");
    refuses_at(dir.path(), &text, line, "schedule.batch_size", "batch norm");
    // Batches of two train.
    accepted(
        dir.path(),
        &with(VISION, "batch_size = 20", "batch_size = 2"),
    );
}

/// An IDX directory of 20 train and 10 test images of `side` x `side` pixels.
fn idx(dir: &Path, side: usize) -> PathBuf {
    let path = dir.join(format!("idx-{side}"));
    std::fs::create_dir_all(&path).unwrap();
    let set = |n: usize| ImageSet {
        images: (0..n * side * side).map(|i| (i * 37 % 256) as u8).collect(),
        labels: (0..n).map(|i| (i % 10) as u16).collect(),
        channels: 1,
        height: side,
        width: side,
    };
    write_idx(&path, &set(20), &set(10), false).unwrap();
    path
}

fn on_idx(data: &Path, model: &str) -> String {
    let text = with(
        VISION,
        "source = \"embedded\"\ntrain_samples = 100\ntest_samples = 50",
        &format!("source = \"idx\"\npath = \"{}\"", data.display()),
    );
    with(&text, "arch = \"mlp\"\nhidden = [16]", model)
}

#[test]
fn images_too_small_for_the_network_are_refused_naming_the_data_file() {
    // Needs `banbench::data::check_models` called in `task::vision::load_data` (see the
    // report of this change): the shape of IDX images is known only once they are loaded.
    let dir = tempfile::tempdir().unwrap();
    for side in [1, 2, 3] {
        let data = idx(dir.path(), side);
        for model in [
            "arch = \"cnn\"\nwidth = 4",
            "arch = \"densenet-bc\"\ndepth = 10\ngrowth = 2",
        ] {
            let err = refused(dir.path(), &on_idx(&data, model));
            let file = data.join("train-images-idx3-ubyte");
            assert!(
                err.contains(&file.display().to_string())
                    && err.contains(&format!("{side}x{side} pixels"))
                    && err.contains("at least 4x4"),
                "{model} on {side}x{side}:\n{err}"
            );
        }
        // Padded strided convolutions and an MLP take any size.
        accepted(dir.path(), &on_idx(&data, "arch = \"mlp\"\nhidden = [16]"));
        accepted(
            dir.path(),
            &on_idx(&data, "arch = \"wide-resnet\"\ndepth = 10\nwiden = 1"),
        );
    }
    accepted(
        dir.path(),
        &on_idx(&idx(dir.path(), 4), "arch = \"cnn\"\nwidth = 4"),
    );
}

#[test]
fn models_too_large_to_count_or_allocate_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let line = line_of(VISION, "[teacher]", "hidden");
    for (hidden, expected) in [
        ("[1000000000000]", "795000000000010 parameters, more than"),
        ("[4611686018427387904, 4611686018427387904]", "counted"),
        ("[10000000]", "more than the 4000000000"),
    ] {
        let text = with(VISION, "hidden = [16]", &format!("hidden = {hidden}"));
        refuses_at(dir.path(), &text, line, "teacher.hidden", expected);
    }
    // A student too, at its own section.
    let text = format!(
        "{}\n[student]\narch = \"mlp\"\nhidden = [1000000000000]\n",
        VISION.replace("[paper]\nTeacher = 10.0\n", "")
    );
    let line = line_of(&text, "[student]", "hidden");
    refuses_at(dir.path(), &text, line, "student.hidden", "parameters");
}

#[test]
fn derived_counts_are_checked_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let model = |m: &str| with(VISION, "arch = \"mlp\"\nhidden = [16]", m);
    let cases = [
        // Depths beyond any network, which would wrap `(depth - 2) / 6` sums or loop forever.
        (
            "arch = \"preact-resnet\"\ndepth = 9223372036854775807",
            "depth",
            "at most 10000",
        ),
        (
            "arch = \"wide-resnet\"\ndepth = 9223372036854775806\nwiden = 1",
            "depth",
            "at most 10000",
        ),
        (
            "arch = \"densenet-bc\"\ndepth = 9223372036854775806\ngrowth = 12",
            "depth",
            "at most 10000",
        ),
        // Blocks whose sum wraps to a small depth.
        (
            "arch = \"preact-resnet\"\ndepth = 8\nblocks = [9223372036854775807, 9223372036854775807, 4]",
            "blocks",
            "too many units",
        ),
        (
            "arch = \"densenet-bc\"\ndepth = 10\ngrowth = 12\nblock_layers = [9223372036854775807, 9223372036854775807, 4]",
            "block_layers",
            "too many layers",
        ),
        // Channel products: explicit widths, a stem, growth x layers.
        (
            "arch = \"preact-resnet\"\ndepth = 11\nunit = \"bottleneck\"\nchannels = [4294967296, 4294967296, 4294967296]",
            "channels",
            "counted",
        ),
        (
            "arch = \"densenet-bc\"\ndepth = 10\ngrowth = 12\nstem = 9223372036854775807",
            "stem",
            "counted",
        ),
        (
            "arch = \"preact-resnet\"\ndepth = 8\nstem = 9223372036854775807",
            "stem",
            "counted",
        ),
        (
            "arch = \"wide-resnet\"\ndepth = 10\nwiden = 64",
            "widen",
            "",
        ),
    ];
    for (m, key, expected) in cases {
        let text = model(m);
        if expected.is_empty() {
            // WRN-10-64 is large but countable.
            accepted(dir.path(), &text);
            continue;
        }
        let line = line_of(&text, "[teacher]", key);
        refuses_at(dir.path(), &text, line, &format!("teacher.{key}"), expected);
    }
}

#[test]
fn memory_beyond_the_machine_is_refused() {
    // Needs `arch::chain_memory` and `arch::check_memory` called for CPU devices (see the
    // report of this change). A CNN-512 on 10,000 images in one batch needs hundreds of GB of
    // feature maps (its weights are only 7M parameters), more than any machine here has.
    let dir = tempfile::tempdir().unwrap();
    let text = with(
        &with(
            VISION,
            "arch = \"mlp\"\nhidden = [16]",
            "arch = \"cnn\"\nwidth = 512",
        ),
        "batch_size = 20",
        "batch_size = 10000",
    );
    let text = with(&text, "train_samples = 100", "train_samples = 10000");
    let err = refused(dir.path(), &text);
    assert!(
        err.contains("GB") && err.contains("available"),
        "expected the estimate and the limit:\n{err}"
    );
}

#[test]
fn language_numbers_must_be_finite_and_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(dir.path(), 200, 40, 40);
    let base = language(&corpus);
    for (from, to, section, key, expected) in [
        (
            "clip = 5.0",
            "clip = 5.0\ninit_range = inf",
            "[schedule]",
            "init_range",
            "0 < init_range <= 1",
        ),
        (
            "clip = 5.0",
            "clip = 5.0\ninit_range = 1e300",
            "[schedule]",
            "init_range",
            "0 < init_range <= 1",
        ),
        (
            "clip = 5.0",
            "clip = 5.0\ninit_range = nan",
            "[schedule]",
            "init_range",
            "0 < init_range <= 1",
        ),
        (
            "clip = 5.0",
            "clip = inf",
            "[schedule]",
            "clip",
            "finite positive",
        ),
        (
            "clip = 5.0",
            "clip = nan",
            "[schedule]",
            "clip",
            "finite positive",
        ),
        (
            "lr = 1.0",
            "lr = inf",
            "[schedule]",
            "lr",
            "not a positive learning rate",
        ),
        (
            "lr = 1.0",
            "lr = nan",
            "[schedule]",
            "lr",
            "not a positive learning rate",
        ),
        (
            "plateau_factor = 0.25",
            "plateau_factor = nan",
            "[schedule]",
            "plateau_factor",
            "(0, 1]",
        ),
        (
            "plateau_factor = 0.25",
            "plateau_factor = 2.0",
            "[schedule]",
            "plateau_factor",
            "(0, 1]",
        ),
        (
            "clip = 5.0",
            "clip = 5.0\nplateau_threshold = inf",
            "[schedule]",
            "plateau_threshold",
            "finite",
        ),
        (
            "clip = 5.0",
            "clip = 5.0\nplateau_threshold = -1.0",
            "[schedule]",
            "plateau_threshold",
            ">= 0",
        ),
        (
            "dropout = 0.1",
            "dropout = nan",
            "[model]",
            "dropout",
            "[0, 1)",
        ),
        (
            "dropout = 0.1",
            "dropout = 1.0",
            "[model]",
            "dropout",
            "[0, 1)",
        ),
        (
            "hidden = 8",
            "hidden = 1000000000000",
            "[model]",
            "hidden",
            "parameters",
        ),
        (
            "layers = 1",
            "layers = 1000000",
            "[model]",
            "layers",
            "at most 100",
        ),
        (
            "count = 2",
            "count = 1000000000",
            "[generations]",
            "count",
            "0..=20",
        ),
    ] {
        let text = with(&base, from, to);
        let line = line_of(&text, section, &format!("{key} ="));
        let field = format!("{}.{key}", section.trim_matches(|c| c == '[' || c == ']'));
        refuses_at(dir.path(), &text, line, &field, expected);
    }
    // Vision numbers too.
    for (from, to, key, expected) in [
        ("lr = 0.05", "lr = inf", "schedule.lr", "positive"),
        ("lr = 0.05", "lr = nan", "schedule.lr", "positive"),
        (
            "lr = 0.05",
            "lr = 0.05\nmomentum = nan",
            "schedule.momentum",
            "0 <= momentum < 1",
        ),
        (
            "lr = 0.05",
            "lr = 0.05\nweight_decay = inf",
            "schedule.weight_decay",
            ">= 0",
        ),
        (
            "lr = 0.05",
            "lr = 0.05\nlr_factor = nan",
            "schedule.lr_factor",
            "0 < lr_factor <= 1",
        ),
        (
            "control = \"ban\"",
            "control = \"ban\"\ntemperature = inf",
            "generations.temperature",
            "positive",
        ),
        (
            "control = \"ban\"",
            "control = \"kd\"\nkd_alpha = nan",
            "generations.kd_alpha",
            "0..=1",
        ),
    ] {
        let text = with(VISION, from, to);
        let (section, key) = key.split_once('.').unwrap();
        let line = line_of(&text, &format!("[{section}]"), &format!("{key} ="));
        refuses_at(
            dir.path(),
            &text,
            line,
            &format!("{section}.{key}"),
            expected,
        );
    }
}

/// Sentences of a small grammar, one per line: 6 tokens each with `<eos>`.
fn sentences(n: usize, seed: u64) -> String {
    let nouns = ["cat", "dog", "bird", "fish", "child"];
    let verbs = ["sees", "likes", "finds"];
    let mut state = seed;
    let mut pick = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as usize
    };
    (0..n)
        .map(|_| {
            format!(
                " the {} {} the {} \n",
                nouns[pick(nouns.len())],
                verbs[pick(verbs.len())],
                nouns[pick(nouns.len())]
            )
        })
        .collect()
}

/// A corpus directory with `train`, `valid` and `test` sentences per split (6 tokens each).
fn corpus(dir: &Path, train: usize, valid: usize, test: usize) -> PathBuf {
    let path = dir.join(format!("corpus-{train}-{valid}-{test}"));
    std::fs::create_dir_all(&path).unwrap();
    for (split, n, seed) in [("train", train, 1), ("valid", valid, 2), ("test", test, 3)] {
        let text = if n == 0 {
            // Five tokens: four words and <eos>.
            " the cat sees dogs \n".to_string()
        } else {
            sentences(n, seed)
        };
        std::fs::write(path.join(format!("ptb.{split}.txt")), text).unwrap();
    }
    path
}

fn language(corpus: &Path) -> String {
    LANGUAGE.replace("CORPUS", &corpus.display().to_string())
}

#[test]
fn a_corpus_without_a_full_window_per_split_is_refused_naming_file_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let corpus_ok = corpus(dir.path(), 200, 40, 40);
    let base = language(&corpus_ok);
    // Known from the spec alone: every split is cut to max_tokens.
    let text = with(&base, "path = ", "max_tokens = 1\npath = ");
    let line = line_of(&text, "[corpus]", "max_tokens");
    refuses_at(
        dir.path(),
        &text,
        line,
        "corpus.max_tokens",
        "cannot fill one window of schedule.bptt = 5 steps in each of 4 rows",
    );
    let text = with(&base, "path = ", "max_tokens = 23\npath = ");
    refuses_at(
        dir.path(),
        &text,
        line,
        "corpus.max_tokens",
        "expected at least 24",
    );
    accepted(
        dir.path(),
        &with(&base, "path = ", "max_tokens = 24\npath = "),
    );

    // Known once the corpus is read: a 5-token validation (or test, or training) split.
    for (train, valid, test, file, field) in [
        (200, 0, 40, "ptb.valid.txt", "schedule.eval_batch_size = 4"),
        (200, 40, 0, "ptb.test.txt", "schedule.eval_batch_size = 4"),
        (0, 40, 40, "ptb.train.txt", "schedule.batch_size = 4"),
    ] {
        let c = corpus(dir.path(), train, valid, test);
        let err = refused(dir.path(), &language(&c));
        assert!(
            err.contains(&c.join(file).display().to_string())
                && err.contains("5 tokens")
                && err.contains(field)
                && err.contains("schedule.bptt = 5")
                && err.contains("expected at least 24 tokens"),
            "{file}:\n{err}"
        );
    }
    // Larger evaluation batches need more: 40 sentences are 240 tokens, 40 rows need 240.
    let text = with(&base, "eval_batch_size = 4", "eval_batch_size = 41");
    let err = refused(dir.path(), &text);
    assert!(
        err.contains("ptb.valid.txt") && err.contains("schedule.eval_batch_size = 41"),
        "{err}"
    );
}

#[test]
fn a_language_batch_of_one_is_accepted_and_trains() {
    // A language model has no batch norm: one row per batch trains (the loss falls).
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path(), 100, 20, 20);
    let text = with(
        &with(&language(&c), "batch_size = 4", "batch_size = 1"),
        "eval_batch_size = 4",
        "eval_batch_size = 1",
    );
    let text = with(&text, "count = 2", "count = 1");
    let text = with(&text, "Teacher = { valid = 80.0, test = 78.0 }", "");
    accepted(dir.path(), &text);
    let preset = write(dir.path(), "one.toml", &text);
    let out = dir.path().join("run");
    let o = banbench(&[
        "run",
        preset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn language_ensembles_need_two_distinct_members() {
    let dir = tempfile::tempdir().unwrap();
    let base = language(&corpus(dir.path(), 200, 40, 40));
    for (members, expected) in [
        ("[1, 1]", "lists a generation twice"),
        ("[0]", "at least 2 distinct members"),
        ("[]", "at least 2 distinct members"),
        ("[0, 3]", "generation 3"),
    ] {
        let text = with(&base, "members = [0, 1]", &format!("members = {members}"));
        let line = line_of(&text, "[[ensemble]]", "members");
        refuses_at(dir.path(), &text, line, "ensemble.members", expected);
    }
}

#[test]
fn ensemble_names_must_be_distinct_plain_and_not_a_generations() {
    let dir = tempfile::tempdir().unwrap();
    let lm = language(&corpus(dir.path(), 200, 40, 40));
    for (name, expected) in [
        ("\"\"", "non-empty"),
        ("\"  \"", "non-empty"),
        ("\"Teacher\"", "row label"),
        ("\"BAN-1\"", "row label"),
        ("\"BAN-17\"", "row label"),
        ("\"ban-2\"", "row label"),
        ("\"a\\nb\"", "control characters"),
        ("\"a\\u0007b\"", "control characters"),
    ] {
        // Vision: the second ensemble, at its own line.
        let text = with(VISION, "name = \"all\"", &format!("name = {name}"));
        let line = line_of(&text, "[[ensemble]]", "members") + 3;
        refuses_at(dir.path(), &text, line, "ensemble.name", expected);
        let text = with(&lm, "name = \"Teacher+BAN-1\"", &format!("name = {name}"));
        let line = line_of(&text, "[[ensemble]]", "name");
        refuses_at(dir.path(), &text, line, "ensemble.name", expected);
    }
    let text = with(VISION, "name = \"all\"", "name = \"Ens*2\"");
    let line = line_of(&text, "[[ensemble]]", "members") + 3;
    refuses_at(dir.path(), &text, line, "ensemble.name", "two ensembles");
    // Vision ensembles as before.
    let text = with(VISION, "members = [1, 2]", "members = [1, 1]");
    let line = line_of(&text, "[[ensemble]]", "members");
    refuses_at(dir.path(), &text, line, "ensemble.members", "twice");
}

#[test]
fn paper_rows_must_be_rows_of_the_run_with_finite_values() {
    let dir = tempfile::tempdir().unwrap();
    for (entry, expected) in [
        ("Teachr = 10.0", "`Teachr` is not a row of this run"),
        ("BAN-3 = 10.0", "`BAN-3` is not a row"),
        ("BAN-0 = 10.0", "`BAN-0` is not a row"),
        ("\"Ens*3\" = 10.0", "`Ens*3` is not a row"),
        ("Teacher = nan", "a test error in %"),
        ("Teacher = -1.0", "a test error in %"),
        ("Teacher = inf", "a test error in %"),
        ("Teacher = 101.0", "between 0 and 100"),
    ] {
        let text = with(VISION, "Teacher = 10.0", entry);
        let line = line_of(&text, "[paper]", entry.split(" =").next().unwrap());
        let label = entry.split(" =").next().unwrap().trim_matches('"');
        refuses_at(dir.path(), &text, line, &format!("paper.{label}"), expected);
    }
    // Every row of the run is fine, an ensemble's name included.
    accepted(
        dir.path(),
        &with(
            VISION,
            "Teacher = 10.0",
            "Teacher = 10.0\nBAN-2 = 9.5\n\"Ens*2\" = 9.0\nall = 0.0",
        ),
    );
    let lm = language(&corpus(dir.path(), 200, 40, 40));
    for (entry, expected) in [
        ("BAN-7 = { valid = 80.0 }", "`BAN-7` is not a row"),
        ("Teacher = { valid = nan }", "valid: expected a perplexity"),
        ("Teacher = { test = -3.0 }", "test: expected a perplexity"),
        ("Teacher = { test = inf }", "test: expected a perplexity"),
    ] {
        let text = with(&lm, "Teacher = { valid = 80.0, test = 78.0 }", entry);
        let line = line_of(&text, "[paper]", entry.split(" =").next().unwrap());
        let label = entry.split(" =").next().unwrap();
        refuses_at(dir.path(), &text, line, &format!("paper.{label}"), expected);
    }
    accepted(
        dir.path(),
        &with(
            &lm,
            "Teacher = { valid = 80.0, test = 78.0 }",
            "\"Teacher+BAN-1\" = { test = 70.0 }\nBAN-2 = { valid = 1.0 }",
        ),
    );
}

/// A one-row table of the base vision chain; `paper` is the row's paper values.
fn table(paper: &str, cells: &str) -> String {
    format!(
        r#"[table]
name = "t"
title = "T"
columns = ["Teacher", "BAN", "Params"]
cells = {{ {cells} }}

[base]
data = {{ source = "embedded", train_samples = 100, test_samples = 50 }}
teacher = {{ arch = "mlp", hidden = [16] }}
schedule = {{ epochs = 1, batch_size = 20, lr = 0.05 }}
generations = {{ count = 1, control = "ban" }}

[profiles.full]

[[row]]
name = "r"
paper = {{ {paper} }}
"#
    )
}

const CELLS: &str =
    "Teacher = \"main:Teacher\", BAN = \"main:BAN-1\", Params = \"main:Teacher:params\"";

#[test]
fn table_paper_values_are_checked_as_the_cells_fill_them() {
    let dir = tempfile::tempdir().unwrap();
    accepted(
        dir.path(),
        &table("Teacher = 10.0, BAN = 9, Params = \"0.1M\"", CELLS),
    );
    // The paper's "/" (not reported) is text, shown as written.
    accepted(dir.path(), &table("BAN = \"/\"", CELLS));
    for (paper, cells, expected) in [
        (
            "Teacher = nan",
            CELLS,
            "paper.\"Teacher\": expected a finite number",
        ),
        (
            "Teacher = -2.0",
            CELLS,
            "paper.\"Teacher\": expected a finite number",
        ),
        (
            "BAN = inf",
            CELLS,
            "paper.\"BAN\": expected a finite number",
        ),
        ("Teacher = 200.0", CELLS, "between 0 and 100"),
        ("Teacher = [1.0]", CELLS, "expected the paper's number"),
        ("Student = 1.0", CELLS, "paper.\"Student\": not a column"),
        // A cell naming a row the chain does not have, filled with a paper value.
        (
            "BAN = 9.0",
            "Teacher = \"main:Teacher\", BAN = \"main:BAN-2\"",
            "`BAN-2` is not a row of this run",
        ),
        (
            "BAN = 9.0",
            "Teacher = \"main:Teacher\", BAN = \"main:BAN-1:valid\"",
            "has no ValidationPerplexity",
        ),
    ] {
        let err = refused(dir.path(), &table(paper, cells));
        assert!(
            err.contains("row `r`") && err.contains(expected),
            "{paper} / {cells}:\n{err}"
        );
    }
}

#[test]
fn coarse_labels_are_refused_on_data_other_than_cifar100() {
    let dir = tempfile::tempdir().unwrap();
    let text = with(
        VISION,
        "test_samples = 50",
        "test_samples = 50\nlabels = \"coarse\"",
    );
    let line = line_of(&text, "[data]", "labels");
    refuses_at(
        dir.path(),
        &text,
        line,
        "data.labels",
        "only CIFAR-100 has coarse labels",
    );
    let text = with(
        VISION,
        "source = \"embedded\"",
        "source = \"cifar10\"\npath = \"/nonexistent\"\nlabels = \"coarse\"",
    );
    let line = line_of(&text, "[data]", "labels");
    refuses_at(dir.path(), &text, line, "data.labels", "only CIFAR-100");
}

#[test]
fn names_that_are_not_one_directory_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lm = language(&corpus(dir.path(), 200, 40, 40));
    for (name, expected) in [
        ("/tmp/abs", "outside runs/"),
        ("../../x", "outside runs/"),
        ("a/b", "outside runs/"),
        ("a\\\\b", "outside runs/"),
        ("..", "outside runs/"),
        (".hidden", "leading `.`"),
        ("", "non-empty"),
        ("a\\nb", "control character"),
        ("a\\u0000b", "control character"),
    ] {
        for base in [VISION, lm.as_str()] {
            let first = base.lines().next().unwrap();
            let text = with(base, first, &format!("name = \"{name}\""));
            refuses_at(dir.path(), &text, 1, "name", expected);
        }
    }
    let long = "x".repeat(201);
    let text = with(VISION, "name = \"base\"", &format!("name = \"{long}\""));
    refuses_at(dir.path(), &text, 1, "name", "at most 200 bytes");
    // Names with dots, spaces and pluses inside are plain directory names.
    accepted(
        dir.path(),
        &with(VISION, "name = \"base\"", "name = \"a b+c-0.5\""),
    );
    // A table's name and profiles name its directory too.
    let t = table("Teacher = 10.0", CELLS);
    let err = refused(dir.path(), &with(&t, "name = \"t\"", "name = \"../t\""));
    assert!(
        err.contains("table.name") && err.contains("outside runs/"),
        "{err}"
    );
    let err = refused(
        dir.path(),
        &with(
            &t,
            "[profiles.full]",
            "[profiles.full]\n[profiles.\"../x\"]",
        ),
    );
    assert!(
        err.contains("profiles.\"../x\"") && err.contains("outside runs/"),
        "{err}"
    );
    // A row's name becomes part of each chain's name.
    let err = refused(dir.path(), &with(&t, "name = \"r\"", "name = \"r/s\""));
    assert!(err.contains("name: `t-r/s-main`"), "{err}");
}

#[test]
fn run_refuses_what_check_refuses() {
    // `run` validates the same way (Preset::load, then the data or corpus), before anything
    // trains: the same exit 2 and message.
    let dir = tempfile::tempdir().unwrap();
    let c = corpus(dir.path(), 200, 0, 40);
    for text in [
        with(VISION, "batch_size = 20", "batch_size = 1"),
        with(VISION, "name = \"base\"", "name = \"../../x\""),
        language(&c),
    ] {
        let preset = write(dir.path(), "bad.toml", &text);
        let out = dir.path().join("run");
        let o = banbench(&[
            "run",
            preset.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(!out.join("metrics.jsonl").exists());
    }
}
