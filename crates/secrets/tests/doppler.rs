//! The Doppler client against the Doppler-compatible test server, and that server against the
//! **real Doppler CLI** (`SPROCKET_DOPPLER_CLI`, fetched and hash-checked by `scripts/test`): the
//! CLI must print exactly what the server serves, so the server is Doppler as far as the CLI can
//! tell. Without the CLI the test fails, loudly; it never skips.

use sprocket_secrets::doppler::{Doppler, DopplerError, Download};
use sprocket_secrets::doppler_fake;
use std::time::Duration;

const TOKEN: &str = "dp.st.dev.Zq8kY3pR4bC7vN1xW6mT0sH2jL5uA9eD";

async fn fake() -> (String, doppler_fake::Shared) {
    let (host, state) = doppler_fake::start(TOKEN, "sprocket", "dev").await;
    {
        let mut s = state.lock().unwrap();
        s.secrets
            .insert("POSTGRES_PASSWORD".into(), "pg-v4lue-1".into());
        s.secrets.insert("JWT_SECRET".into(), "jwt-v4lue-1".into());
    }
    (host, state)
}

fn keys(d: &Download) -> Vec<(String, String)> {
    match d {
        Download::Fresh { entries, .. } => entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect(),
        Download::NotModified => vec![],
    }
}

#[tokio::test]
async fn downloads_then_304_until_a_value_changes() {
    let (host, state) = fake().await;
    let d = Doppler::new(&host, TOKEN);
    let first = d.download("sprocket", "dev", None).await.unwrap();
    assert_eq!(
        keys(&first),
        [
            ("DOPPLER_CONFIG".into(), "dev".into()),
            ("DOPPLER_ENVIRONMENT".into(), "dev".into()),
            ("DOPPLER_PROJECT".into(), "sprocket".into()),
            ("JWT_SECRET".into(), "jwt-v4lue-1".into()),
            ("POSTGRES_PASSWORD".into(), "pg-v4lue-1".into()),
        ]
    );
    let Download::Fresh {
        etag: Some(tag), ..
    } = first
    else {
        panic!("an ETag")
    };
    let again = d.download("sprocket", "dev", Some(&tag)).await.unwrap();
    assert!(matches!(again, Download::NotModified));
    state
        .lock()
        .unwrap()
        .secrets
        .insert("JWT_SECRET".into(), "jwt-v4lue-2".into());
    let changed = d.download("sprocket", "dev", Some(&tag)).await.unwrap();
    assert!(keys(&changed).contains(&("JWT_SECRET".into(), "jwt-v4lue-2".into())));
}

#[tokio::test]
async fn throttling_is_retried_and_refusals_name_the_config_never_the_token() {
    let (host, state) = fake().await;
    state.lock().unwrap().throttle = 2;
    let d = Doppler::new(&host, TOKEN).with_backoff(Duration::from_millis(10));
    let got = d.download("sprocket", "dev", None).await.unwrap();
    assert_eq!(keys(&got).len(), 5);
    assert_eq!(
        state.lock().unwrap().requests,
        3,
        "two 429s, then the answer"
    );

    // Throttled past the CLI's five retries: an error that says so.
    state.lock().unwrap().throttle = 10;
    let err = d.download("sprocket", "dev", None).await.unwrap_err();
    assert!(
        matches!(
            err,
            DopplerError::Status {
                status: 429,
                attempts: 6,
                ..
            }
        ),
        "{err}"
    );
    state.lock().unwrap().throttle = 0;

    let wrong = Doppler::new(&host, "dp.st.dev.WRONGTOKENwrongtoken0000")
        .download("sprocket", "dev", None)
        .await
        .unwrap_err();
    let msg = wrong.to_string();
    assert!(
        matches!(wrong, DopplerError::Refused { status: 401, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("sprocket/dev") && msg.contains("Invalid Auth token"),
        "{msg}"
    );
    assert!(!msg.contains("WRONGTOKEN") && !msg.contains(TOKEN), "{msg}");

    let missing = d.download("sprocket", "prd", None).await.unwrap_err();
    assert!(
        matches!(missing, DopplerError::NotFound { .. }),
        "{missing}"
    );
    assert!(missing.to_string().contains("sprocket/prd"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_doppler_cli_reads_the_fake_as_it_reads_doppler() {
    let cli = std::env::var("SPROCKET_DOPPLER_CLI").unwrap_or_else(|_| {
        panic!("SPROCKET_DOPPLER_CLI is not set: run the tests with scripts/test, which fetches the pinned Doppler CLI (scripts/build-images --binary doppler-cli)")
    });
    let (host, _state) = fake().await;
    let home = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cli)
            .env("HOME", home.path())
            .env_remove("DOPPLER_TOKEN")
            .args([
                "secrets",
                "download",
                "--no-file",
                "--format",
                "json",
                "--api-host",
                &host,
                "--token",
                TOKEN,
                "-p",
                "sprocket",
                "-c",
                "dev",
            ])
            .output()
            .expect("the Doppler CLI runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed,
        serde_json::json!({
            "DOPPLER_CONFIG": "dev", "DOPPLER_ENVIRONMENT": "dev", "DOPPLER_PROJECT": "sprocket",
            "JWT_SECRET": "jwt-v4lue-1", "POSTGRES_PASSWORD": "pg-v4lue-1"
        })
    );
}
