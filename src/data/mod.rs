//! Image datasets: the compiled-in Fashion-MNIST subset, IDX files (MNIST layout) and the
//! CIFAR-10/100 binary versions, plus class-balanced subsets, validation splits and batching.

mod batcher;
mod cifar;
mod idx;

use crate::arch::Shape;
use crate::spec::{Cifar100Labels, DataSource, DataSpec, ModelSpec};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub use batcher::{Augment, Batcher, Normalization, epoch_order};
pub use cifar::{write_synthetic_cifar10, write_synthetic_cifar100};
pub use idx::write_idx;

/// ChaCha stream of the validation split; a stream other than the default 0 keeps it independent
/// of other generators seeded from the same run seed.
const VALIDATION_STREAM: u64 = 1 << 62;

/// One split of an image dataset, kept as raw bytes (u8 pixels, CHW per image) to save memory.
#[derive(Clone, PartialEq)]
pub struct ImageSet {
    pub images: Vec<u8>,
    pub labels: Vec<u16>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

// The pixels would flood any debug output; the shape says what matters.
impl fmt::Debug for ImageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ImageSet({} images of {}x{}x{})",
            self.len(),
            self.channels,
            self.height,
            self.width
        )
    }
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image: channels * height * width.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i` (CHW). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Images per class; errors if a label is `>= num_classes`.
    pub fn class_counts(&self, num_classes: usize) -> Result<Vec<usize>, DataError> {
        let mut counts = vec![0; num_classes];
        for &label in &self.labels {
            *counts
                .get_mut(usize::from(label))
                .ok_or(DataError::ClassOutOfRange { label, num_classes })? += 1;
        }
        Ok(counts)
    }

    /// Class-balanced subset: the first `n / num_classes` images of each class in order (errors if
    /// a class has too few); keeps the original order.
    pub fn balanced_subset(&self, n: usize, num_classes: usize) -> Result<ImageSet, DataError> {
        let per_class = per_class(n, num_classes)?;
        let counts = self.class_counts(num_classes)?;
        check_enough(&counts, per_class)?;
        let mut taken = vec![0; num_classes];
        let chosen: Vec<usize> = (0..self.len())
            .filter(|&i| {
                let t = &mut taken[usize::from(self.labels[i])];
                *t += 1;
                *t <= per_class
            })
            .collect();
        Ok(self.select(&chosen))
    }

    /// Splits off `n` samples (class-balanced, chosen deterministically from `seed`) as a
    /// validation set: returns (rest, validation). Both keep the original order.
    pub fn split_validation(
        &self,
        n: usize,
        num_classes: usize,
        seed: u64,
    ) -> Result<(ImageSet, ImageSet), DataError> {
        let per_class = per_class(n, num_classes)?;
        check_enough(&self.class_counts(num_classes)?, per_class)?;
        if n >= self.len() {
            return Err(DataError::NoTrainingLeft { n, len: self.len() });
        }
        let mut by_class = vec![Vec::new(); num_classes];
        for (i, &label) in self.labels.iter().enumerate() {
            by_class[usize::from(label)].push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(VALIDATION_STREAM);
        let mut is_validation = vec![false; self.len()];
        for members in &mut by_class {
            members.shuffle(&mut rng);
            for &i in &members[..per_class] {
                is_validation[i] = true;
            }
        }
        let (validation, rest): (Vec<usize>, Vec<usize>) =
            (0..self.len()).partition(|&i| is_validation[i]);
        Ok((self.select(&rest), self.select(&validation)))
    }

    fn select(&self, indices: &[usize]) -> ImageSet {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        ImageSet {
            images,
            labels,
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }
}

fn per_class(n: usize, num_classes: usize) -> Result<usize, DataError> {
    if n == 0 || num_classes == 0 || !n.is_multiple_of(num_classes) {
        return Err(DataError::SubsetSize { n, num_classes });
    }
    Ok(n / num_classes)
}

fn check_enough(counts: &[usize], needed: usize) -> Result<(), DataError> {
    match counts.iter().position(|&found| found < needed) {
        Some(class) => Err(DataError::TooFewInClass {
            class,
            found: counts[class],
            needed,
        }),
        None => Ok(()),
    }
}

/// A dataset as loaded: both splits and the names of its classes (`num_classes` of them).
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub num_classes: usize,
    pub class_names: Vec<String>,
    pub train: ImageSet,
    pub test: ImageSet,
}

/// Where the images come from (the spec module deserialises its own type and maps to this).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The compiled-in Fashion-MNIST subset (10,000 train / 2,000 test).
    Embedded,
    /// IDX files (MNIST / Fashion-MNIST layout) in `dir`: train-images-idx3-ubyte,
    /// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally
    /// with `.gz` (the plain file wins when both exist).
    Idx { dir: PathBuf },
    /// CIFAR-10 binary version in `dir` or `dir/cifar-10-batches-bin`: data_batch_1.bin ..
    /// data_batch_5.bin, test_batch.bin.
    Cifar10 { dir: PathBuf },
    /// CIFAR-100 binary version in `dir` or `dir/cifar-100-binary`: train.bin, test.bin, with the
    /// 20 coarse or the 100 fine labels.
    Cifar100 { dir: PathBuf, coarse: bool },
}

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The embedded subset, gzipped IDX files (see assets/fashion-mnist-subset/README.md).
const EMBEDDED: [(&str, &[u8]); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        include_bytes!("../../assets/fashion-mnist-subset/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels-idx1-ubyte.gz",
        include_bytes!("../../assets/fashion-mnist-subset/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        include_bytes!("../../assets/fashion-mnist-subset/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        include_bytes!("../../assets/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz"),
    ),
];

/// Loads and checks a dataset; errors name the offending file.
pub fn load(source: &Source) -> Result<Dataset, DataError> {
    let names = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let numbered =
        |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let (name, class_names, (train, test)) = match source {
        Source::Embedded => {
            let files = EMBEDDED.map(|(file, bytes)| {
                (
                    PathBuf::from(format!("<embedded>/fashion-mnist-subset/{file}")),
                    bytes.to_vec(),
                )
            });
            let name = "fashion-mnist-subset".to_string();
            (name, names(&FASHION_CLASSES), idx::load_files(files)?)
        }
        Source::Idx { dir } => {
            let name = dir.file_name().map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let class_names = if name.to_lowercase().contains("fashion") {
                names(&FASHION_CLASSES)
            } else {
                numbered("", 10)
            };
            (name, class_names, idx::load_dir(dir)?)
        }
        Source::Cifar10 { dir } => (
            "cifar-10".to_string(),
            names(&CIFAR10_CLASSES),
            cifar::load_cifar10(dir)?,
        ),
        Source::Cifar100 { dir, coarse } => {
            let (kind, count) = if *coarse {
                ("coarse", 20)
            } else {
                ("fine", 100)
            };
            let class_names = numbered(&format!("{kind}-"), count);
            (
                format!("cifar-100-{kind}"),
                class_names,
                cifar::load_cifar100(dir, *coarse)?,
            )
        }
    };
    Ok(Dataset {
        name,
        num_classes: class_names.len(),
        class_names,
        train,
        test,
    })
}

/// The file the training images of `source` are read from, which a problem with the images'
/// shape names.
pub fn train_images_file(source: &Source) -> PathBuf {
    match source {
        Source::Embedded => {
            PathBuf::from(format!("<embedded>/fashion-mnist-subset/{}", EMBEDDED[0].0))
        }
        Source::Idx { dir } => idx::images_path(dir),
        Source::Cifar10 { dir } => cifar::train_path(dir, false),
        Source::Cifar100 { dir, .. } => cifar::train_path(dir, true),
    }
}

/// Refuses loaded data whose images `models` cannot take (too small for a network's
/// downsampling, or making it too large to count or train: `arch::check_input`), naming the
/// training images' file of `source` and the images' shape. The spec checks the embedded and
/// CIFAR shapes up front; IDX files can hold images of any size, known only once loaded.
pub fn check_models(source: &Source, shape: Shape, models: &[&ModelSpec]) -> Result<(), DataError> {
    for model in models {
        crate::arch::check_input(model, shape).map_err(|message| DataError::Invalid {
            path: train_images_file(source),
            message,
        })?;
    }
    Ok(())
}

/// Default directory for IDX data: /usr/share/datasets/fashion-mnist (Debian's
/// dataset-fashion-mnist package) when it exists.
pub fn default_idx_dir() -> Option<PathBuf> {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    dir.is_dir().then(|| dir.to_path_buf())
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: not found (expected {expected})", path.display())]
    NotFound { path: PathBuf, expected: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: invalid or truncated gzip data ({source})", path.display())]
    Gzip { path: PathBuf, source: io::Error },
    #[error("{}: expected {expected} bytes ({layout}), found {found}", path.display())]
    Size {
        path: PathBuf,
        expected: u64,
        layout: String,
        found: u64,
    },
    #[error("{}: truncated: {found} bytes is too short for {what}", path.display())]
    Truncated {
        path: PathBuf,
        what: String,
        found: u64,
    },
    #[error("{}: bad IDX magic number 0x{found:08x} (expected 0x{expected:08x} for {what})", path.display())]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: holds no images (expected at least one)", path.display())]
    Empty { path: PathBuf },
    #[error(
        "{} holds {images} images but {} holds {labels} labels (expected as many labels as images)",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    #[error("{}: label {label} of record {index} is out of range (expected < {num_classes})", path.display())]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u16,
        num_classes: usize,
    },
    #[error("{}: images are {found} but the training images are {expected}", path.display())]
    ShapeMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("label {label} is out of range for {num_classes} classes")]
    ClassOutOfRange { label: u16, num_classes: usize },
    #[error(
        "a class-balanced set of {n} images needs a positive multiple of {num_classes} (the number of classes)"
    )]
    SubsetSize { n: usize, num_classes: usize },
    #[error("class {class} has only {found} images, {needed} needed for a class-balanced set")]
    TooFewInClass {
        class: usize,
        found: usize,
        needed: usize,
    },
    #[error("a validation split of {n} images leaves no training images (the set holds {len})")]
    NoTrainingLeft { n: usize, len: usize },
}

/// Reads a whole file; a missing file becomes `NotFound` with `expected` saying what belongs there.
fn read_file(path: &Path, expected: impl FnOnce() -> String) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => DataError::NotFound {
            path: path.to_path_buf(),
            expected: expected(),
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Image shape and classes of a data source, known without reading it.
pub fn shape_of(data: &DataSpec) -> Shape {
    match data.source {
        DataSource::Embedded | DataSource::Idx => Shape {
            channels: 1,
            height: 28,
            width: 28,
            classes: 10,
        },
        DataSource::Cifar10 => Shape {
            channels: 3,
            height: 32,
            width: 32,
            classes: 10,
        },
        DataSource::Cifar100 => Shape {
            channels: 3,
            height: 32,
            width: 32,
            classes: if data.labels == Cifar100Labels::Coarse {
                20
            } else {
                100
            },
        },
    }
}

/// Training images of a source when no subset is asked for: the embedded subset's 10,000 and
/// the full Fashion-MNIST and CIFAR training splits.
pub fn full_train_len(source: DataSource) -> usize {
    match source {
        DataSource::Embedded => 10_000,
        DataSource::Idx => 60_000,
        DataSource::Cifar10 | DataSource::Cifar100 => 50_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set with one 1x1x2 image per label, pixels [i, 255 - i].
    fn tiny(labels: &[u16]) -> ImageSet {
        ImageSet {
            images: (0..labels.len())
                .flat_map(|i| [i as u8, 255 - i as u8])
                .collect(),
            labels: labels.to_vec(),
            channels: 1,
            height: 1,
            width: 2,
        }
    }

    #[test]
    fn image_accessors() {
        let set = tiny(&[0, 1, 2]);
        assert_eq!((set.len(), set.image_len(), set.is_empty()), (3, 2, false));
        assert_eq!(set.image(2), &[2, 253]);
    }

    #[test]
    fn balanced_subset_takes_the_first_of_each_class_in_order() {
        let set = tiny(&[2, 0, 0, 1, 2, 0, 1, 1, 2]);
        let sub = set.balanced_subset(6, 3).unwrap();
        assert_eq!(sub.labels, [2, 0, 0, 1, 2, 1]);
        // The pixels follow their labels: image 3 of the subset is image 3 of the set, image 5 is image 6.
        assert_eq!(sub.image(3), set.image(3));
        assert_eq!(sub.image(5), set.image(6));
        assert_eq!(sub.class_counts(3).unwrap(), [2, 2, 2]);
    }

    #[test]
    fn balanced_subset_errors() {
        let set = tiny(&[0, 0, 1, 2]);
        let err = set.balanced_subset(6, 3).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TooFewInClass {
                    class: 1,
                    found: 1,
                    needed: 2
                }
            ),
            "{err}"
        );
        assert!(matches!(
            set.balanced_subset(5, 3),
            Err(DataError::SubsetSize {
                n: 5,
                num_classes: 3
            })
        ));
        assert!(matches!(
            set.balanced_subset(0, 3),
            Err(DataError::SubsetSize { .. })
        ));
        assert!(matches!(
            set.balanced_subset(2, 2),
            Err(DataError::ClassOutOfRange {
                label: 2,
                num_classes: 2
            })
        ));
    }

    #[test]
    fn split_validation_is_disjoint_balanced_and_deterministic() {
        let labels: Vec<u16> = (0..300).map(|i| (i * 7 % 3) as u16).collect();
        let mut set = tiny(&labels);
        // Give every image distinct pixels so images identify themselves.
        set.images = (0..300u16).flat_map(|i| i.to_le_bytes()).collect();
        let (rest, val) = set.split_validation(30, 3, 42).unwrap();
        assert_eq!((rest.len(), val.len()), (270, 30));
        assert_eq!(val.class_counts(3).unwrap(), [10, 10, 10]);
        assert_eq!(rest.class_counts(3).unwrap(), [90, 90, 90]);
        let id = |s: &ImageSet, i: usize| u16::from_le_bytes([s.image(i)[0], s.image(i)[1]]);
        let val_ids: Vec<u16> = (0..val.len()).map(|i| id(&val, i)).collect();
        let rest_ids: Vec<u16> = (0..rest.len()).map(|i| id(&rest, i)).collect();
        // Disjoint, together everything, each in the original order, labels matching their images.
        let mut all: Vec<u16> = val_ids.iter().chain(&rest_ids).copied().collect();
        all.sort();
        assert_eq!(all, (0..300).collect::<Vec<u16>>());
        assert!(val_ids.is_sorted() && rest_ids.is_sorted());
        assert!((0..val.len()).all(|i| val.labels[i] == labels[usize::from(val_ids[i])]));
        // Same seed, same split; another seed, another split.
        assert_eq!(set.split_validation(30, 3, 42).unwrap().1, val);
        assert_ne!(set.split_validation(30, 3, 43).unwrap().1, val);
    }

    #[test]
    fn split_validation_errors() {
        let set = tiny(&[0, 1, 0, 1]);
        assert!(matches!(
            set.split_validation(4, 2, 0),
            Err(DataError::NoTrainingLeft { n: 4, len: 4 })
        ));
        assert!(matches!(
            set.split_validation(6, 2, 0),
            Err(DataError::TooFewInClass { .. })
        ));
        assert!(matches!(
            set.split_validation(3, 2, 0),
            Err(DataError::SubsetSize { .. })
        ));
    }

    #[test]
    fn embedded_subset_loads_balanced() {
        let d = load(&Source::Embedded).unwrap();
        assert_eq!(
            (d.num_classes, d.class_names[9].as_str()),
            (10, "Ankle boot")
        );
        assert_eq!((d.train.len(), d.test.len()), (10_000, 2_000));
        assert_eq!(
            (d.train.channels, d.train.height, d.train.width),
            (1, 28, 28)
        );
        assert_eq!(d.train.class_counts(10).unwrap(), [1000; 10]);
        assert_eq!(d.test.class_counts(10).unwrap(), [200; 10]);
    }

    #[test]
    fn embedded_subset_is_the_first_of_each_class_of_the_full_set() {
        let Some(dir) = default_idx_dir() else { return };
        let full = load(&Source::Idx { dir }).unwrap();
        let embedded = load(&Source::Embedded).unwrap();
        assert_eq!(full.name, "fashion-mnist");
        assert_eq!(full.class_names, embedded.class_names);
        assert_eq!((full.train.len(), full.test.len()), (60_000, 10_000));
        assert_eq!(
            full.train.balanced_subset(10_000, 10).unwrap(),
            embedded.train
        );
        assert_eq!(full.test.balanced_subset(2_000, 10).unwrap(), embedded.test);
    }

    #[test]
    fn missing_idx_dir_names_the_file() {
        let err = load(&Source::Idx {
            dir: "/nonexistent/mnist".into(),
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "/nonexistent/mnist/train-images-idx3-ubyte.gz: not found (expected IDX files"
            ),
            "{msg}"
        );
        assert!(msg.ends_with("in /nonexistent/mnist)"), "{msg}");
    }
}
