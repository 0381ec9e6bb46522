//! One typed report per command, printed for humans or as JSON from the same struct.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Prints `report` as pretty JSON on stdout.
pub fn json<T: Serialize>(report: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(report).expect("reports serialise")
    );
}

/// Progress lines go to stderr, so `--output json` keeps stdout machine-readable.
#[derive(Clone, Copy)]
pub struct Progress {
    pub enabled: bool,
}

impl Progress {
    pub fn say(&self, line: impl AsRef<str>) {
        if self.enabled {
            eprintln!("{}", line.as_ref());
        }
    }
}
