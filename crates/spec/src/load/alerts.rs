//! An environment's `alerts`: where the agent sends the alerts of its checks (a webhook, an
//! Alertmanager) and when (after how many failing and good rounds, how often it checks).

use super::{pos, Resolver};
use crate::model::{self, AlertFormat};
use crate::raw::{self, S};
use crate::values;

const URL_HELP: &str = "give an http:// or https:// URL the agent's task can reach (a name on the swarm's networks, or `host.docker.internal` for the Docker host)";

impl Resolver<'_> {
    fn alert_url(&mut self, v: Option<&S<String>>, what: &str) -> Option<String> {
        let v = v?;
        let ok = (v.value.starts_with("http://") || v.value.starts_with("https://"))
            && values::url_host(&v.value).is_some();
        let authority = v
            .value
            .split_once("://")
            .map(|(_, r)| r.split('/').next().unwrap_or(""));
        if authority.is_some_and(|a| a.contains('@')) {
            self.err(
                "invalid-alerts",
                pos(v),
                format!("alerts.{what} carries a user and password in its URL"),
            )
            .help = Some("a URL with credentials is a secret: for the webhook use `webhook_secret: NAME` (a declared secret whose value is the URL); put an Alertmanager that needs a login behind a proxy on the swarm's network".into());
            return None;
        }
        if !ok {
            self.err(
                "invalid-alerts",
                pos(v),
                format!("alerts.{what} `{}` is not an http(s) URL", v.value),
            )
            .help = Some(URL_HELP.into());
            return None;
        }
        Some(v.value.clone())
    }

    fn rounds(&mut self, v: Option<&S<u64>>, what: &str, default: u32) -> u32 {
        match v {
            None => default,
            Some(n) if (1..=100).contains(&n.value) => n.value as u32,
            Some(n) => {
                self.err(
                    "invalid-alerts",
                    pos(n),
                    format!("alerts.{what} {} is not 1 to 100 rounds", n.value),
                )
                .help = Some(format!(
                    "how many consecutive rounds before it changes; the default is {default}"
                ));
                default
            }
        }
    }

    pub(super) fn alerts(&mut self, a: Option<&S<raw::Alerts>>) -> Option<model::Alerts> {
        let a = a?;
        let r = &a.value;
        let webhook = self.alert_url(r.webhook.as_ref(), "webhook");
        let alertmanager = self.alert_url(r.alertmanager.as_ref(), "alertmanager");
        let webhook_secret = r.webhook_secret.as_ref().map(|s| {
            if r.webhook.is_some() {
                self.err(
                    "invalid-alerts",
                    pos(s),
                    "alerts has both `webhook` and `webhook_secret`",
                )
                .help = Some("keep one: `webhook_secret` when the URL is a credential (Slack, Discord), `webhook` when it is not".into());
            }
            if self.spec.secrets.get(&s.value).is_none() {
                let known: Vec<String> = self.spec.secrets.iter().map(|(k, _)| k.value.clone()).collect();
                self.err(
                    "undeclared-secret",
                    pos(s),
                    format!("alerts.webhook_secret `{}` is not declared", s.value),
                )
                .help = Some(format!(
                    "declare it under the top-level `secrets:` with its source (its value is the webhook's URL); {}",
                    super::suggest::suggest(&s.value, &known, "secrets")
                ));
            }
            s.value.clone()
        });
        let has_webhook = r.webhook.is_some() || r.webhook_secret.is_some();
        if !has_webhook && r.alertmanager.is_none() {
            self.err(
                "alerts-without-destination",
                pos(a),
                "`alerts` names neither a `webhook` nor an `alertmanager`",
            )
            .help = Some(
                "add `webhook: https://…` (a JSON POST per alert; `format: slack | discord` for their webhooks; `webhook_secret: NAME` when the URL is a credential) or `alertmanager: http://alertmanager:9093`"
                    .into(),
            );
        }
        if let (Some(f), false) = (&r.format, has_webhook) {
            self.err(
                "invalid-alerts",
                pos(f),
                "alerts.format is the webhook's body, but there is no `webhook`",
            )
            .help = Some("add a `webhook`, or remove `format`".into());
        }
        let format = self.choose(
            r.format.as_ref(),
            &[
                ("json", AlertFormat::Json),
                ("slack", AlertFormat::Slack),
                ("discord", AlertFormat::Discord),
            ],
            "invalid-alerts",
            "alerts.format",
            "the webhook's body: json (ours), slack (`{text}`) or discord (`{content}`)",
        );
        let fail_after = self.rounds(
            r.fail_after.as_ref(),
            "fail_after",
            model::Alerts::FAIL_AFTER,
        );
        let resolve_after = self.rounds(
            r.resolve_after.as_ref(),
            "resolve_after",
            model::Alerts::RESOLVE_AFTER,
        );
        let interval_s = match &r.interval {
            None => model::Alerts::INTERVAL_S,
            Some(v) => match values::parse_duration(&v.value) {
                Ok(ns) if (1_000_000_000..=3_600_000_000_000).contains(&ns) => ns / 1_000_000_000,
                Ok(_) => {
                    self.err(
                        "invalid-alerts",
                        pos(v),
                        format!("alerts.interval `{}` is not 1s to 1h", v.value),
                    )
                    .help = Some("how often the agent checks, e.g. `30s` (the default)".into());
                    model::Alerts::INTERVAL_S
                }
                Err(e) => {
                    self.err("invalid-duration", pos(v), e).help =
                        Some(super::service::DURATION_HELP.into());
                    model::Alerts::INTERVAL_S
                }
            },
        };
        Some(model::Alerts {
            webhook,
            webhook_secret,
            format,
            alertmanager,
            fail_after,
            resolve_after,
            interval_s,
        })
    }
}
