//! Small value grammars of the spec: image references, host names, durations, memory sizes.
//! Each returns a message that says what is wrong and what a good value looks like.

use std::net::IpAddr;

/// Checks a Docker image reference: `[registry[:port]/]path[:tag][@sha256:<64 hex>]`, the grammar
/// of distribution/reference (lowercase path components separated by `/`, each made of
/// `[a-z0-9]` runs joined by `.`, `_`, `__` or dashes).
pub fn check_image(reference: &str) -> Result<(), String> {
    if reference.is_empty() {
        return Err("the image reference is empty".into());
    }
    if reference.chars().any(char::is_whitespace) {
        return Err(format!("image reference `{reference}` contains whitespace"));
    }
    let (name_tag, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let ok = d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(format!(
                "image digest `{d}` is not `sha256:` followed by 64 hex digits"
            ));
        }
    }
    let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !ok {
            return Err(format!(
                "image tag `{t}` is invalid: use letters, digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`)"
            ));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            check_registry(first)?;
            parts.remove(0);
        }
    }
    for comp in parts {
        check_path_component(comp)
            .map_err(|why| format!("image name `{name}` is invalid: component `{comp}` {why}"))?;
    }
    Ok(())
}

fn check_registry(host: &str) -> Result<(), String> {
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(format!("registry port `{p}` is not a number"));
        }
    }
    if h.is_empty()
        || !h
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(format!("registry host `{h}` is not a valid host name"));
    }
    Ok(())
}

fn check_path_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("is empty (doubled or trailing `/`?)");
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.iter().any(|x| x.is_ascii_uppercase()) {
        return Err("has uppercase letters (image names are lowercase)");
    }
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err("must start and end with a lowercase letter or digit");
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator: `.`, `_`, `__` or one or more `-`
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return Err("has a separator other than `.`, `_`, `__` or dashes");
        }
    }
    Ok(())
}

/// A DNS host name (`api.sprocket.example.org`, `localhost`).
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host name is empty".into());
    }
    if host.len() > 253 {
        return Err(format!("host name `{host}` is longer than 253 characters"));
    }
    for label in host.split('.') {
        check_dns_label(label).map_err(|why| format!("host name `{host}` is invalid: {why}"))?;
    }
    Ok(())
}

/// One DNS label: letters, digits and inner dashes, at most 63 characters.
pub fn check_dns_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label (doubled, leading or trailing `.`)".into());
    }
    if label.len() > 63 {
        return Err(format!("label `{label}` is longer than 63 characters"));
    }
    let b = label.as_bytes();
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err(format!("label `{label}` starts or ends with `-`"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(format!(
            "label `{label}` contains `{c}`; use letters, digits and `-`"
        ));
    }
    Ok(())
}

pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse::<IpAddr>()
        .map_err(|_| format!("`{text}` is not an IPv4 or IPv6 address"))
}

/// True for host names that no public CA will certify: `localhost`, `*.localhost`, IPs.
/// The host of `scheme://host[:port][/path]` (`None` without a scheme).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => authority,
    };
    (!host.is_empty()).then_some(host)
}

pub fn is_local_host(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok()
}

/// A Vault path a service reads: `<mount>/<path>`, `*` only at the end. Returns the mount.
pub fn check_vault_path(p: &str) -> Result<&str, String> {
    let (mount, rest) = p
        .split_once('/')
        .ok_or_else(|| format!("`{p}` names no path under its mount"))?;
    let ok_chars = |t: &str| {
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./*+".contains(&b))
    };
    if mount.is_empty() || rest.is_empty() {
        return Err(format!("`{p}` names no path under its mount"));
    }
    if !ok_chars(p) || p.split('/').any(|s| s.is_empty() || s == "..") {
        return Err(format!(
            "`{p}` is not a Vault path (letters, digits, `-_.+`, `/` between non-empty parts)"
        ));
    }
    if p.find('*').is_some_and(|i| i != p.len() - 1) {
        return Err(format!("`{p}`: `*` may only end a Vault path"));
    }
    Ok(mount)
}

/// Durations like `500ms`, `5s`, `1m30s`, `2h`, in nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a duration; write e.g. `500ms`, `5s`, `1m30s`, `2h`");
    let too_long = || format!("`{text}` is longer than Docker can hold (about 292 years)");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult: u64 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(mult).ok_or_else(too_long)?)
            .ok_or_else(too_long)?;
    }
    // Docker holds durations as signed 64-bit nanoseconds.
    if i64::try_from(total).is_err() {
        return Err(too_long());
    }
    Ok(total)
}

/// Memory sizes like `256M`, `2G`, `512Mi`, `1GB`, `1048576`, in bytes (K/M/G are powers of 1024,
/// as Docker reads them): digits, then at most one unit letter, an `i` after it, and a `B`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || {
        format!("`{text}` is not a memory size; write digits and one unit, e.g. `256M`, `2G`, `512Mi`, `1GB`")
    };
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let mut unit = &t[digits..];
    let mult: u64 = match unit.as_bytes().first() {
        Some(b'k' | b'K') => 1 << 10,
        Some(b'm' | b'M') => 1 << 20,
        Some(b'g' | b'G') => 1 << 30,
        _ => 1,
    };
    if mult > 1 {
        unit = &unit[1..];
        unit = unit.strip_prefix('i').unwrap_or(unit);
    }
    unit = unit
        .strip_prefix('B')
        .or_else(|| unit.strip_prefix('b'))
        .unwrap_or(unit);
    if !unit.is_empty() {
        return Err(bad());
    }
    let too_large = || format!("`{text}` is more memory than Docker can hold (8 EiB)");
    let n: u64 = t[..digits].parse().map_err(|_| too_large())?;
    let bytes = n.checked_mul(mult).ok_or_else(too_large)?;
    // Docker holds memory sizes as signed 64-bit byte counts.
    if i64::try_from(bytes).is_err() {
        return Err(too_large());
    }
    Ok(bytes)
}

/// A route's path prefix: starts with `/`, then only letters, digits and `._~/-` (the unreserved
/// characters of a URL path). It is written into a Traefik rule between backticks, so anything
/// else (a backtick, `(`, `|`, `&`, `!`, `%` …) could change the rule itself.
pub fn check_route_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("route path `{p}` must start with `/`"));
    }
    match p
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._~/-".contains(*c)))
    {
        Some(c) => Err(format!(
            "route path `{p}` contains {c:?}: only letters, digits and `._~/-` are allowed"
        )),
        None => Ok(()),
    }
}

/// Year, month, day, hour, minute, second (UTC) of `secs` since the Unix epoch: the civil
/// calendar from days since 1970-01-01 (H. Hinnant's algorithm). Also what `status` prints
/// certificates' dates with.
pub fn utc(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 of a civil date (UTC): the inverse of [`utc`]'s date part
/// (H. Hinnant's days_from_civil).
pub fn from_utc(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the Unix epoch of a UTC date and time, `None` when a field is out of range
/// (a day that does not exist, e.g. Feb 30, reads back as another: the callers that must refuse
/// it compare with [`utc`]).
pub fn utc_seconds(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let ok = (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&s);
    ok.then(|| from_utc(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Seconds since the Unix epoch of an RFC 3339 time in UTC as the Docker engine writes it
/// (`2026-12-04T19:16:30Z`, `…30.123456789Z`, `…30+00:00`); `None` for anything else. The
/// inverse of what `utc` gives, to the second.
pub fn rfc3339_utc(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let clock = rest.get(..8)?;
    let zone = rest[8..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if zone != "Z" && zone != "+00:00" {
        return None;
    }
    let mut c = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (c.next()??, c.next()??, c.next()??);
    utc_seconds(y, mo, day, h, mi, s)
}

#[cfg(test)]
mod tests {

    #[test]
    fn engine_times_read_as_utc_seconds() {
        let t = rfc3339_utc("2026-12-03T02:00:00Z").unwrap();
        assert_eq!(utc(t), (2026, 12, 3, 2, 0, 0));
        assert_eq!(rfc3339_utc("2026-12-03T02:00:00.888365791Z"), Some(t));
        assert_eq!(rfc3339_utc("2026-12-03T02:00:00+00:00"), Some(t));
        for bad in [
            "2026-12-03T02:00:00+01:00",
            "2026-12-03 02:00:00Z",
            "2026-13-03T02:00:00Z",
            "",
            "2026-12-03T02:00Z",
        ] {
            assert_eq!(rfc3339_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_dates_both_ways() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc(1_796_263_200), (2026, 12, 3, 2, 0, 0));
        assert_eq!(utc(-1), (1969, 12, 31, 23, 59, 59));
        for days in [-800_000, -1, 0, 59, 60, 10_956, 20_790, 2_932_896] {
            let (y, m, d, ..) = utc(days * 86_400);
            assert_eq!(from_utc(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(
            from_utc(2000, 3, 1) - from_utc(2000, 2, 28),
            2,
            "2000 is a leap year"
        );
        assert_eq!(
            from_utc(1900, 3, 1) - from_utc(1900, 2, 28),
            1,
            "1900 is not"
        );
    }

    use super::*;

    #[test]
    fn images() {
        for ok in [
            "redis",
            "redis:7.0-alpine",
            "traefik:v3.7",
            "asaxplayinghorse/web:main",
            "ghcr.io/sprocketbot/demo:0.1.0",
            "localhost:5000/a/b",
            "grafana/loki:main-1a7b170",
            "sprocket-local/traefik:3.7",
            "a__b/c---d",
            "redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_image(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("Redis", "uppercase"),
            ("redis:", "tag ``"),
            ("redis:7.0 ", "whitespace"),
            ("redis@sha256:abc", "64 hex"),
            ("a//b", "is empty"),
            ("-a/b", "start and end"),
            ("a.-b", "separator"),
            ("redis:-x", "tag `-x`"),
        ] {
            let e = check_image(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn hosts_and_ips() {
        assert!(check_host("api.sprocket.mlesports.gg").is_ok());
        assert!(check_host("rabbitMq.x.gg").is_ok());
        assert!(check_host("a..b").unwrap_err().contains("empty label"));
        assert!(check_host("a_b.com").unwrap_err().contains("contains `_`"));
        assert!(check_host("-a.com").unwrap_err().contains("starts or ends"));
        assert!(parse_ip("192.168.4.39").is_ok());
        assert!(parse_ip("100.110.185.84").is_ok());
        assert!(parse_ip("192.168.4.300").is_err());
        assert!(is_local_host("localhost") && is_local_host("api.localhost"));
        assert!(is_local_host("10.0.0.1") && !is_local_host("sprocket.mlesports.gg"));
    }

    #[test]
    fn durations_and_memory() {
        assert_eq!(parse_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 s").is_err());
        assert!(parse_duration("1d").is_err());
        assert_eq!(parse_memory("256M"), Ok(256 << 20));
        assert_eq!(parse_memory("2Gi"), Ok(2 << 30));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert!(parse_memory("lots").is_err());
        assert_eq!(parse_memory("1KiB"), Ok(1024));
        assert_eq!(parse_memory("1kb"), Ok(1024));
        assert_eq!(parse_memory("3b"), Ok(3));
        for bad in [
            "1bibib", "1i", "1iB", "1MM", "1Mii", "1KiBB", "1 M", "1T", "1BM",
        ] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_durations_fit_dockers_signed_64_bits() {
        assert!(parse_memory("9000000000G")
            .unwrap_err()
            .contains("more memory"));
        assert!(parse_memory("8589934591G").is_ok());
        assert!(parse_memory("8589934592G").is_err());
        assert!(parse_memory("99999999999999999999")
            .unwrap_err()
            .contains("more memory"));
        assert!(parse_duration("2562047h").is_ok());
        assert!(parse_duration("2600000h")
            .unwrap_err()
            .contains("longer than"));
        assert!(parse_duration("18446744073709551616s")
            .unwrap_err()
            .contains("longer than"));
    }

    #[test]
    fn route_paths() {
        for ok in ["/", "/webhook", "/a/b-c_d.e~f/", "/v1/2"] {
            assert_eq!(check_route_path(ok), Ok(()), "{ok}");
        }
        for (bad, what) in [
            ("x", "start with `/`"),
            ("/x`)||Host(`a`)||PathPrefix(`/", "contains '`'"),
            ("/a b", "contains ' '"),
            ("/a%2f", "contains '%'"),
            ("/a|b", "contains '|'"),
            ("/a&b", "contains '&'"),
            ("/a!b", "contains '!'"),
            ("/a(b", "contains '('"),
            ("/é", "contains 'é'"),
        ] {
            let e = check_route_path(bad).unwrap_err();
            assert!(e.contains(what), "{bad}: {e}");
        }
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://host.docker.internal:14000/dir"),
            Some("host.docker.internal")
        );
        assert_eq!(
            url_host("http://host.docker.internal:9333"),
            Some("host.docker.internal")
        );
        assert_eq!(
            url_host("https://nyc3.digitaloceanspaces.com"),
            Some("nyc3.digitaloceanspaces.com")
        );
        assert_eq!(url_host("nyc3.digitaloceanspaces.com"), None);
        assert_eq!(url_host("https://"), None);
    }
}
