//! The agent's `/metrics` in both of Prometheus's exposition formats. `prometheus-client`
//! writes OpenMetrics, where a counter's `# HELP`/`# TYPE` name lacks the `_total` its samples
//! carry (prometheus/client_rust#194) and the text ends in `# EOF`. Prometheus asks for
//! OpenMetrics and gets it as written; any other client (curl, `promtool check metrics`, an old
//! scraper) gets the classic text format 0.0.4, where HELP and TYPE name the samples.

/// The content type of each format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a request's `Accept` asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// OpenMetrics text as the classic text format: counters' HELP and TYPE get `_total`, `# UNIT`
/// and `# EOF` go (the classic format has neither), `unknown` is `untyped`.
pub fn classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) {
                    format!("{name}_total")
                } else {
                    name.to_string()
                };
                let tail = if p == "# TYPE " && tail == "unknown" {
                    "untyped"
                } else {
                    tail
                };
                out.push_str(&format!("{p}{name} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_as_their_samples_and_eof_goes() {
        let om = "# HELP sprocket_agent_unseals Unseals done.\n# TYPE sprocket_agent_unseals counter\nsprocket_agent_unseals_total 3\n# HELP sprocket_agent_alerts_firing Alerts firing now.\n# TYPE sprocket_agent_alerts_firing gauge\nsprocket_agent_alerts_firing 0\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP sprocket_agent_unseals_total Unseals done.\n# TYPE sprocket_agent_unseals_total counter\nsprocket_agent_unseals_total 3\n# HELP sprocket_agent_alerts_firing Alerts firing now.\n# TYPE sprocket_agent_alerts_firing gauge\nsprocket_agent_alerts_firing 0\n"
        );
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
