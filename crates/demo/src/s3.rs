//! The S3 check: with the key pair the platform mounted (`DEMO_S3_ACCESS_KEY_FILE`,
//! `DEMO_S3_SECRET_KEY_FILE`), it writes an object into `DEMO_S3_BUCKET` at the endpoint its
//! `DEMO_CHECKS` entry names (`s3=http(s)://host[:port]`, signing region `DEMO_S3_REGION`)
//! and reads it back, so the check proves
//! what the key may do, not only that it exists. `/s3?bucket=B` tries to write into another
//! bucket (refused where its key may only read there). Never a key in a reply.

use sprocket_datastores::s3::Client;

fn var(k: &str) -> Result<String, String> {
    std::env::var(k).map_err(|_| format!("{k} is not set"))
}

fn client(endpoint: &str) -> Result<Client, String> {
    let read = |k: &str| -> Result<String, String> {
        let f = var(k)?;
        std::fs::read_to_string(&f)
            .map(|v| v.trim().to_string())
            .map_err(|e| format!("cannot read {f}: {e}"))
    };
    Client::new(
        endpoint,
        &std::env::var("DEMO_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        &read("DEMO_S3_ACCESS_KEY_FILE")?,
        &read("DEMO_S3_SECRET_KEY_FILE")?,
    )
    .map_err(|e| e.to_string())
}

/// Writes `demo-check.txt` into `bucket` (and with `read_back`, reads it back).
pub fn write(endpoint: &str, bucket: &str, read_back: bool) -> Result<String, String> {
    let c = client(endpoint)?;
    crate::pg::runtime()?.block_on(async {
        let body = format!(
            "written by {}",
            std::env::var("HOSTNAME").unwrap_or_default()
        );
        let put = c
            .put_object(bucket, "demo-check.txt", body.clone().into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        if put.status != 200 {
            return Err(format!(
                "writing into {bucket}: HTTP {} {}",
                put.status,
                put.code().unwrap_or("")
            ));
        }
        if !read_back {
            return Ok(format!("wrote into {bucket}"));
        }
        let got = c
            .get_object(bucket, "demo-check.txt")
            .await
            .map_err(|e| e.to_string())?;
        if (got.status, got.body.as_str()) != (200, body.as_str()) {
            return Err(format!(
                "reading back from {bucket}: HTTP {} {}",
                got.status,
                got.code().unwrap_or("")
            ));
        }
        Ok(format!("wrote and read {bucket}/demo-check.txt"))
    })
}

pub fn check(endpoint: &str) -> Result<String, String> {
    write(endpoint, &var("DEMO_S3_BUCKET")?, true)
}
