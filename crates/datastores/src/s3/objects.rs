//! Objects: listing, streaming downloads, deletion, and uploads of any size without holding the
//! whole object — one `PUT` when it fits in a part, S3's multipart upload otherwise (parts of
//! [`PART_BYTES`]; an upload that fails is aborted, so no half object is ever visible). Each
//! upload counts its bytes and their SHA-256 as they go: the manifest's checksums are of what
//! the bucket holds.

use super::{tag_values, xml_unescape, Client, Reply};
use crate::ProvisionError;
use sha2::{Digest, Sha256};

/// Size of an upload's parts (S3's least is 5 MiB but for the last part).
pub const PART_BYTES: usize = 8 << 20;

/// One page-through of a listing: objects (key, size) and common prefixes ("folders").
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<(String, u64)>,
    pub prefixes: Vec<String>,
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Client {
    /// Every object under `prefix` (with `delimiter`, the common prefixes instead of what is
    /// below them), all pages.
    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Listing, ProvisionError> {
        let mut out = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let mut query = q(&[("list-type", "2"), ("prefix", prefix)]);
            if let Some(d) = delimiter {
                query.push(("delimiter".into(), d.into()));
            }
            if let Some(t) = &token {
                query.push(("continuation-token".into(), t.clone()));
            }
            query.sort();
            let r = self
                .send("s3", "GET", &format!("/{bucket}"), &query, Vec::new(), None)
                .await?
                .ok(&format!("list bucket {bucket}"))?;
            for c in tag_values(&r.body, "Contents") {
                let key = tag_values(c, "Key").first().map(|k| xml_unescape(k));
                let size = tag_values(c, "Size")
                    .first()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if let Some(k) = key {
                    out.objects.push((k, size));
                }
            }
            for c in tag_values(&r.body, "CommonPrefixes") {
                if let Some(p) = tag_values(c, "Prefix").first() {
                    out.prefixes.push(xml_unescape(p));
                }
            }
            let truncated = tag_values(&r.body, "IsTruncated").first() == Some(&"true");
            token = tag_values(&r.body, "NextContinuationToken")
                .first()
                .map(|t| xml_unescape(t));
            if !truncated || token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The object's body to stream, `None` if there is no such object.
    pub async fn get_stream(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<reqwest::Response>, ProvisionError> {
        let r = self
            .request(
                "s3",
                "GET",
                &format!("/{bucket}/{key}"),
                &[],
                Vec::new(),
                None,
            )
            .await?;
        match r.status().as_u16() {
            200 => Ok(Some(r)),
            404 => Ok(None),
            status => {
                let body = r.text().await.unwrap_or_default();
                Reply { status, body }
                    .ok(&format!("get {bucket}/{key}"))
                    .map(|_| None)
            }
        }
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), ProvisionError> {
        self.send(
            "s3",
            "DELETE",
            &format!("/{bucket}/{key}"),
            &[],
            Vec::new(),
            None,
        )
        .await?
        .ok(&format!("delete {bucket}/{key}"))?;
        Ok(())
    }
}

/// An object being written: bytes go in with [`Upload::write`], [`Upload::finish`] makes it
/// visible, [`Upload::abort`] (or a failed finish) leaves nothing.
pub struct Upload<'c> {
    client: &'c Client,
    bucket: String,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<(u32, String)>,
    sha: Sha256,
    bytes: u64,
}

impl<'c> Upload<'c> {
    pub fn new(client: &'c Client, bucket: &str, key: &str) -> Upload<'c> {
        Upload {
            client,
            bucket: bucket.into(),
            key: key.into(),
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            sha: Sha256::new(),
            bytes: 0,
        }
    }

    fn path(&self) -> String {
        format!("/{}/{}", self.bucket, self.key)
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), ProvisionError> {
        self.sha.update(data);
        self.bytes += data.len() as u64;
        self.buf.extend_from_slice(data);
        while self.buf.len() >= PART_BYTES {
            let rest = self.buf.split_off(PART_BYTES);
            let part = std::mem::replace(&mut self.buf, rest);
            self.part(part).await?;
        }
        Ok(())
    }

    async fn part(&mut self, body: Vec<u8>) -> Result<(), ProvisionError> {
        let what = format!("upload {}/{}", self.bucket, self.key);
        if self.upload_id.is_none() {
            let r = self
                .client
                .send(
                    "s3",
                    "POST",
                    &self.path(),
                    &q(&[("uploads", "")]),
                    Vec::new(),
                    None,
                )
                .await?
                .ok(&what)?;
            let id = tag_values(&r.body, "UploadId")
                .first()
                .map(|i| xml_unescape(i))
                .ok_or_else(|| ProvisionError::Api {
                    what: what.clone(),
                    error: "no UploadId in the answer to CreateMultipartUpload".into(),
                })?;
            self.upload_id = Some(id);
        }
        let n = self.parts.len() as u32 + 1;
        let number = n.to_string();
        let id = self.upload_id.clone().unwrap_or_default();
        let r = self
            .client
            .request(
                "s3",
                "PUT",
                &self.path(),
                &q(&[("partNumber", &number), ("uploadId", &id)]),
                body,
                None,
            )
            .await?;
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = r.text().await.unwrap_or_default();
        Reply { status, body }.ok(&format!("{what} (part {n})"))?;
        let etag = etag.ok_or_else(|| ProvisionError::Api {
            what: format!("{what} (part {n})"),
            error: "no ETag in the answer to UploadPart".into(),
        })?;
        self.parts.push((n, etag));
        Ok(())
    }

    /// Makes the object visible; returns its size and SHA-256 (hex). On an error the
    /// multipart upload is aborted.
    pub async fn finish(mut self) -> Result<(u64, String), ProvisionError> {
        let sha = hex::encode(self.sha.clone().finalize());
        let bytes = self.bytes;
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buf);
            self.client
                .send("s3", "PUT", &self.path(), &[], body, None)
                .await?
                .ok(&format!("upload {}/{}", self.bucket, self.key))?;
            return Ok((bytes, sha));
        }
        let done = async {
            if !self.buf.is_empty() {
                let last = std::mem::take(&mut self.buf);
                self.part(last).await?;
            }
            let mut xml = String::from("<CompleteMultipartUpload>");
            for (n, etag) in &self.parts {
                xml.push_str(&format!(
                    "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
                    etag.replace('&', "&amp;").replace('"', "&quot;")
                ));
            }
            xml.push_str("</CompleteMultipartUpload>");
            let id = self.upload_id.clone().unwrap_or_default();
            let r = self
                .client
                .send(
                    "s3",
                    "POST",
                    &self.path(),
                    &q(&[("uploadId", &id)]),
                    xml.into_bytes(),
                    Some("application/xml"),
                )
                .await?
                .ok(&format!("complete upload {}/{}", self.bucket, self.key))?;
            // S3 may answer 200 with an error inside.
            if let Some(code) = r.code() {
                return Err(ProvisionError::Api {
                    what: format!("complete upload {}/{}", self.bucket, self.key),
                    error: code.to_string(),
                });
            }
            Ok(())
        }
        .await;
        match done {
            Ok(()) => Ok((bytes, sha)),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    /// Drops what was uploaded (best effort: an abandoned upload is invisible either way, and
    /// stores expire them).
    pub async fn abort(self) {
        if let Some(id) = &self.upload_id {
            let _ = self
                .client
                .send(
                    "s3",
                    "DELETE",
                    &self.path(),
                    &q(&[("uploadId", id)]),
                    Vec::new(),
                    None,
                )
                .await;
        }
    }
}
