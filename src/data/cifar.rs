//! The CIFAR-10 and CIFAR-100 binary versions: fixed-size records of label byte(s) followed by
//! 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32x32 row-major), which is already
//! the CHW layout of `ImageSet`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DataError, ImageSet, read_file};

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;
const CIFAR10_TRAIN: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const CIFAR10_TEST: &str = "test_batch.bin";
/// Records per file: fixed by the format, so any other size means a wrong or damaged file.
const CIFAR10_RECORDS: usize = 10_000;
const CIFAR100_TRAIN_RECORDS: usize = 50_000;
const CIFAR100_TEST_RECORDS: usize = 10_000;
/// Synthetic CIFAR-100 data groups fine classes 5k..5k+4 into coarse class k.
const FINE_PER_COARSE: u8 = 5;

/// Loads (train, test) of CIFAR-10 from `dir` or `dir/cifar-10-batches-bin`.
pub(super) fn load_cifar10(dir: &Path) -> Result<(ImageSet, ImageSet), DataError> {
    let expected = || {
        format!(
            "CIFAR-10 binary files data_batch_1.bin .. data_batch_5.bin, test_batch.bin in {0} or {0}/cifar-10-batches-bin",
            dir.display()
        )
    };
    let files = resolve(dir, "cifar-10-batches-bin", CIFAR10_TEST);
    let layout = Layout {
        records: CIFAR10_RECORDS,
        label_bytes: 1,
        label_at: 0,
        num_classes: 10,
    };
    let train = layout.read(&CIFAR10_TRAIN.map(|name| files.join(name)), expected)?;
    let test = layout.read(&[files.join(CIFAR10_TEST)], expected)?;
    Ok((train, test))
}

/// Loads (train, test) of CIFAR-100 from `dir` or `dir/cifar-100-binary`, with the 20 coarse or
/// the 100 fine labels.
pub(super) fn load_cifar100(dir: &Path, coarse: bool) -> Result<(ImageSet, ImageSet), DataError> {
    let expected = || {
        format!(
            "CIFAR-100 binary files train.bin, test.bin in {0} or {0}/cifar-100-binary",
            dir.display()
        )
    };
    let files = resolve(dir, "cifar-100-binary", "test.bin");
    let (label_at, num_classes) = if coarse { (0, 20) } else { (1, 100) };
    let layout = |records| Layout {
        records,
        label_bytes: 2,
        label_at,
        num_classes,
    };
    let train = layout(CIFAR100_TRAIN_RECORDS).read(&[files.join("train.bin")], expected)?;
    let test = layout(CIFAR100_TEST_RECORDS).read(&[files.join("test.bin")], expected)?;
    Ok((train, test))
}

/// The (first) training file of CIFAR-100 (`cifar100`) or CIFAR-10 in `dir`.
pub(super) fn train_path(dir: &Path, cifar100: bool) -> PathBuf {
    if cifar100 {
        resolve(dir, "cifar-100-binary", "test.bin").join("train.bin")
    } else {
        resolve(dir, "cifar-10-batches-bin", CIFAR10_TEST).join(CIFAR10_TRAIN[0])
    }
}

/// The directory holding the files: `dir/sub` when only it has `probe` (the archives unpack there).
fn resolve(dir: &Path, sub: &str, probe: &str) -> PathBuf {
    let nested = dir.join(sub);
    if !dir.join(probe).exists() && nested.join(probe).exists() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// One file's record layout.
struct Layout {
    records: usize,
    label_bytes: usize,
    /// Which label byte to use (CIFAR-100: 0 coarse, 1 fine).
    label_at: usize,
    num_classes: usize,
}

impl Layout {
    /// Reads the files at `paths` into one set.
    fn read(
        &self,
        paths: &[PathBuf],
        expected: impl Fn() -> String + Copy,
    ) -> Result<ImageSet, DataError> {
        let capacity = paths.len() * self.records;
        let mut set = ImageSet {
            images: Vec::with_capacity(capacity * PIXELS),
            labels: Vec::with_capacity(capacity),
            channels: 3,
            height: SIDE,
            width: SIDE,
        };
        for path in paths {
            self.append(&mut set, path, expected)?;
        }
        Ok(set)
    }

    /// Reads the file at `path` and appends its records to `set`.
    fn append(
        &self,
        set: &mut ImageSet,
        path: &Path,
        expected: impl FnOnce() -> String,
    ) -> Result<(), DataError> {
        if path.is_dir() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            return Err(DataError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "is a directory, not a file (expected the file {name} here, one of the {})",
                    expected()
                ),
            });
        }
        let bytes = read_file(path, expected)?;
        let record_len = self.label_bytes + PIXELS;
        let expected_len = (self.records * record_len) as u64;
        if bytes.len() as u64 != expected_len {
            return Err(DataError::Size {
                path: path.to_path_buf(),
                expected: expected_len,
                layout: format!("{} records of {record_len} bytes", self.records),
                found: bytes.len() as u64,
            });
        }
        for (index, record) in bytes.chunks_exact(record_len).enumerate() {
            let label = u16::from(record[self.label_at]);
            if usize::from(label) >= self.num_classes {
                let num_classes = self.num_classes;
                return Err(DataError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    index,
                    label,
                    num_classes,
                });
            }
            set.labels.push(label);
            set.images.extend_from_slice(&record[self.label_bytes..]);
        }
        Ok(())
    }
}

/// Writes full-size synthetic CIFAR-10 files (data_batch_1.bin .. data_batch_5.bin,
/// test_batch.bin) into `dir`: each class has its own mean colour and stripe pattern plus noise,
/// every file holds each class equally often, and everything follows from `seed`.
pub fn write_synthetic_cifar10(dir: &Path, seed: u64) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let templates = templates(10, &mut rng);
    for name in CIFAR10_TRAIN.into_iter().chain([CIFAR10_TEST]) {
        fs::write(
            dir.join(name),
            synthetic_records(&templates, CIFAR10_RECORDS, false, &mut rng),
        )?;
    }
    Ok(())
}

/// Writes full-size synthetic CIFAR-100 files (train.bin, test.bin) into `dir`, made like
/// `write_synthetic_cifar10`'s; fine classes 5k..5k+4 form coarse class k.
pub fn write_synthetic_cifar100(dir: &Path, seed: u64) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let templates = templates(100, &mut rng);
    for (name, records) in [
        ("train.bin", CIFAR100_TRAIN_RECORDS),
        ("test.bin", CIFAR100_TEST_RECORDS),
    ] {
        fs::write(
            dir.join(name),
            synthetic_records(&templates, records, true, &mut rng),
        )?;
    }
    Ok(())
}

/// The noise-free image of each class: a random colour with horizontal or vertical stripes of a
/// random period, kept away from 0 and 255 so the noise rarely clips.
fn templates(num_classes: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u8>> {
    (0..num_classes)
        .map(|_| {
            let colour: [i32; 3] = std::array::from_fn(|_| rng.random_range(64..=191));
            let (period, vertical) = (rng.random_range(2..=8), rng.random_bool(0.5));
            (0..PIXELS)
                .map(|i| {
                    let (c, y, x) = (i / (SIDE * SIDE), i / SIDE % SIDE, i % SIDE);
                    let stripe = if (if vertical { x } else { y }) / period % 2 == 0 {
                        32
                    } else {
                        -32
                    };
                    (colour[c] + stripe) as u8
                })
                .collect()
        })
        .collect()
}

/// `records` records with each class equally often (as far as divisible) in random order.
fn synthetic_records(
    templates: &[Vec<u8>],
    records: usize,
    with_coarse: bool,
    rng: &mut ChaCha8Rng,
) -> Vec<u8> {
    let mut labels: Vec<u8> = (0..records).map(|i| (i % templates.len()) as u8).collect();
    labels.shuffle(rng);
    let mut out = Vec::with_capacity(records * (PIXELS + 2));
    let mut noise = [0u8; PIXELS];
    for label in labels {
        if with_coarse {
            out.push(label / FINE_PER_COARSE);
        }
        out.push(label);
        rng.fill_bytes(&mut noise);
        let template = &templates[usize::from(label)];
        // Noise uniform in -32..=31.
        out.extend(
            template
                .iter()
                .zip(&noise)
                .map(|(&t, &n)| (i16::from(t) + i16::from(n / 4) - 32) as u8),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Source, load};
    use super::*;

    fn load_err(source: Source) -> String {
        load(&source).expect_err("load should fail").to_string()
    }

    /// Per-channel mean of one image.
    fn mean_colour(image: &[u8]) -> [f64; 3] {
        std::array::from_fn(|c| {
            image[c * 1024..(c + 1) * 1024]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / 1024.0
        })
    }

    #[test]
    fn synthetic_records_follow_the_seed() {
        let make = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let t = templates(10, &mut rng);
            synthetic_records(&t, 20, true, &mut rng)
        };
        assert_eq!(make(1), make(1));
        assert_ne!(make(1), make(2));
        assert_eq!(make(1).len(), 20 * 3074);
    }

    #[test]
    fn cifar10_reads_checks_and_is_learnable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cifar-10-batches-bin");
        fs::create_dir(&dir).unwrap();
        write_synthetic_cifar10(&dir, 7).unwrap();
        assert_eq!(
            fs::metadata(dir.join("data_batch_3.bin")).unwrap().len(),
            30_730_000
        );

        // The unpacked archive's subdirectory is found from its parent.
        let d = load(&Source::Cifar10 {
            dir: tmp.path().to_path_buf(),
        })
        .unwrap();
        assert_eq!(
            (d.name.as_str(), d.num_classes, d.class_names[0].as_str()),
            ("cifar-10", 10, "airplane")
        );
        assert_eq!((d.train.len(), d.test.len()), (50_000, 10_000));
        assert_eq!(
            (d.train.channels, d.train.height, d.train.width),
            (3, 32, 32)
        );
        assert_eq!(d.train.class_counts(10).unwrap(), [5000; 10]);
        assert_eq!(d.test.class_counts(10).unwrap(), [1000; 10]);

        // Learnable: the nearest class mean colour (from train) classifies the test set.
        let mut sums = vec![[0.0; 3]; 10];
        for i in 0..d.train.len() {
            let m = mean_colour(d.train.image(i));
            (0..3).for_each(|c| sums[usize::from(d.train.labels[i])][c] += m[c] / 5000.0);
        }
        let correct = (0..d.test.len())
            .filter(|&i| {
                let m = mean_colour(d.test.image(i));
                let dist = |k: usize| (0..3).map(|c| (sums[k][c] - m[c]).powi(2)).sum::<f64>();
                (0..10).min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
                    == Some(usize::from(d.test.labels[i]))
            })
            .count();
        assert!(correct > 9_500, "{correct}");

        // Files are read in order, so damage them from the last one read to the first.
        let short = dir.join("test_batch.bin");
        fs::File::options()
            .write(true)
            .open(&short)
            .unwrap()
            .set_len(1234)
            .unwrap();
        assert_eq!(
            load_err(Source::Cifar10 { dir: dir.clone() }),
            format!(
                "{}: expected 30730000 bytes (10000 records of 3073 bytes), found 1234",
                short.display()
            )
        );

        let bad_label = dir.join("data_batch_3.bin");
        let mut bytes = fs::read(&bad_label).unwrap();
        bytes[5 * 3073] = 10;
        fs::write(&bad_label, bytes).unwrap();
        assert_eq!(
            load_err(Source::Cifar10 { dir: dir.clone() }),
            format!(
                "{}: label 10 of record 5 is out of range (expected < 10)",
                bad_label.display()
            )
        );

        let missing = dir.join("data_batch_1.bin");
        fs::remove_file(&missing).unwrap();
        assert_eq!(
            load_err(Source::Cifar10 { dir: dir.clone() }),
            format!(
                "{}: not found (expected CIFAR-10 binary files data_batch_1.bin .. data_batch_5.bin, test_batch.bin \
                 in {1} or {1}/cifar-10-batches-bin)",
                missing.display(),
                dir.display()
            )
        );
    }

    #[test]
    fn cifar100_coarse_and_fine() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        write_synthetic_cifar100(&dir, 3).unwrap();

        let fine = load(&Source::Cifar100 {
            dir: dir.clone(),
            coarse: false,
        })
        .unwrap();
        assert_eq!(
            (
                fine.name.as_str(),
                fine.num_classes,
                fine.class_names[99].as_str()
            ),
            ("cifar-100-fine", 100, "fine-99")
        );
        assert_eq!((fine.train.len(), fine.test.len()), (50_000, 10_000));
        assert_eq!(fine.train.class_counts(100).unwrap(), [500; 100]);
        assert_eq!(fine.test.class_counts(100).unwrap(), [100; 100]);

        let coarse = load(&Source::Cifar100 {
            dir: dir.clone(),
            coarse: true,
        })
        .unwrap();
        assert_eq!(
            (
                coarse.name.as_str(),
                coarse.num_classes,
                coarse.class_names[19].as_str()
            ),
            ("cifar-100-coarse", 20, "coarse-19")
        );
        assert_eq!(coarse.train.class_counts(20).unwrap(), [2500; 20]);
        assert_eq!(coarse.test.class_counts(20).unwrap(), [500; 20]);
        // Same images, coarse label = fine label / 5 as written.
        assert!(coarse.train.images == fine.train.images && coarse.test.images == fine.test.images);
        assert!(
            fine.train
                .labels
                .iter()
                .zip(&coarse.train.labels)
                .all(|(f, c)| f / 5 == *c)
        );

        let train = dir.join("train.bin");
        fs::File::options()
            .write(true)
            .open(&train)
            .unwrap()
            .set_len(3074)
            .unwrap();
        assert_eq!(
            load_err(Source::Cifar100 {
                dir: dir.clone(),
                coarse: true
            }),
            format!(
                "{}: expected 153700000 bytes (50000 records of 3074 bytes), found 3074",
                train.display()
            )
        );
        assert!(load_err(Source::Cifar100 { dir: "/nonexistent".into(), coarse: false }).starts_with(
            "/nonexistent/train.bin: not found (expected CIFAR-100 binary files train.bin, test.bin in /nonexistent"
        ));
    }

    #[test]
    fn cifar100_in_archive_subdirectory_and_bad_coarse_label() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cifar-100-binary");
        fs::create_dir(&dir).unwrap();
        write_synthetic_cifar100(&dir, 4).unwrap();
        let test = dir.join("test.bin");
        let mut bytes = fs::read(&test).unwrap();
        bytes[2 * 3074] = 20;
        fs::write(&test, bytes).unwrap();
        assert!(
            load(&Source::Cifar100 {
                dir: tmp.path().to_path_buf(),
                coarse: false
            })
            .is_ok()
        );
        assert_eq!(
            load_err(Source::Cifar100 {
                dir: tmp.path().to_path_buf(),
                coarse: true
            }),
            format!(
                "{}: label 20 of record 2 is out of range (expected < 20)",
                test.display()
            )
        );
    }
}
