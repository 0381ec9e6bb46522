//! Error lines per service in the last 24 hours against its daily budget, with the most
//! repeated message (tokens redacted). Every service's log is read at once, streamed (nothing
//! kept but the counts), each for at most 20 s.

use sprocket_check::logs::Tally;
use sprocket_check::plan::CheckPlan;
use sprocket_check::Finding;
use sprocket_desired::plan::Observed;
use sprocket_docker::Engine;
use std::time::Duration;

const READ_AT_MOST: Duration = Duration::from_secs(20);

pub async fn check(engine: &Engine, plan: &CheckPlan, observed: &Observed) -> Vec<Finding> {
    let since = crate::clock::unix_now().as_secs() as i64 - 86_400;
    let all = plan.services.iter().filter_map(|s| {
        let live = observed.services.iter().find(|o| o.spec.name == s.name)?;
        Some(async move {
            let mut t = Tally::default();
            let read = engine
                .service_log_lines(&live.id, since, READ_AT_MOST, |l| t.add(l))
                .await;
            let mut f = t.judge(&s.service, s.errors_per_day);
            match read {
                Ok(true) => {}
                Ok(false) => f.detail.push_str(&format!(
                    " (read for {} s only: a lower bound)",
                    READ_AT_MOST.as_secs()
                )),
                Err(e) => f.detail = format!("its log cannot be read: {e}"),
            }
            f
        })
    });
    futures_util::future::join_all(all).await
}
