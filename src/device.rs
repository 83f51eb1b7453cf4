//! `--device flex | tch-cpu | cuda[:N]`: parsed from the command line, checked against the
//! build and the machine before any tensor exists (LibTorch panics deep inside C++ otherwise).

use std::fmt;
use std::str::FromStr;

use burn::prelude::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// burn's pure-Rust CPU backend.
    #[default]
    Flex,
    /// LibTorch on the CPU.
    TchCpu,
    /// LibTorch on CUDA device N.
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flex" => Ok(DeviceChoice::Flex),
            "tch-cpu" => Ok(DeviceChoice::TchCpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| {
                    format!("unknown device `{s}`; expected flex, tch-cpu, cuda or cuda:N")
                }),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Flex => write!(f, "flex"),
            DeviceChoice::TchCpu => write!(f, "tch-cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// Whether this build and machine can provide the device, or why not; asks LibTorch without
    /// touching a tensor (a CUDA device without a GPU panics inside LibTorch at the first one).
    pub fn available(self) -> Result<(), String> {
        match self {
            DeviceChoice::Flex => Ok(()),
            DeviceChoice::TchCpu | DeviceChoice::Cuda(_) => libtorch_available(self),
        }
    }

    /// The memory the device has free for training, in bytes: the machine's available memory
    /// for CPU devices, the GPU's free memory (as nvidia-smi reports it) for CUDA; `None` where
    /// it cannot be read, and then nothing is refused for memory.
    pub fn free_memory(self) -> Option<u64> {
        match self {
            DeviceChoice::Flex | DeviceChoice::TchCpu => crate::arch::available_memory(),
            DeviceChoice::Cuda(n) => gpu_free_memory(n),
        }
    }

    /// The burn device, or why this build or machine cannot provide it.
    pub fn open(self) -> Result<Device, String> {
        self.available()?;
        Ok(match self {
            DeviceChoice::Flex => Device::flex(),
            DeviceChoice::TchCpu | DeviceChoice::Cuda(_) => libtorch_device(self),
        })
    }
}

/// Free memory of CUDA device `n` as LibTorch numbers it: the n-th of CUDA_VISIBLE_DEVICES
/// when that is set (an index or a UUID, both of which nvidia-smi takes).
fn gpu_free_memory(n: usize) -> Option<u64> {
    let id = match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(visible) => visible.split(',').nth(n)?.trim().to_string(),
        Err(_) => n.to_string(),
    };
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.free",
            "--format=csv,noheader,nounits",
            &format!("--id={id}"),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mebibytes: u64 = String::from_utf8(out.stdout).ok()?.trim().parse().ok()?;
    mebibytes.checked_mul(1 << 20)
}

#[cfg(feature = "tch")]
fn libtorch_available(choice: DeviceChoice) -> Result<(), String> {
    if let DeviceChoice::Cuda(n) = choice {
        let count = if tch::Cuda::is_available() {
            tch::Cuda::device_count() as usize
        } else {
            0
        };
        if n >= count {
            return Err(match count {
                0 => format!(
                    "device cuda:{n}: LibTorch finds no CUDA GPU on this machine (use --device tch-cpu or flex)"
                ),
                _ => format!(
                    "device cuda:{n}: LibTorch finds {count} CUDA GPU(s), cuda:0..cuda:{}",
                    count - 1
                ),
            });
        }
    }
    Ok(())
}

#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch is deprecated upstream but is the LibTorch path this tool offers.
fn libtorch_device(choice: DeviceChoice) -> Device {
    match choice {
        DeviceChoice::Cuda(n) => {
            // cuDNN times its convolution algorithms on each new shape once and keeps the
            // fastest; a run's shapes are fixed, so the search pays for itself within an epoch.
            // (The price: the chosen algorithms, and so the low bits, may differ between runs.)
            tch::Cuda::cudnn_set_benchmark(true);
            Device::libtorch_cuda(n)
        }
        _ => Device::libtorch(),
    }
}

#[cfg(not(feature = "tch"))]
fn libtorch_available(choice: DeviceChoice) -> Result<(), String> {
    Err(format!(
        "device {choice} needs LibTorch, and this banbench was built without it; rebuild with \
         `cargo build --release --features tch` (see the README), or use --device flex"
    ))
}

#[cfg(not(feature = "tch"))]
fn libtorch_device(choice: DeviceChoice) -> Device {
    unreachable!("{choice}: `available` refuses LibTorch devices in a build without them")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("flex".parse(), Ok(DeviceChoice::Flex));
        assert_eq!("tch-cpu".parse(), Ok(DeviceChoice::TchCpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert!(
            "gpu"
                .parse::<DeviceChoice>()
                .unwrap_err()
                .contains("expected flex")
        );
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn cuda_without_a_gpu_is_an_error_not_a_panic() {
        // Development and CI machines have no GPU; with a GPU this asks for one that can't exist.
        let err = DeviceChoice::Cuda(99).open().unwrap_err();
        assert!(err.contains("cuda:99"), "{err}");
    }
}
