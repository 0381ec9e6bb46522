//! Which new certificates an `up` will make Traefik request, and — for Let's Encrypt — how much
//! of the week's budget their registered domain has left by the documented limit (50 new
//! certificates per registered domain per 7 days), counted from what `acme.json` holds: what
//! `plan` shows before anything is asked. Pure: the certificates kept come in as parsed.

use crate::certs::Leaf;
use serde::Serialize;

/// Let's Encrypt: new certificates per registered domain per 7 days.
pub const PER_DOMAIN_PER_WEEK: usize = 50;

const WEEK: i64 = 7 * 86_400;

/// One certificate `up` will make Traefik request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewCertificate {
    pub host: String,
    /// The CA's directory (`letsencrypt`: Let's Encrypt's production one).
    pub ca: String,
    /// Let's Encrypt only: the registered domain, the certificates for it `acme.json` shows
    /// issued in the last 7 days, and what is left of the week's 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub domain: String,
    pub issued_this_week: usize,
    pub left: usize,
}

/// The registered domain of a host as Let's Encrypt counts it: its last two labels. Without
/// the public suffix list this is wrong for suffixes of two labels (`example.co.uk` counts as
/// `co.uk`): the count is then too high, never too low.
pub fn registered_domain(host: &str) -> String {
    let labels: Vec<&str> = host.trim_end_matches('.').rsplit('.').take(2).collect();
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

/// The hosts among `wanted` that no kept certificate covers, each with its budget (when
/// `lets_encrypt`). `now`: seconds since the epoch.
pub fn new_certificates(
    wanted: &[String],
    kept: &[(Vec<String>, Leaf)],
    ca: &str,
    lets_encrypt: bool,
    now: i64,
) -> Vec<NewCertificate> {
    let covered = |h: &str| {
        kept.iter()
            .any(|(domains, leaf)| leaf.not_after > now && domains.iter().any(|d| d == h))
    };
    let mut out: Vec<NewCertificate> = Vec::new();
    for host in wanted.iter().filter(|h| !covered(h)) {
        let budget = lets_encrypt.then(|| {
            let domain = registered_domain(host);
            let issued_this_week = kept
                .iter()
                .filter(|(domains, leaf)| {
                    now - leaf.not_before < WEEK
                        && domains.iter().any(|d| registered_domain(d) == domain)
                })
                .count();
            // The requests this `up` makes for the same domain count too.
            let planned = out
                .iter()
                .filter(|n| n.budget.as_ref().is_some_and(|b| b.domain == domain))
                .count();
            Budget {
                left: PER_DOMAIN_PER_WEEK.saturating_sub(issued_this_week + planned),
                domain,
                issued_this_week,
            }
        });
        out.push(NewCertificate {
            host: host.clone(),
            ca: ca.to_string(),
            budget,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(not_before: i64, not_after: i64) -> Leaf {
        Leaf {
            subject: String::new(),
            issuer: String::new(),
            not_before,
            not_after,
            names: vec![],
        }
    }

    #[test]
    fn registered_domains_are_the_last_two_labels() {
        assert_eq!(
            registered_domain("demo.sprocket.mlesports.gg"),
            "mlesports.gg"
        );
        assert_eq!(registered_domain("mlesports.gg."), "mlesports.gg");
        assert_eq!(registered_domain("localhost"), "localhost");
    }

    #[test]
    fn only_uncovered_hosts_are_new_and_the_week_is_counted_from_acme_json() {
        let now = 10 * WEEK;
        let kept = vec![
            // issued this week, valid: covers api
            (
                vec!["api.sprocket.gg".to_string()],
                leaf(now - 86_400, now + 80 * 86_400),
            ),
            // issued this week, expired already: does not cover web, counts in the week
            (
                vec!["web.sprocket.gg".to_string()],
                leaf(now - 2 * 86_400, now - 10),
            ),
            // issued long ago: does not count
            (
                vec!["old.sprocket.gg".to_string()],
                leaf(now - 60 * 86_400, now + 30 * 86_400),
            ),
            // another domain
            (
                vec!["x.other.org".to_string()],
                leaf(now - 3600, now + 86_400),
            ),
        ];
        let wanted: Vec<String> = ["api.sprocket.gg", "web.sprocket.gg", "new.sprocket.gg"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let n = new_certificates(&wanted, &kept, "le", true, now);
        let hosts: Vec<&str> = n.iter().map(|c| c.host.as_str()).collect();
        assert_eq!(hosts, ["web.sprocket.gg", "new.sprocket.gg"]);
        let b = n[0].budget.as_ref().unwrap();
        assert_eq!(
            (b.domain.as_str(), b.issued_this_week, b.left),
            ("sprocket.gg", 2, 48)
        );
        // The second request of this up counts against the first.
        assert_eq!(n[1].budget.as_ref().unwrap().left, 47);
        // A private CA has no budget.
        let p = new_certificates(&wanted, &kept, "https://pebble/dir", false, now);
        assert!(p.iter().all(|c| c.budget.is_none()));
    }
}
