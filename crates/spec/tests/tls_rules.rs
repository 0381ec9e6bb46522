//! An environment's private ACME server: `ca_server` (https only) and `ca_certificate` (a PEM
//! file of the spec's folder, read at load time); an address inherited through `extends` is
//! cleared with `none` (an ACME environment has no IP hosts). Each rule's code, message and
//! file:line:column.

mod common;

use common::*;
use sprocket_spec::model::Tls;
use sprocket_spec::{parse, validate_all, Files};
use std::path::Path;

const PEBBLE: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/// BASE with an environment `acme` (extends `local`, no IP addresses) whose `tls` is `tls`.
fn spec(tls: &str) -> String {
    format!(
        "{BASE}  acme:\n    extends: local\n    hostname: acme.example.test\n    server_ip: none\n    tls: {tls}\n"
    )
}

/// The files a test serves: `pebble.pem` (a certificate), `key.pem` (not one), `web.json`.
fn serve(p: &Path) -> std::io::Result<Vec<u8>> {
    match p.file_name().and_then(|n| n.to_str()) {
        Some("pebble.pem") => Ok(PEBBLE.as_bytes().to_vec()),
        Some("key.pem") => Ok(b"-----BEGIN PRIVATE KEY-----\n".to_vec()),
        _ => files(p),
    }
}

fn all(text: &str) -> Vec<sprocket_spec::Diagnostic> {
    diagnostics_with(text, &Files::new(&serve))
}

#[test]
fn a_private_acme_server_and_its_ca_certificate() {
    let text = spec(
        "{ mode: letsencrypt, email: ops@example.test, ca_server: \"https://host.docker.internal:14000/dir\", ca_certificate: pebble.pem }",
    );
    let parsed = parse(source(&text)).unwrap();
    let files = Files::new(&serve);
    let r = validate_all(&parsed, &files);
    assert!(r.diagnostics.is_empty(), "{:#?}", r.diagnostics);
    let p = sprocket_spec::resolve(&parsed, Some("acme"), &files)
        .unwrap()
        .platform;
    let Tls::LetsEncrypt {
        ca_server,
        ca_certificate,
        ..
    } = &p.environment.tls
    else {
        panic!("{:?}", p.environment.tls)
    };
    assert_eq!(
        ca_server.as_deref(),
        Some("https://host.docker.internal:14000/dir")
    );
    let ca = ca_certificate.as_ref().unwrap();
    assert_eq!(
        (ca.file.as_str(), ca.content.as_slice()),
        ("pebble.pem", PEBBLE.as_bytes())
    );
    // `server_ip: none` cleared the inherited address: no IP host, no acme-on-local-host.
    assert_eq!(p.environment.server_ip, None);
}

#[test]
fn a_ca_certificate_needs_a_server_and_must_be_a_certificate() {
    let text = spec("{ mode: letsencrypt, email: ops@example.test, ca_certificate: pebble.pem }");
    expect_in(
        all(&text),
        "ca-certificate-without-server",
        "`pebble.pem` is given without a `ca_server`",
        at(&text, "pebble.pem", 0),
    );
    let text = spec("{ mode: letsencrypt, email: ops@example.test, ca_server: \"https://ca.test/dir\", ca_certificate: key.pem }");
    expect_in(
        all(&text),
        "invalid-ca-certificate",
        "`key.pem` holds no PEM certificate",
        at(&text, "key.pem", 0),
    );
    let text = spec("{ mode: letsencrypt, email: ops@example.test, ca_server: \"https://ca.test/dir\", ca_certificate: missing.pem }");
    assert!(
        all(&text).iter().any(|d| d.message.contains("missing.pem")),
        "a missing file is named"
    );
}

#[test]
fn the_ca_server_speaks_https() {
    let text =
        spec("{ mode: letsencrypt, email: ops@example.test, ca_server: \"http://ca.test/dir\" }");
    expect_in(
        all(&text),
        "invalid-ca-server",
        "`http://ca.test/dir` is not an https:// URL",
        at(&text, "letsencrypt, email: ops@example.test, ca_server", 0),
    );
}

#[test]
fn private_acme_fields_belong_to_letsencrypt() {
    let text = spec("{ mode: self-signed, ca_certificate: pebble.pem }");
    expect_in(
        all(&text),
        "invalid-tls-field",
        "`ca_certificate` does not apply to TLS mode `self-signed`",
        at(&text, "pebble.pem", 0),
    );
}

#[test]
fn certificates_duration_is_hours_of_letsencrypt() {
    let text = spec("{ mode: letsencrypt, email: ops@example.test, certificates_duration: 0 }");
    expect_in(
        all(&text),
        "invalid-tls-field",
        "certificates_duration 0 is not 1 to 87600 hours",
        value_at(&text, "certificates_duration: 0"),
    );
    let text = spec("{ mode: self-signed, certificates_duration: 24 }");
    expect_in(
        all(&text),
        "invalid-tls-field",
        "`certificates_duration` does not apply to TLS mode `self-signed`",
        value_at(&text, "certificates_duration: 24"),
    );
    let text = spec("{ mode: letsencrypt, email: ops@example.test, certificates_duration: 1 }");
    let parsed = parse(source(&text)).unwrap();
    let p = sprocket_spec::resolve(&parsed, Some("acme"), &Files::new(&serve))
        .unwrap()
        .platform;
    assert!(matches!(
        p.environment.tls,
        Tls::LetsEncrypt {
            certificates_duration: Some(1),
            ..
        }
    ));
}

/// Where the value of `key: value` (the needle) starts.
fn value_at(text: &str, needle: &str) -> (u32, u32) {
    let (line, col) = at(text, needle, 0);
    (line, col + needle.find(": ").unwrap() as u32 + 2)
}
