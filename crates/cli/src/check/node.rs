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

/// The CPU's use the runbook judges — "> 90 % sustained" — from two readings: busy now (a
/// 0.3 s sample) and the 1-minute load average per core (`/proc/loadavg`, as a percent). A
/// deploy's burst is busy now, not sustained: the figure judged is the smaller of the two.
/// Returns (judged percent, detail).
pub fn cpu_sustained(now_pct: f64, loadavg: Option<&str>, cores: usize) -> (f64, String) {
    let load1: Option<f64> = loadavg
        .and_then(|l| l.split_whitespace().next())
        .and_then(|x| x.parse().ok());
    match load1 {
        Some(load) => {
            let over_minute = 100.0 * load / cores.max(1) as f64;
            (
                now_pct.min(over_minute),
                format!(
                    "CPU {now_pct:.0} % busy now, {over_minute:.0} % over the last minute (load {load:.2} on {cores} core(s))"
                ),
            )
        }
        None => (now_pct, format!("CPU {now_pct:.0} % busy (over 0.3 s)")),
    }
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
            let now = 100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let loadavg = std::fs::read_to_string("/proc/loadavg").ok();
            let (pct, detail) = cpu_sustained(now, loadavg.as_deref(), cores);
            out.push(
                Finding::new(Kind::Resources, node, judge::usage(pct, CPU_MEMORY), detail)
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
    fn cpu_is_judged_sustained_a_burst_is_not() {
        // Busy now, quiet over the minute: a burst.
        let (pct, detail) = cpu_sustained(100.0, Some("0.40 0.35 0.30 2/300 4242"), 2);
        assert_eq!(pct, 20.0);
        assert_eq!(
            detail,
            "CPU 100 % busy now, 20 % over the last minute (load 0.40 on 2 core(s))"
        );
        assert_eq!(judge::usage(pct, CPU_MEMORY), Severity::Ok);
        // Busy now and over the minute: sustained.
        let (pct, _) = cpu_sustained(97.0, Some("1.96 1.80 1.50 5/300 4242"), 2);
        assert_eq!(pct, 97.0);
        assert_eq!(judge::usage(pct, CPU_MEMORY), Severity::Critical);
        // A load over the cores, quiet now: what is judged is now.
        let (pct, _) = cpu_sustained(10.0, Some("3.00 2.00 1.00 1/1 1"), 2);
        assert_eq!(pct, 10.0);
        // No load average to read: the sample alone.
        assert_eq!(cpu_sustained(55.0, None, 4).0, 55.0);
    }

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
