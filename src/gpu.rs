//! A CUDA device's utilisation and memory as NVIDIA's management library (NVML) reports them,
//! for the Run screen. NVML is loaded when first asked: on a machine without NVIDIA's driver
//! there is simply no reading. NVML numbers devices in PCI order, as CUDA does unless
//! `CUDA_DEVICE_ORDER` or `CUDA_VISIBLE_DEVICES` says otherwise.

use std::sync::OnceLock;

use nvml_wrapper::Nvml;

/// One reading of one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuReading {
    pub index: u32,
    /// Percent of the last sample period in which a kernel ran.
    pub busy_percent: u32,
    pub used_bytes: u64,
    pub total_bytes: u64,
}

impl GpuReading {
    /// "GPU 0: 73% busy, 12.3 of 80.0 GB".
    pub fn describe(&self) -> String {
        format!(
            "GPU {}: {}% busy, {:.1} of {:.1} GB",
            self.index,
            self.busy_percent,
            self.used_bytes as f64 / 1e9,
            self.total_bytes as f64 / 1e9
        )
    }
}

/// The reading of GPU `index`, or `None` without NVML or such a device.
pub fn read(index: u32) -> Option<GpuReading> {
    static NVML: OnceLock<Option<Nvml>> = OnceLock::new();
    let nvml = NVML.get_or_init(|| Nvml::init().ok()).as_ref()?;
    let device = nvml.device_by_index(index).ok()?;
    let busy = device.utilization_rates().ok()?;
    let memory = device.memory_info().ok()?;
    Some(GpuReading {
        index,
        busy_percent: busy.gpu,
        used_bytes: memory.used,
        total_bytes: memory.total,
    })
}

/// The GPU a run's device string names ("cuda:1" -> 1), if it names one.
pub fn index_of(device: &str) -> Option<u32> {
    device.strip_prefix("cuda:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_reads_in_one_line_and_only_cuda_devices_have_one() {
        let r = GpuReading {
            index: 0,
            busy_percent: 73,
            used_bytes: 12_300_000_000,
            total_bytes: 80_000_000_000,
        };
        assert_eq!(r.describe(), "GPU 0: 73% busy, 12.3 of 80.0 GB");
        assert_eq!(index_of("cuda:1"), Some(1));
        assert_eq!(index_of("flex"), None);
        assert_eq!(index_of("tch-cpu"), None);
    }

    /// This machine has no NVIDIA driver, or no GPU 4096: no reading, and no panic.
    #[test]
    fn a_machine_without_the_device_has_no_reading() {
        assert_eq!(read(4096), None);
    }
}
