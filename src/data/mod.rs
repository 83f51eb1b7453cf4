// TEMPORARY compile shim until the data module lands (helper writes the real one).
use std::path::PathBuf;
pub struct ImageSet { pub images: Vec<u8>, pub labels: Vec<u16>, pub channels: usize, pub height: usize, pub width: usize }
impl ImageSet {
    pub fn len(&self) -> usize { self.labels.len() }
    pub fn is_empty(&self) -> bool { self.labels.is_empty() }
    pub fn balanced_subset(&self, _n: usize, _c: usize) -> Result<ImageSet, DataError> { todo!() }
    pub fn split_validation(&self, _n: usize, _c: usize, _s: u64) -> Result<(ImageSet, ImageSet), DataError> { todo!() }
}
pub struct Dataset { pub name: String, pub num_classes: usize, pub class_names: Vec<String>, pub train: ImageSet, pub test: ImageSet }
pub enum Source { Embedded, Idx { dir: PathBuf }, Cifar10 { dir: PathBuf }, Cifar100 { dir: PathBuf, coarse: bool } }
pub fn load(_s: &Source) -> Result<Dataset, DataError> { todo!() }
pub fn default_idx_dir() -> Option<PathBuf> { todo!() }
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct DataError;
pub struct Normalization { pub mean: Vec<f32>, pub std: Vec<f32> }
impl Normalization { pub fn from_images(_s: &ImageSet) -> Self { todo!() } }
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment { pub crop_padding: usize, pub horizontal_flip: bool }
pub struct Batcher { pub normalization: Normalization, pub augment: Augment }
impl Batcher { pub fn batch(&self, _s: &ImageSet, _i: &[usize], _r: Option<&mut rand_chacha::ChaCha8Rng>) -> (Vec<f32>, Vec<i64>) { todo!() } }
pub fn epoch_order(_n: usize, _s: u64, _e: usize) -> Vec<usize> { todo!() }
