//! An S3 external as a datastore (`admin_access_key`, `admin_secret_key`, `buckets`, `keys`)
//! and its consumers' `access: { <s3>: { buckets: … } }`.
//!
//! S3 differs from the other datastores in two ways: its login is a key pair (an access key id
//! and a secret key), and not every store can make one per consumer — SeaweedFS and MinIO take
//! a key chosen by the caller through their IAM API (`keys: per-service`), DigitalOcean Spaces'
//! keys are made in its console (`keys: shared`: consumers mount the external's key). Buckets
//! are the store's, declared once on the external; consumers name the ones they use.

use super::suggest::suggest;
use super::{pos, Resolver};
use crate::model::{self, BucketAccess, DatastoreKind, S3Keys};
use crate::raw::{self, S};

/// The signing region where the external names none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// An S3 bucket name as S3 accepts it everywhere: 3 to 63 lowercase letters, digits, `-` and
/// `.`, starting and ending with a letter or digit, not an IP address.
pub fn bucket_name(n: &str) -> Result<(), String> {
    if !(3..=63).contains(&n.len()) {
        return Err("is not 3 to 63 characters long".into());
    }
    if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!("holds `{c}`"));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(n.chars().next()) || !edge(n.chars().last()) {
        return Err("does not start and end with a letter or a digit".into());
    }
    if n.contains("..") {
        return Err("holds `..`".into());
    }
    if n.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("is an IP address".into());
    }
    Ok(())
}

/// `http(s)://host[:port]`, nothing after: the host of an S3 endpoint, or why not.
pub fn endpoint_host(e: &str) -> Result<&str, String> {
    let rest = e
        .strip_prefix("https://")
        .or_else(|| e.strip_prefix("http://"))
        .ok_or("does not start with `https://` or `http://`")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err("is not `scheme://host[:port]` (no path, user or query)".into());
    }
    Ok(match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => rest,
    })
}

/// The fields of an S3 external, as the spec and its environment give them.
pub(super) struct S3Fields<'r> {
    pub(super) name: &'r S<String>,
    pub(super) external: &'r raw::External,
    pub(super) endpoint: Option<&'r str>,
    pub(super) region: Option<&'r S<String>>,
    pub(super) keys: Option<&'r S<String>>,
}

impl Resolver<'_> {
    /// An S3 external with an administrator's key is a datastore: `up` creates its buckets
    /// and (with `keys: per-service`) its consumers' users and keys.
    pub(super) fn s3_datastore(
        &mut self,
        f: S3Fields<'_>,
        secrets: &[model::Secret],
    ) -> Option<model::Datastore> {
        let (name, e) = (&f.name.value, f.external);
        for (field, v) in [
            ("admin_user", &e.admin_user),
            ("admin_password", &e.admin_password),
            ("admin_database", &e.admin_database),
            ("sslmode", &e.sslmode),
        ] {
            if let Some(v) = v {
                self.err(
                    "invalid-external",
                    pos(v),
                    format!("external `{name}`: `{field}` does not apply to an S3 store"),
                )
                .help = Some(
                    "an S3 administrator is a key: `admin_access_key` and `admin_secret_key`, each the name of a secret"
                        .into(),
                );
            }
        }
        let (key, secret) = match (&e.admin_access_key, &e.admin_secret_key) {
            (Some(k), Some(s)) => (k, s),
            (None, None) => {
                let extra = [
                    e.buckets.as_ref().and_then(|b| b.first()).map(pos),
                    f.keys.map(pos),
                    f.region.map(pos),
                ];
                if let Some(at) = extra.into_iter().flatten().next() {
                    self.err(
                        "invalid-external",
                        at,
                        format!("external `{name}` declares buckets or keys but no administrator's key"),
                    )
                    .help = Some("add `admin_access_key` and `admin_secret_key` (names of secrets with the key `up` creates buckets with)".into());
                }
                return None;
            }
            (Some(k), None) | (None, Some(k)) => {
                let missing = if e.admin_access_key.is_none() {
                    "admin_access_key"
                } else {
                    "admin_secret_key"
                };
                self.err(
                    "invalid-external",
                    pos(k),
                    format!("external `{name}` names half a key: `{missing}` is missing"),
                )
                .help = Some(
                    "give both `admin_access_key` and `admin_secret_key` (names of secrets)".into(),
                );
                return None;
            }
        };
        for s in [key, secret] {
            self.admin_secret_declared(name, "key", s, secrets);
        }
        let endpoint = f.endpoint.unwrap_or_default();
        if let Err(why) = endpoint_host(endpoint) {
            self.err(
                "invalid-external",
                pos(f.name),
                format!("external `{name}`: the endpoint `{endpoint}` {why}"),
            )
            .help = Some(
                "give the store's `endpoint`, e.g. `https://nyc3.digitaloceanspaces.com`".into(),
            );
        }
        let region = match f.region {
            Some(r)
                if r.value.is_empty()
                    || !r
                        .value
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                self.err(
                    "invalid-external",
                    pos(r),
                    format!(
                        "external `{name}`: region `{}` is not a region name",
                        r.value
                    ),
                )
                .help = Some(format!(
                    "lowercase letters, digits and `-`, e.g. `nyc3` or `{DEFAULT_REGION}`"
                ));
                r.value.clone()
            }
            Some(r) => r.value.clone(),
            None => DEFAULT_REGION.into(),
        };
        let keys = match f.keys {
            None => S3Keys::default(),
            Some(k) => match S3Keys::ALL.iter().find(|(n, _)| *n == k.value) {
                Some((_, v)) => *v,
                None => {
                    self.err(
                        "invalid-external",
                        pos(k),
                        format!("external `{name}`: keys `{}` is not `shared` or `per-service`", k.value),
                    )
                    .help = Some("`per-service` where the store's IAM API makes keys (SeaweedFS, MinIO); `shared` where keys are made in its console (DigitalOcean Spaces)".into());
                    S3Keys::default()
                }
            },
        };
        let mut buckets: Vec<String> = Vec::new();
        for b in e.buckets.iter().flatten() {
            if let Err(why) = bucket_name(&b.value) {
                self.err(
                    "invalid-bucket",
                    pos(b),
                    format!("external `{name}`: bucket `{}` {why}", b.value),
                )
                .help =
                    Some("S3 bucket names: 3 to 63 lowercase letters, digits, `-` and `.`".into());
            }
            if buckets.contains(&b.value) {
                self.err(
                    "invalid-bucket",
                    pos(b),
                    format!("external `{name}`: bucket `{}` is listed twice", b.value),
                )
                .help = Some("remove one".into());
            }
            buckets.push(b.value.clone());
        }
        Some(model::Datastore {
            kind: DatastoreKind::S3,
            admin_user: String::new(),
            admin_secret: secret.value.clone(),
            admin_port: DatastoreKind::S3.default_admin_port(),
            admin_database: String::new(),
            sslmode: model::SslMode::default(),
            admin_key_secret: key.value.clone(),
            endpoint: endpoint.to_string(),
            region,
            buckets,
            keys,
        })
    }

    /// A consumer's buckets in the S3 store `on`, each one the store declares.
    pub(super) fn s3_buckets(
        &mut self,
        service: &str,
        on: &str,
        at: crate::diag::Pos,
        given: Option<&crate::tree::OrderedMap<S<String>>>,
        store: &model::Datastore,
    ) -> Vec<(String, BucketAccess)> {
        let Some(given) = given.filter(|g| g.iter().next().is_some()) else {
            self.err(
                "invalid-access",
                at,
                format!("`{service}` asks for access to `{on}` but names no bucket"),
            )
            .help = Some(format!(
                "list the buckets it uses: `buckets: {{ <bucket>: read | readwrite }}` ({})",
                suggest("", &store.buckets, "buckets")
            ));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (b, a) in given.iter() {
            if !store.buckets.contains(&b.value) {
                self.err(
                    "unknown-bucket",
                    pos(b),
                    format!(
                        "`{service}` uses bucket `{}`, which `{on}` does not declare",
                        b.value
                    ),
                )
                .help = Some(format!(
                    "add it to `{on}`'s `buckets`; {}",
                    suggest(&b.value, &store.buckets, "buckets")
                ));
            }
            match BucketAccess::ALL.iter().find(|(n, _)| *n == a.value) {
                Some((_, v)) => out.push((b.value.clone(), *v)),
                None => {
                    self.err(
                        "invalid-access",
                        pos(a),
                        format!(
                            "`{service}`: `{}` is not an access to bucket `{}`",
                            a.value, b.value
                        ),
                    )
                    .help = Some("use `read` or `readwrite`".into());
                }
            }
        }
        out
    }
}

impl Resolver<'_> {
    /// A consumer's key in the S3 store `on`: the secrets with its access key id and secret
    /// key, and where it mounts them — its own generated pair with `keys: per-service`, the
    /// external's with `keys: shared`.
    pub(super) fn s3_key(
        &mut self,
        service: &str,
        on: &str,
        at: crate::diag::Pos,
        a: &raw::Access,
        store: &model::Datastore,
    ) -> (String, String, String, String) {
        let file = |r: &mut Self, given: Option<&S<String>>, default: String| match given {
            Some(f) if !f.value.starts_with('/') => {
                r.err(
                    "invalid-access",
                    pos(f),
                    format!("`{service}`: `{}` is not an absolute path", f.value),
                )
                .help = Some(format!("e.g. `{default}`"));
                f.value.clone()
            }
            Some(f) => f.value.clone(),
            None => default,
        };
        let key_file = file(
            self,
            a.access_key_file.as_ref(),
            format!("/run/secrets/{on}-access-key"),
        );
        let secret_file = file(
            self,
            a.secret_key_file.as_ref(),
            format!("/run/secrets/{on}-secret-key"),
        );
        if store.keys == S3Keys::Shared {
            if let Some(u) = &a.user {
                self.err(
                    "invalid-access",
                    pos(u),
                    format!("`{service}`: `user` in `{on}` needs `keys: per-service`; `{on}`'s keys are shared"),
                )
                .help = Some(format!("remove `user`, or give `{on}` `keys: per-service` where its IAM API makes keys (SeaweedFS, MinIO)"));
            }
            return (
                store.admin_key_secret.clone(),
                key_file,
                store.admin_secret.clone(),
                secret_file,
            );
        }
        let (key, secret) = crate::names::s3_key_secrets(service, on);
        for n in [&key, &secret] {
            if let Err(e) = crate::names::check_object_name(n) {
                self.err(
                    "invalid-access",
                    at,
                    format!("`{service}`: its key's secret `{n}` {e}"),
                )
                .help = Some(
                    "the secrets are named `<service>-<datastore>-access-key` and `-secret-key`: shorten the names"
                        .into(),
                );
            }
            if let Some((k, _)) = self.spec.secrets.iter().find(|(k, _)| k.value == *n) {
                self.err(
                    "access-secret-declared",
                    pos(k),
                    format!("secret `{n}` is part of the key `up` generates for `{service}`'s access to `{on}`"),
                )
                .help = Some("rename this secret: the name is taken by the derived one".into());
            }
        }
        (key, key_file, secret, secret_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3s_rules() {
        for ok in ["abc", "sprocket-assets", "a.b-c1", &"a".repeat(63)] {
            assert_eq!(bucket_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ab",
            "Assets",
            "-assets",
            "assets-",
            "a..b",
            "a_b",
            "10.0.0.1",
            &"a".repeat(64),
        ] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_are_scheme_host_and_port_only() {
        assert_eq!(
            endpoint_host("https://nyc3.digitaloceanspaces.com"),
            Ok("nyc3.digitaloceanspaces.com")
        );
        assert_eq!(
            endpoint_host("http://host.docker.internal:9333/"),
            Ok("host.docker.internal")
        );
        for bad in [
            "nyc3.digitaloceanspaces.com",
            "https://h/bucket",
            "https://",
            "https://u@h",
        ] {
            assert!(endpoint_host(bad).is_err(), "{bad}");
        }
    }
}
