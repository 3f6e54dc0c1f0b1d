//! Multipart uploads that were started and never completed: what a writer
//! killed in the middle of a large write leaves on S3 (or on GCS through its
//! XML API, which has the same calls). They are invisible to listings and
//! cost storage until they are aborted. object_store aborts an upload by id
//! (`MultipartStore::abort_multipart`) but does not list them, so the
//! listing (`ListMultipartUploads`) is signed and sent here.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use serde::Deserialize;
use store_core::{Leftover, Result, StorePath};

use crate::cloud::ClientConfig;
use crate::error::{ObjectStoreError, UploadsError};
use crate::object_store_backend::Staging;

/// How a listing request proves who sends it.
pub(crate) enum Signer {
    /// AWS Signature Version 4, with the store's own credentials and region.
    #[cfg(feature = "s3")]
    AwsV4 { credentials: object_store::aws::AwsCredentialProvider, region: String },
    /// An OAuth bearer token from the store's own credentials.
    #[cfg(feature = "gcs")]
    Bearer(object_store::gcp::GcpCredentialProvider),
    /// Nothing (an emulator that takes anonymous requests).
    #[cfg(feature = "gcs")]
    Anonymous,
}

/// Lists a bucket's incomplete multipart uploads and aborts them.
pub(crate) struct Uploads {
    client: reqwest::Client,
    /// The bucket's URL, without a trailing `/`: `https://s3.eu-west-1.amazonaws.com/lake`.
    bucket_url: String,
    signer: Signer,
    aborter: Arc<dyn MultipartStore>,
}

impl Uploads {
    pub(crate) fn new(
        bucket_url: String,
        signer: Signer,
        aborter: Arc<dyn MultipartStore>,
        client: &ClientConfig,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(client.connect_timeout)
            .timeout(client.request_timeout)
            .build()
            .map_err(UploadsError::Client)?;
        Ok(Self { client, bucket_url: bucket_url.trim_end_matches('/').to_owned(), signer, aborter })
    }

    /// One page of uploads under `prefix`, after the markers of the page before.
    async fn page(&self, prefix: &str, after: Option<(&str, &str)>) -> Result<ListMultipartUploadsResult> {
        let mut query = vec![("prefix", prefix), ("uploads", "")];
        if let Some((key, upload_id)) = after {
            query.extend([("key-marker", key), ("upload-id-marker", upload_id)]);
        }
        query.sort_unstable();
        let query = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        let url = format!("{}?{query}", self.bucket_url);
        let request = self.sign(self.client.get(&url), &url, &query).await?;
        let unavailable = |e: reqwest::Error| UploadsError::Request(e.without_url());
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let body = response.text().await.map_err(unavailable)?;
        if !status.is_success() {
            return Err(UploadsError::Status(status).into());
        }
        Ok(quick_xml::de::from_str(&body).map_err(UploadsError::Unreadable)?)
    }

    async fn sign(&self, request: reqwest::RequestBuilder, url: &str, query: &str) -> Result<reqwest::RequestBuilder> {
        let denied = UploadsError::NoCredentials;
        Ok(match &self.signer {
            #[cfg(feature = "s3")]
            Signer::AwsV4 { credentials, region } => {
                let credential = credentials.get_credential().await.map_err(denied)?;
                let headers = sigv4::headers(url, query, region, &credential, SystemTime::now())?;
                headers.into_iter().fold(request, |request, (name, value)| request.header(name, value))
            }
            #[cfg(feature = "gcs")]
            Signer::Bearer(credentials) => {
                let _ = (url, query);
                let credential = credentials.get_credential().await.map_err(denied)?;
                request.bearer_auth(&credential.bearer)
            }
            #[cfg(feature = "gcs")]
            Signer::Anonymous => {
                let _ = (url, query, denied);
                request
            }
        })
    }
}

#[async_trait]
impl Staging for Uploads {
    async fn leftovers(&self, prefix: Option<&StorePath>) -> Result<Vec<Leftover>> {
        // A prefix is a folder: `a` must not match `ab/...`.
        let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
        let mut found = Vec::new();
        let mut after: Option<(String, String)> = None;
        loop {
            let page = self.page(&prefix, after.as_ref().map(|(k, u)| (k.as_str(), u.as_str()))).await?;
            for upload in page.uploads {
                // Keys that are not valid store paths are not ours to clean.
                let Ok(path) = StorePath::parse(upload.key) else { continue };
                let started = upload.initiated.as_deref().and_then(parse_time);
                found.push(Leftover { path, started, id: upload.upload_id });
            }
            match (page.is_truncated, page.next_key_marker, page.next_upload_id_marker) {
                (true, Some(key), Some(upload_id)) => after = Some((key, upload_id)),
                _ => return Ok(found),
            }
        }
    }

    async fn remove(&self, leftover: &Leftover) -> Result<()> {
        let location = Path::parse(leftover.path.as_str()).map_err(ObjectStoreError::Path)?;
        match self.aborter.abort_multipart(&location, &leftover.id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(UploadsError::Abort(e).into()),
        }
    }
}

/// The parts of a `ListMultipartUploadsResult` we read. `Bucket` and
/// `IsTruncated` are required, so that a server that answers the request
/// with something else (an object listing) is an error, not "no uploads".
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(rename = "Bucket")]
    _bucket: String,
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    #[serde(default, rename = "Upload")]
    uploads: Vec<Upload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
    initiated: Option<String>,
}

/// An RFC 3339 time (`2026-12-04T18:00:00.000Z`).
fn parse_time(text: &str) -> Option<SystemTime> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    let seconds = u64::try_from(time.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, time.timestamp_subsec_nanos()))
}

/// URI encoding as SigV4 and the XML APIs want it: everything but `A-Za-z0-9-_.~` escaped.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// AWS Signature Version 4 for one GET without a body.
#[cfg(feature = "s3")]
mod sigv4 {
    use std::time::SystemTime;

    use crate::error::UploadsError;
    use aws_lc_rs::{digest, hmac};
    use object_store::aws::AwsCredential;
    use store_core::Result;

    /// SHA-256 of an empty body.
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// The headers that sign `GET url` (whose canonical query string is `query`) at `now`.
    pub(super) fn headers(
        url: &str,
        query: &str,
        region: &str,
        credential: &AwsCredential,
        now: SystemTime,
    ) -> Result<Vec<(&'static str, String)>> {
        let parsed = reqwest::Url::parse(url).map_err(|e| UploadsError::BadUrl(e.to_string()))?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(UploadsError::NoHost.into()),
        };
        let time = chrono::DateTime::<chrono::Utc>::from(now);
        let (date, stamp) = (time.format("%Y%m%d").to_string(), time.format("%Y%m%dT%H%M%SZ").to_string());
        let mut headers =
            vec![("host", host), ("x-amz-content-sha256", EMPTY_SHA256.to_owned()), ("x-amz-date", stamp)];
        if let Some(token) = &credential.token {
            headers.push(("x-amz-security-token", token.clone()));
        }
        let signed = headers.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(";");
        let canonical_headers: String =
            headers.iter().map(|(name, value)| format!("{name}:{}\n", value.trim())).collect();
        let canonical = format!("GET\n{}\n{query}\n{canonical_headers}\n{signed}\n{EMPTY_SHA256}", parsed.path());
        let scope = format!("{date}/{region}/s3/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            headers[2].1,
            hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
        );
        let key = [date.as_str(), region, "s3", "aws4_request"]
            .iter()
            .fold(format!("AWS4{}", credential.secret_key).into_bytes(), |key, part| {
                hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes()).as_ref().to_vec()
            });
        let signature = hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), to_sign.as_bytes()).as_ref());
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            credential.key_id
        );
        headers.retain(|(name, _)| *name != "host");
        headers.push(("authorization", authorization));
        Ok(headers)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[cfg(test)]
    mod tests {
        use std::time::{Duration, SystemTime};

        use super::*;

        /// The example of AWS's documentation for a presigned-style GET, here as headers:
        /// "GET Bucket (List Objects)" with `max-keys=2&prefix=J`, 2013-05-24.
        #[test]
        fn signs_as_aws_documents() {
            let credential = AwsCredential {
                key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                token: None,
            };
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
            let headers = headers(
                "https://examplebucket.s3.amazonaws.com/",
                "max-keys=2&prefix=J",
                "us-east-1",
                &credential,
                now,
            )
            .unwrap();
            let authorization = &headers.iter().find(|(name, _)| *name == "authorization").unwrap().1;
            assert_eq!(
                authorization,
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
                 Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            );
        }
    }
}
