//! What the HTTP backends (S3, Azure, GCS) share: retry and timeout settings,
//! and error text that cannot carry a credential.

use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use store_core::{Error, ErrorKind};

use crate::uri::redact;

/// Retries and timeouts of an HTTP backend.
///
/// Transient failures (HTTP 429 and 5xx, connection resets, timeouts) are
/// retried with exponential backoff and jitter; permanent ones (400, 403, 404,
/// bad credentials) are not.
///
/// The defaults bound a call against a server that stops answering: an
/// attempt that hears nothing for [`read_timeout`](Self::read_timeout) (60 s)
/// fails; one retry starts, since it is within
/// [`retry_timeout`](Self::retry_timeout) (90 s) of the first attempt, and
/// fails the same way; no further retry starts. That is about 2 minutes, and
/// at most 90 s + 15 s of backoff + 60 s = 165 s when the server falls silent
/// just before the retry timeout. The one retry is worth its minute: a
/// connection that went silent (dropped by a load balancer or NAT) is the
/// usual cause, and the retry's new connection cures it.
///
/// The one limit on data in motion is the read timeout's first phase, which
/// (as reqwest times it) runs from the start of a request until the response
/// begins, so it covers sending the request body. Our largest request body is
/// one part, 8 MiB, and a streamed write keeps up to 4 parts in flight: 32 MiB
/// share the link within 60 s, which needs about 4.5 Mbit/s of upload. A
/// response body only has to keep arriving: the read timeout restarts with
/// every read, and the [`request_timeout`](Self::request_timeout) of 300 s
/// takes at most 16 MiB per request (a whole object of up to two parts, or a
/// part-sized range with 4 in flight beside the first part: 40 MiB on the
/// link), about 1.1 Mbit/s. Slower links should raise `read_timeout` and
/// `request_timeout`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// How many times one request is retried (0: never). Default 5.
    pub max_retries: usize,
    /// First backoff; each retry waits up to twice as long, with jitter. Default 100 ms.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts. Default 15 s.
    pub max_backoff: Duration,
    /// No retry starts after this long since the first attempt. Default 90 s.
    pub retry_timeout: Duration,
    /// Time allowed to open a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Time allowed from the start of a request until its response begins
    /// (the request body is sent meanwhile), and then between two reads of
    /// the response body. Default 60 s.
    pub read_timeout: Duration,
    /// Time allowed for one whole request, body included. Default 5 min.
    pub request_timeout: Duration,
    /// Allow plain `http://` endpoints (emulators, local test servers). Off by default.
    pub allow_http: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            retry_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            allow_http: false,
        }
    }
}

impl ClientConfig {
    pub(crate) fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig { init_backoff: self.initial_backoff, max_backoff: self.max_backoff, base: 2.0 },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }

    pub(crate) fn options(&self) -> ClientOptions {
        ClientOptions::new()
            .with_allow_http(self.allow_http)
            .with_connect_timeout(self.connect_timeout)
            .with_read_timeout(self.read_timeout)
            .with_timeout(self.request_timeout)
    }
}

/// `builder` with the settings object_store's `from_env` takes from the
/// `prefix`ed environment variables, except those `is_credential` picks: for a
/// backend given a credential explicitly, which then replaces the
/// environment's credentials whole. Taken one by one, an environment credential
/// could outrank the explicit one (an Azure bearer token outranks a key), or
/// join it (an AWS session token next to a key given in code).
pub(crate) fn without_env_credentials<B, K: std::str::FromStr>(
    mut builder: B,
    prefix: &str,
    set: impl Fn(B, K, String) -> B,
    is_credential: impl Fn(&K) -> bool,
) -> B {
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else { continue };
        if let (true, Ok(key)) = (name.starts_with(prefix), name.to_ascii_lowercase().parse::<K>())
            && !is_credential(&key)
        {
            builder = set(builder, key, value.to_owned());
        }
    }
    builder
}

/// A backend-construction error (bad option, missing bucket, ...), credential-free.
pub(crate) fn config_error(backend: &str, err: object_store::Error) -> Error {
    Error::new(ErrorKind::Other, format!("cannot configure the {backend} backend: {}", redact(&err.to_string())))
}

/// The kind of a request that failed after retries: connection failures,
/// timeouts, throttling and server errors are transient; auth failures are
/// permission errors. object_store keeps its retry error private, so the
/// status is read from the error text it always writes (`status code: 503`,
/// and `error response` for an S3 success whose body reports an error); the
/// tests below fail if that text changes.
pub(crate) fn classify(err: &object_store::Error) -> Option<ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(current) = source {
        if current.downcast_ref::<object_store::client::HttpError>().is_some() {
            return Some(ErrorKind::Unavailable);
        }
        source = current.source();
    }
    let text = err.to_string();
    if text.contains("Server returned error response") {
        // S3 answered 200 with InternalError or SlowDown in the body, as a 5xx, and the retries ran out.
        return Some(ErrorKind::Unavailable);
    }
    let (_, after) = text.split_once("status code: ")?;
    match after.get(..3)?.parse::<u16>().ok()? {
        408 | 429 | 500..=599 => Some(ErrorKind::Unavailable),
        // Azure: another writer of the same blob committed its block list first, which discards this upload's
        // uncommitted blocks. Nothing was stored; the write may be made again.
        400 if after.contains("InvalidBlockList") => Some(ErrorKind::Unavailable),
        401 | 403 => Some(ErrorKind::PermissionDenied),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::ClientConfig;

    /// The numbers README.md, docs/dagster.md and the Python signatures state.
    #[test]
    fn the_defaults_bound_a_silent_server_to_about_two_minutes() {
        let config = ClientConfig::default();
        let seconds = |d: Duration| d.as_secs_f64();
        assert_eq!((config.max_retries, seconds(config.connect_timeout), seconds(config.read_timeout)), (5, 5.0, 60.0));
        assert_eq!((seconds(config.request_timeout), seconds(config.retry_timeout)), (300.0, 90.0));
        assert_eq!((seconds(config.initial_backoff), seconds(config.max_backoff)), (0.1, 15.0));
        // One retry after a silent attempt starts, a second does not; the worst case stated above.
        let attempt = seconds(config.read_timeout);
        assert!(attempt < seconds(config.retry_timeout) && 2.0 * attempt > seconds(config.retry_timeout));
        let worst = seconds(config.retry_timeout) + seconds(config.max_backoff) + attempt;
        assert_eq!(worst, 165.0);
    }
}

/// Real object_store clients against a tiny local HTTP server that answers as told.
#[cfg(all(test, any(feature = "azure", feature = "s3", feature = "gcs")))]
mod answers {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};

    use store_core::{Backend, BackendExt};

    use super::*;

    /// An answer: status line, extra header lines, body.
    type Answer = (&'static str, &'static str, &'static str);

    /// An HTTP server on a free local port that answers every request with `status` and `body`.
    #[cfg(any(feature = "azure", feature = "s3"))]
    fn serve(status: &'static str, body: &'static str) -> u16 {
        serve_by(move |_| (status, "", body))
    }

    /// An HTTP server on a free local port that answers each request as `route` says for its request line.
    fn serve_by(route: impl Fn(&str) -> Answer + Send + Sync + Copy + 'static) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer(stream, route));
            }
        });
        port
    }

    fn answer(stream: TcpStream, route: impl Fn(&str) -> Answer) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let (mut request, mut line, mut length) = (String::new(), String::new(), 0);
            while line != "\r\n" {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if request.is_empty() {
                    request.clone_from(&line);
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut request_body = vec![0; length];
            if reader.read_exact(&mut request_body).is_err() {
                return;
            }
            let (status, headers, body) = route(&request);
            let response = format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len());
            if (&stream).write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    }

    /// A multipart upload whose completion finds the upload gone, as a retry does after the first
    /// completion succeeded unanswered: S3 (object_store's `NotFound`) and GCS (its text) alike.
    #[cfg(all(feature = "s3", feature = "gcs"))]
    #[tokio::test]
    async fn a_completion_that_finds_its_upload_gone_is_unavailable() {
        let route = |request: &str| -> Answer {
            let created = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>\
                           <UploadId>u1</UploadId></InitiateMultipartUploadResult>";
            match request.split(' ').nth(1).unwrap_or_default() {
                target if target.contains("uploads") => ("200 OK", "", created),
                target if target.contains("partNumber") => ("200 OK", "ETag: \"part\"\r\n", ""),
                _ => ("404 Not Found", "", "<Error><Code>NoSuchUpload</Code></Error>"),
            }
        };
        let s3 = crate::S3Backend::new(crate::S3Config {
            bucket: "b".into(),
            endpoint: Some(format!("http://127.0.0.1:{}", serve_by(route))),
            region: Some("us-east-1".into()),
            access_key_id: Some("key".into()),
            secret_access_key: Some("secret".into()),
            client: no_retries(),
            ..crate::S3Config::default()
        })
        .unwrap();
        let gcs = crate::GcsBackend::new(crate::GcsConfig {
            bucket: "b".into(),
            base_url: Some(format!("http://127.0.0.1:{}", serve_by(route))),
            anonymous: true,
            client: no_retries(),
            ..crate::GcsConfig::default()
        })
        .unwrap();
        let backends: [&dyn Backend; 2] = [&s3, &gcs];
        for backend in backends {
            let parts = (0..10).map(|_| Ok(bytes::Bytes::from(vec![7u8; 1 << 20])));
            let data = futures::StreamExt::boxed(futures::stream::iter(parts));
            let path = "large.bin".parse().unwrap();
            let err = backend.write_stream(&path, data, store_core::WriteMode::Overwrite).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{}: {err}", backend.kind());
            assert!(err.to_string().contains("the object holds this write or the one before it"), "{err}");
        }
    }

    fn no_retries() -> ClientConfig {
        ClientConfig { max_retries: 0, allow_http: true, ..ClientConfig::default() }
    }

    /// What a write to a server that answers `status` and `body` fails with, retries off.
    #[cfg(feature = "azure")]
    async fn write_error(status: &'static str, body: &'static str) -> store_core::Error {
        let port = serve(status, body);
        let account = "devstoreaccount1";
        let backend = crate::AzureBackend::new(crate::AzureConfig {
            container: "c".into(),
            account_name: Some(account.into()),
            // Azurite's published development key: any well-formed key does.
            account_key: Some(
                "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==".into(),
            ),
            account_url: Some(format!("http://127.0.0.1:{port}/{account}")),
            client: no_retries(),
            ..crate::AzureConfig::default()
        })
        .unwrap();
        backend.write(&"x.bin".parse().unwrap(), "data".into(), store_core::WriteMode::Overwrite).await.unwrap_err()
    }

    #[cfg(feature = "azure")]
    #[tokio::test]
    async fn failed_requests_are_classified_from_object_stores_error_text() {
        let cases = [
            ("503 Service Unavailable", "<Error><Code>ServerBusy</Code></Error>", ErrorKind::Unavailable),
            ("500 Internal Server Error", "", ErrorKind::Unavailable),
            ("429 Too Many Requests", "", ErrorKind::Unavailable),
            ("408 Request Timeout", "", ErrorKind::Unavailable),
            ("400 Bad Request", "<Error><Code>InvalidBlockList</Code></Error>", ErrorKind::Unavailable),
            ("400 Bad Request", "<Error><Code>InvalidHeaderValue</Code></Error>", ErrorKind::Other),
            ("403 Forbidden", "<Error><Code>AuthenticationFailed</Code></Error>", ErrorKind::PermissionDenied),
        ];
        for (status, body, kind) in cases {
            let err = write_error(status, body).await;
            assert_eq!(err.kind(), kind, "{status} {body}: {err}");
            // The text `classify` reads.
            assert!(err.to_string().contains(&format!("status code: {}", &status[..3])), "{err}");
        }
    }

    /// S3 may answer a copy 200 with an error in the body, which object_store retries as a 5xx.
    #[cfg(feature = "s3")]
    #[tokio::test]
    async fn an_s3_success_reporting_an_internal_error_is_unavailable() {
        let port = serve("200 OK", "<Error><Code>InternalError</Code></Error>");
        let backend = crate::S3Backend::new(crate::S3Config {
            bucket: "b".into(),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            region: Some("us-east-1".into()),
            access_key_id: Some("key".into()),
            secret_access_key: Some("secret".into()),
            client: no_retries(),
            ..crate::S3Config::default()
        })
        .unwrap();
        let err = backend.copy(&"a".parse().unwrap(), &"b".parse().unwrap(), true).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("Server returned error response"), "{err}");
    }
}
