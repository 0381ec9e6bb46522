//! The node's resources against the runbook's bands (CPU and memory 70 / 85 / 90 %, disk 60 /
//! 80 / 90 %) and Docker's own disk use (images, build cache) with what is unused. Read on the
//! machine `check` runs on, which must be the engine's: against a remote `DOCKER_HOST` this
//! machine's numbers would say nothing about the swarm's node, so they are not reported.

use sprocket_check::judge::{self, CPU_MEMORY, DISK};
use sprocket_check::{Finding, Kind, Severity};
use sprocket_docker::Engine;
use std::time::Duration;

/// (busy, total) jiffies of all CPUs, from /proc/stat's first line.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = f.get(3)? + f.get(4).unwrap_or(&0);
    let total: u64 = f.iter().take(8).sum();
    Some((total - idle, total))
}

/// Percent of memory in use: 1 − MemAvailable / MemTotal.
pub fn memory_percent(meminfo: &str) -> Option<f64> {
    let kb = |key: &str| -> Option<f64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let (total, avail) = (kb("MemTotal:")?, kb("MemAvailable:")?);
    (total > 0.0).then(|| 100.0 * (1.0 - avail / total))
}

/// Percent used of the file system holding `path` (as `df` counts it: of what non-root may use).
fn disk_percent(path: &std::path::Path) -> Option<(f64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct the call fills.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let frsize = s.f_frsize as f64;
    let used = (s.f_blocks - s.f_bfree) as f64 * frsize;
    let avail = s.f_bavail as f64 * frsize;
    let whole = used + avail;
    (whole > 0.0).then(|| (100.0 * used / whole, (avail as u64)))
}

/// `1.5 GB`.
pub fn bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    match i {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", units[i]),
    }
}

/// Images (all, and those no container uses) and the build cache not in use, from the
/// engine's `/system/df` (API 1.41's shape).
pub fn docker_disk(df: &serde_json::Value) -> String {
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or(0).max(0) as u64;
    let images = df["Images"].as_array().cloned().unwrap_or_default();
    let unused: u64 = images
        .iter()
        .filter(|i| n(&i["Containers"]) == 0)
        .map(|i| n(&i["Size"]).saturating_sub(n(&i["SharedSize"])))
        .sum();
    let cache = df["BuildCache"].as_array().cloned().unwrap_or_default();
    let cache_free: u64 = cache
        .iter()
        .filter(|c| c["InUse"] != true)
        .map(|c| n(&c["Size"]))
        .sum();
    format!(
        "images {} ({} in {} image(s) no container uses), build cache {} unused",
        bytes(n(&df["LayersSize"])),
        bytes(unused),
        images.iter().filter(|i| n(&i["Containers"]) == 0).count(),
        bytes(cache_free)
    )
}

pub async fn check(engine: &Engine) -> Vec<Finding> {
    let mut out = Vec::new();
    let node = "this node";
    if !engine.endpoint.starts_with("unix://") {
        out.push(Finding::new(
            Kind::Resources,
            node,
            Severity::Ok,
            format!("not read: the engine is at {} and its node's CPU, memory and disk are read there (run `check` on that node)", engine.endpoint),
        ));
    } else {
        let before = cpu_times();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let (Some((b0, t0)), Some((b1, t1))) = (before, cpu_times()) {
            let pct = 100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
            out.push(
                Finding::new(
                    Kind::Resources,
                    node,
                    judge::usage(pct, CPU_MEMORY),
                    format!("CPU {pct:.0} % busy (over 0.3 s)"),
                )
                .target("cpu"),
            );
        }
        if let Some(pct) = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .as_deref()
            .and_then(memory_percent)
        {
            out.push(
                Finding::new(
                    Kind::Resources,
                    node,
                    judge::usage(pct, CPU_MEMORY),
                    format!("memory {pct:.0} % in use"),
                )
                .target("memory"),
            );
        }
        if let Some((pct, avail)) = disk_percent(&engine.root_dir) {
            out.push(
                Finding::new(
                    Kind::Resources,
                    node,
                    judge::usage(pct, DISK),
                    format!(
                        "disk of {} {pct:.0} % used, {} free",
                        engine.root_dir.display(),
                        bytes(avail)
                    ),
                )
                .target("disk"),
            );
        }
    }
    match engine.disk_usage().await {
        Ok(df) => out.push(Finding::new(
            Kind::DockerDisk,
            "docker",
            Severity::Ok,
            docker_disk(&df),
        )),
        Err(e) => out.push(Finding::new(
            Kind::DockerDisk,
            "docker",
            Severity::Info,
            format!("not read: {e}"),
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_in_use_is_what_is_not_available() {
        let m =
            "MemTotal:       8000000 kB\nMemFree:         100000 kB\nMemAvailable:   2000000 kB\n";
        assert_eq!(memory_percent(m).map(|p| p.round()), Some(75.0));
        assert_eq!(memory_percent("nothing"), None);
    }

    #[test]
    fn unused_images_and_build_cache() {
        let df = serde_json::json!({
            "LayersSize": 3_000_000_000u64,
            "Images": [
                { "Containers": 2, "Size": 1_000_000_000u64, "SharedSize": 0 },
                { "Containers": 0, "Size": 700_000_000u64, "SharedSize": 200_000_000u64 },
            ],
            "BuildCache": [ { "InUse": false, "Size": 50_000_000u64 }, { "InUse": true, "Size": 9 } ],
        });
        assert_eq!(
            docker_disk(&df),
            "images 3.0 GB (500.0 MB in 1 image(s) no container uses), build cache 50.0 MB unused"
        );
    }
}
