//! `sprocketctl check`'s pure half: what to look at, derived from the spec and its desired state
//! ([`plan`]), how a finding is judged against the runbook's bands ([`judge`]), and which failing
//! service is the root of which others ([`roots`]). The probes themselves (the swarm's tasks,
//! HTTP through the edge router, a task on a consumer's own networks) run in the CLI; the agent
//! will run the same on an interval.

pub mod alerts;
pub mod backups;
pub mod history;
pub mod judge;
pub mod logs;
pub mod notify;
pub mod plan;
pub mod reach;
pub mod report;
pub mod roots;
pub mod status_page;

pub use judge::Severity;
pub use plan::{CheckPlan, Expect, ReachProbe, RouteProbe, ServiceCheck, Target};
pub use report::{Finding, Kind, Report, Summary};
