//! An environment's ACME settings beyond the mode: another CA's directory (`ca_server`) and,
//! for a private ACME server (a company CA, Pebble in tests), the CA certificate Traefik trusts
//! for talking to it (`ca_certificate`, a file of the spec's folder read now, so that a missing
//! or foreign file is a validation error rather than a Traefik that cannot reach its CA).

use super::{pos, Resolver};
use crate::model;
use crate::raw;

const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

impl Resolver<'_> {
    /// `ca_server`: an `https://` URL (ACME is spoken over TLS only).
    pub(super) fn ca_server(&mut self, t: &raw::Tls) -> Option<String> {
        let url = t.ca_server.clone()?;
        if !url.starts_with("https://") || url.len() <= "https://".len() {
            self.err(
                "invalid-ca-server",
                pos(&t.mode),
                format!("ca_server `{url}` is not an https:// URL"),
            )
            .help = Some(
                "give the ACME directory's URL, e.g. `https://acme-staging-v02.api.letsencrypt.org/directory` or a local Pebble's `https://host.docker.internal:14000/dir`"
                    .into(),
            );
        }
        Some(url)
    }

    /// `ca_certificate`: a PEM certificate file next to the spec, for a `ca_server`.
    pub(super) fn ca_certificate(&mut self, t: &raw::Tls) -> Option<model::CaCertificate> {
        let file = t.ca_certificate.as_ref()?;
        if t.ca_server.is_none() {
            self.err(
                "ca-certificate-without-server",
                pos(file),
                format!("ca_certificate `{}` is given without a `ca_server`", file.value),
            )
            .help = Some(
                "a CA certificate is for a private ACME server: name it with `ca_server`, or remove `ca_certificate` (Let's Encrypt is trusted already)"
                    .into(),
            );
        }
        let (_, content) = self.config_file(file)?;
        if !content
            .windows(PEM_CERTIFICATE.len())
            .any(|w| w == PEM_CERTIFICATE)
        {
            self.err(
                "invalid-ca-certificate",
                pos(file),
                format!("ca_certificate `{}` holds no PEM certificate", file.value),
            )
            .help = Some(
                "give the ACME server's CA certificate in PEM (`-----BEGIN CERTIFICATE-----`), not its key or a DER file"
                    .into(),
            );
            return None;
        }
        Some(model::CaCertificate {
            file: file.value.clone(),
            content,
        })
    }

    /// `certificates_duration`: hours, at least 1.
    pub(super) fn certificates_duration(&mut self, t: &raw::Tls) -> Option<u64> {
        let d = t.certificates_duration.as_ref()?;
        if d.value == 0 || d.value > 87_600 {
            self.err(
                "invalid-tls-field",
                pos(d),
                format!("certificates_duration {} is not 1 to 87600 hours", d.value),
            )
            .help = Some(
                "give how long the CA's certificates last, in hours (Let's Encrypt: 2160, the default)"
                    .into(),
            );
            return None;
        }
        Some(d.value)
    }

    /// `ca_server`, `ca_certificate` and `certificates_duration` belong to `letsencrypt`.
    pub(super) fn acme_private_fields_refused(&mut self, t: &raw::Tls) {
        if t.ca_server.is_some() {
            self.err(
                "invalid-tls-field",
                pos(&t.mode),
                format!("`ca_server` does not apply to TLS mode `{}`", t.mode.value),
            )
            .help = Some(
                "use `mode: letsencrypt` with `ca_server` for another ACME CA, or remove `ca_server`"
                    .into(),
            );
        }
        if let Some(f) = &t.ca_certificate {
            self.err(
                "invalid-tls-field",
                pos(f),
                format!(
                    "`ca_certificate` does not apply to TLS mode `{}`",
                    t.mode.value
                ),
            )
            .help = Some("remove `ca_certificate`".into());
        }
        if let Some(d) = &t.certificates_duration {
            self.err(
                "invalid-tls-field",
                pos(d),
                format!(
                    "`certificates_duration` does not apply to TLS mode `{}`",
                    t.mode.value
                ),
            )
            .help = Some("remove `certificates_duration`".into());
        }
    }
}
