//! Exit codes, documented in `--help` and the README. Scripts and CI branch on them.

pub const OK: i32 = 0;
pub const ERROR: i32 = 1;
/// `plan --detailed-exitcode`: there are changes.
pub const CHANGES: i32 = 2;
/// The spec or the arguments are invalid; nothing was changed.
pub const INVALID: i32 = 3;
/// No engine answers, or it is not a swarm manager; nothing was changed.
pub const ENGINE: i32 = 4;
/// A task of this deploy failed, or Swarm rolled the update back.
pub const DEPLOY_FAILED: i32 = 5;
/// The deploy did not become healthy before the deadline.
pub const TIMEOUT: i32 = 6;
/// Secrets the platform needs do not exist and cannot be generated, or objects with the names it
/// needs exist but are not ours; nothing was changed.
pub const BLOCKED: i32 = 7;
/// `check`: the worst finding is a warning (degraded, slow, restarting, resources over 85 %).
pub const CHECK_WARNING: i32 = 8;
/// `check`: something is down, unreachable, not isolated, sealed or about to expire.
pub const CHECK_CRITICAL: i32 = 9;
