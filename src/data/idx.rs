//! IDX files, the MNIST format: a big-endian header (magic number, then one u32 per dimension)
//! followed by the u8 data; optionally gzipped.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::{DataError, ImageSet, read_file};

/// MNIST and Fashion-MNIST both have ten classes.
pub(super) const NUM_CLASSES: usize = 10;
/// The low byte of the magic number is the number of dimensions; 0x08 above it means u8 data.
const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Loads (train, test) from the IDX files in `dir`.
pub(super) fn load_dir(dir: &Path) -> Result<(ImageSet, ImageSet), DataError> {
    let expected = || {
        let names: Vec<String> = FILES.iter().map(|f| format!("{f}[.gz]")).collect();
        format!("IDX files {} in {}", names.join(", "), dir.display())
    };
    let [train_images, train_labels, test_images, test_labels] = FILES.map(|name| {
        let path = pick(dir, name);
        if path.is_dir() {
            return Err(DataError::Invalid {
                message: format!(
                    "is a directory, not a file (expected the IDX file {name} or {name}.gz here, one of the {})",
                    expected()
                ),
                path,
            });
        }
        read_file(&path, expected).map(|bytes| (path, bytes))
    });
    load_files([train_images?, train_labels?, test_images?, test_labels?])
}

/// The file `name` in `dir`, or `name.gz`: the plain file wins; a directory in the place of both
/// is named as such, not "not found".
fn pick(dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if plain.is_file() || (plain.is_dir() && !gz.is_file()) {
        plain
    } else {
        gz
    }
}

/// The training images' file in `dir`.
pub(super) fn images_path(dir: &Path) -> PathBuf {
    pick(dir, FILES[0])
}

/// (train, test) from the raw contents of the four files in `FILES` order; a `.gz` path means
/// gzipped contents.
pub(super) fn load_files(
    files: [(PathBuf, Vec<u8>); 4],
) -> Result<(ImageSet, ImageSet), DataError> {
    let [train_images, train_labels, test_images, test_labels] = files;
    let train = image_set(train_images, train_labels)?;
    let (test_path, test) = (test_images.0.clone(), image_set(test_images, test_labels)?);
    let shape = |s: &ImageSet| format!("{}x{}", s.height, s.width);
    if shape(&test) != shape(&train) {
        return Err(DataError::ShapeMismatch {
            path: test_path,
            found: shape(&test),
            expected: shape(&train),
        });
    }
    Ok((train, test))
}

fn image_set(
    (images_path, images): (PathBuf, Vec<u8>),
    (labels_path, labels): (PathBuf, Vec<u8>),
) -> Result<ImageSet, DataError> {
    let mut images = decode(&images_path, images)?;
    let labels = decode(&labels_path, labels)?;
    let [n, height, width] = header(&images_path, &images, IMAGES_MAGIC, "IDX images")?;
    if height == 0 || width == 0 {
        let message = format!("images of {height}x{width} pixels (expected at least 1x1)");
        return Err(DataError::Invalid {
            path: images_path,
            message,
        });
    }
    check_len(
        &images_path,
        &images,
        16,
        n,
        height.saturating_mul(width),
        &format!("{n} images of {height}x{width}"),
    )?;
    let [n_labels] = header(&labels_path, &labels, LABELS_MAGIC, "IDX labels")?;
    check_len(
        &labels_path,
        &labels,
        8,
        n_labels,
        1,
        &format!("{n_labels} labels"),
    )?;
    if n_labels != n {
        return Err(DataError::CountMismatch {
            images_path,
            images: n,
            labels_path,
            labels: n_labels,
        });
    }
    if n == 0 {
        return Err(DataError::Empty { path: images_path });
    }
    if let Some(index) = labels[8..]
        .iter()
        .position(|&l| usize::from(l) >= NUM_CLASSES)
    {
        let label = u16::from(labels[8 + index]);
        return Err(DataError::LabelOutOfRange {
            path: labels_path,
            index,
            label,
            num_classes: NUM_CLASSES,
        });
    }
    // Drop the header in place rather than allocating a second buffer for up to 47 MB of pixels.
    images.drain(..16);
    Ok(ImageSet {
        images,
        labels: labels[8..].iter().map(|&l| u16::from(l)).collect(),
        channels: 1,
        height,
        width,
    })
}

fn decode(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if path.extension().is_none_or(|e| e != "gz") {
        return Ok(raw);
    }
    let mut out = Vec::new();
    GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

/// Checks the magic number and returns the `D` dimensions that follow it.
fn header<const D: usize>(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
) -> Result<[usize; D], DataError> {
    let header_len = 4 + 4 * D;
    let word = |i: usize| {
        u32::from_be_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    };
    let truncated = || DataError::Truncated {
        path: path.to_path_buf(),
        what: format!("the {header_len}-byte header of {what}"),
        found: bytes.len() as u64,
    };
    if bytes.len() < 4 {
        return Err(truncated());
    }
    if word(0) != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found: word(0),
            expected: magic,
            what,
        });
    }
    if bytes.len() < header_len {
        return Err(truncated());
    }
    Ok(std::array::from_fn(|i| word(i + 1) as usize))
}

/// Checks that the file holds exactly the header and `count` items of `item_len` bytes.
fn check_len(
    path: &Path,
    bytes: &[u8],
    header_len: u64,
    count: usize,
    item_len: usize,
    layout: &str,
) -> Result<(), DataError> {
    // Saturating: a corrupt header may claim more than u64 can count; that still mismatches.
    let expected = (count as u64)
        .saturating_mul(item_len as u64)
        .saturating_add(header_len);
    if bytes.len() as u64 != expected {
        let layout = format!("{header_len}-byte header + {layout}");
        return Err(DataError::Size {
            path: path.to_path_buf(),
            expected,
            layout,
            found: bytes.len() as u64,
        });
    }
    Ok(())
}

/// Writes `train` and `test` (one channel, labels < 256) as the four IDX files of an MNIST-layout
/// directory, gzipped with the best compression and named `*.gz` when `gz`.
pub fn write_idx(dir: &Path, train: &ImageSet, test: &ImageSet, gz: bool) -> io::Result<()> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    for (set, [images_name, labels_name]) in
        [(train, [FILES[0], FILES[1]]), (test, [FILES[2], FILES[3]])]
    {
        if set.channels != 1 {
            return Err(invalid(format!(
                "IDX images have one channel, this set has {}",
                set.channels
            )));
        }
        let dim = |d: usize| {
            u32::try_from(d)
                .map_err(|_| invalid(format!("dimension {d} does not fit an IDX header")))
        };
        let mut images = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [set.len(), set.height, set.width] {
            images.extend(dim(d)?.to_be_bytes());
        }
        images.extend_from_slice(&set.images);
        let mut labels = LABELS_MAGIC.to_be_bytes().to_vec();
        labels.extend(dim(set.len())?.to_be_bytes());
        for &l in &set.labels {
            labels.push(
                u8::try_from(l)
                    .map_err(|_| invalid(format!("label {l} does not fit an IDX u8 label")))?,
            );
        }
        let path = |name: &str| {
            dir.join(if gz {
                format!("{name}.gz")
            } else {
                name.to_string()
            })
        };
        write_file(&path(images_name), &images)?;
        write_file(&path(labels_name), &labels)?;
    }
    Ok(())
}

/// Writes `bytes`, gzipped when the name ends in `.gz` (as `decode` expects).
fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if path.extension().is_none_or(|e| e != "gz") {
        return fs::write(path, bytes);
    }
    let mut encoder = GzEncoder::new(File::create(path)?, Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Source, load};
    use super::*;

    /// `n` images of 3x2 whose pixels encode their index, labels cycling through the classes.
    fn set(n: usize, offset: u8) -> ImageSet {
        ImageSet {
            images: (0..n * 6).map(|i| (i as u8).wrapping_add(offset)).collect(),
            labels: (0..n).map(|i| (i % NUM_CLASSES) as u16).collect(),
            channels: 1,
            height: 3,
            width: 2,
        }
    }

    fn written(gz: bool) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tiny-fashion");
        fs::create_dir(&dir).unwrap();
        write_idx(&dir, &set(25, 0), &set(12, 100), gz).unwrap();
        (tmp, dir)
    }

    fn load_err(dir: &Path) -> String {
        load(&Source::Idx {
            dir: dir.to_path_buf(),
        })
        .expect_err("load should fail")
        .to_string()
    }

    #[test]
    fn round_trip_plain_and_gz() {
        for gz in [false, true] {
            let (_tmp, dir) = written(gz);
            assert_eq!(dir.join("t10k-labels-idx1-ubyte.gz").exists(), gz);
            let d = load(&Source::Idx { dir }).unwrap();
            assert_eq!(d.train, set(25, 0));
            assert_eq!(d.test, set(12, 100));
            assert_eq!(
                (d.name.as_str(), d.num_classes, d.class_names[0].as_str()),
                ("tiny-fashion", 10, "T-shirt/top")
            );
        }
    }

    #[test]
    fn plain_file_wins_over_gz_and_digits_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnist");
        fs::create_dir(&dir).unwrap();
        write_idx(&dir, &set(10, 0), &set(10, 0), true).unwrap();
        write_idx(&dir, &set(20, 0), &set(10, 0), false).unwrap();
        let d = load(&Source::Idx { dir }).unwrap();
        assert_eq!(d.train.len(), 20);
        assert_eq!(
            d.class_names,
            ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
        );
    }

    #[test]
    fn missing_file() {
        let (_tmp, dir) = written(false);
        fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
        let path = dir.join("t10k-images-idx3-ubyte.gz");
        let expected = format!(
            "{}: not found (expected IDX files train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], \
             t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] in {})",
            path.display(),
            dir.display()
        );
        assert_eq!(load_err(&dir), expected);
    }

    #[test]
    fn bad_magic() {
        let (_tmp, dir) = written(false);
        let path = dir.join("train-labels-idx1-ubyte");
        let mut bytes = fs::read(&path).unwrap();
        bytes[3] = 0x03;
        fs::write(&path, bytes).unwrap();
        assert_eq!(
            load_err(&dir),
            format!(
                "{}: bad IDX magic number 0x00000803 (expected 0x00000801 for IDX labels)",
                path.display()
            )
        );
    }

    #[test]
    fn wrong_size_and_short_header() {
        let (_tmp, dir) = written(false);
        let path = dir.join("train-images-idx3-ubyte");
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..100]).unwrap();
        assert_eq!(
            load_err(&dir),
            format!(
                "{}: expected 166 bytes (16-byte header + 25 images of 3x2), found 100",
                path.display()
            )
        );
        fs::write(&path, &bytes[..10]).unwrap();
        assert_eq!(
            load_err(&dir),
            format!(
                "{}: truncated: 10 bytes is too short for the 16-byte header of IDX images",
                path.display()
            )
        );
    }

    #[test]
    fn count_mismatch() {
        let (_tmp, dir) = written(false);
        let labels = dir.join("t10k-labels-idx1-ubyte");
        fs::write(
            &labels,
            [[0, 0, 8, 1, 0, 0, 0, 13].as_slice(), &[0; 13]].concat(),
        )
        .unwrap();
        assert_eq!(
            load_err(&dir),
            format!(
                "{} holds 12 images but {} holds 13 labels (expected as many labels as images)",
                dir.join("t10k-images-idx3-ubyte").display(),
                labels.display()
            )
        );
    }

    #[test]
    fn label_out_of_range() {
        let (_tmp, dir) = written(false);
        let mut bad = set(25, 0);
        bad.labels[7] = 10;
        write_idx(&dir, &bad, &set(12, 100), false).unwrap();
        let path = dir.join("train-labels-idx1-ubyte");
        assert_eq!(
            load_err(&dir),
            format!(
                "{}: label 10 of record 7 is out of range (expected < 10)",
                path.display()
            )
        );
    }

    #[test]
    fn empty_set() {
        let (_tmp, dir) = written(false);
        write_idx(&dir, &set(25, 0), &set(0, 0), false).unwrap();
        let path = dir.join("t10k-images-idx3-ubyte");
        assert_eq!(
            load_err(&dir),
            format!(
                "{}: holds no images (expected at least one)",
                path.display()
            )
        );
    }

    #[test]
    fn test_shape_must_match_train() {
        let (_tmp, dir) = written(false);
        let mut wide = set(12, 0);
        (wide.height, wide.width) = (2, 3);
        write_idx(&dir, &set(25, 0), &wide, false).unwrap();
        let path = dir.join("t10k-images-idx3-ubyte");
        assert_eq!(
            load_err(&dir),
            format!(
                "{}: images are 2x3 but the training images are 3x2",
                path.display()
            )
        );
    }

    #[test]
    fn truncated_gzip() {
        let (_tmp, dir) = written(true);
        let path = dir.join("train-images-idx3-ubyte.gz");
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let msg = load_err(&dir);
        assert!(
            msg.starts_with(&format!(
                "{}: invalid or truncated gzip data",
                path.display()
            )),
            "{msg}"
        );
    }

    #[test]
    fn write_rejects_what_idx_cannot_hold() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rgb = set(2, 0);
        rgb.channels = 3;
        rgb.height = 1;
        assert!(write_idx(tmp.path(), &rgb, &set(2, 0), false).is_err());
        let mut big_label = set(2, 0);
        big_label.labels[0] = 300;
        assert!(write_idx(tmp.path(), &big_label, &set(2, 0), false).is_err());
    }
}
