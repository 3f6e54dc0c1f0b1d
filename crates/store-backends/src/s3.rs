//! Amazon S3 and S3-compatible stores (MinIO, Ceph, R2, moto, ...).

use std::fmt;
use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3CopyIfNotExists};
use store_core::{Result, Secret};

use crate::ObjectStoreBackend;
use crate::cloud::{ClientConfig, config_error, without_env_credentials};
use crate::uploads::{Signer, Uploads};
use crate::uri::redact_url;

/// Where an [`S3Backend`] stores and how it authenticates.
///
/// Unset options fall back to the usual environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...)
/// and then to instance or container credentials, as the AWS SDKs do. Given
/// a key, secret or token, the environment's credentials are not read at all.
/// `Debug` never shows the secret key, the session token, or a user or query
/// string in the endpoint.
#[derive(Clone, Default)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000` (needs `client.allow_http` for http).
    pub endpoint: Option<String>,
    /// Region, e.g. `eu-west-1`.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// Address buckets as `bucket.host` rather than `host/bucket`.
    pub virtual_hosted_style: bool,
    /// Retries, timeouts and plain-HTTP permission.
    pub client: ClientConfig,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("client", &self.client)
            .finish()
    }
}

/// Objects in an S3 bucket. URIs are `s3://bucket/key`.
///
/// Overwrites are atomic (S3 replaces whole objects); create-only writes and
/// copies use S3's conditional requests, so exactly one racing creator wins.
/// Conditional writes ([`WriteMode::IfMatch`](store_core::WriteMode::IfMatch))
/// send the e-tag read as `If-Match`, in one PUT.
///
/// ```no_run
/// # fn main() -> store_core::Result<()> {
/// use store_backends::{S3Backend, S3Config};
/// let backend = S3Backend::new(S3Config {
///     bucket: "pipelines".into(),
///     region: Some("eu-west-1".into()),
///     ..Default::default()
/// })?;
/// let store = store_core::Store::new(backend);
/// assert_eq!(store.uri(&"a/b.pkl".parse()?), "s3://pipelines/a/b.pkl");
/// # Ok(()) }
/// ```
pub type S3Backend = ObjectStoreBackend<AmazonS3>;

impl ObjectStoreBackend<AmazonS3> {
    /// A backend for `config.bucket`; fails on invalid options, without network access.
    pub fn new(config: S3Config) -> Result<Self> {
        let explicit =
            config.access_key_id.is_some() || config.secret_access_key.is_some() || config.session_token.is_some();
        let builder = if explicit {
            use AmazonS3ConfigKey::{AccessKeyId, SecretAccessKey, Token};
            let is_credential = |key: &AmazonS3ConfigKey| matches!(key, AccessKeyId | SecretAccessKey | Token);
            without_env_credentials(AmazonS3Builder::new(), "AWS_", AmazonS3Builder::with_config, is_credential)
        } else {
            AmazonS3Builder::from_env()
        };
        let mut builder = builder
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_allow_http(config.client.allow_http)
            .with_retry(config.client.retry())
            .with_client_options(config.client.options())
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
        let settings = [
            (config.endpoint, AmazonS3Builder::with_endpoint as fn(AmazonS3Builder, String) -> AmazonS3Builder),
            (config.region, AmazonS3Builder::with_region),
            (config.access_key_id, AmazonS3Builder::with_access_key_id),
            (config.secret_access_key.map(Secret::into_exposed), AmazonS3Builder::with_secret_access_key),
            (config.session_token.map(Secret::into_exposed), AmazonS3Builder::with_token),
        ];
        for (value, set) in settings {
            if let Some(value) = value {
                builder = set(builder, value);
            }
        }
        let setting = |key| builder.get_config_value(&key).filter(|value| !value.is_empty());
        let region = setting(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".to_owned());
        let bucket_url = bucket_url(
            &config.bucket,
            setting(AmazonS3ConfigKey::Endpoint).as_deref(),
            &region,
            config.virtual_hosted_style,
        );
        let store = builder.build().map_err(|e| config_error("s3", e))?;
        let signer = Signer::AwsV4 { credentials: store.credentials().clone(), region };
        let uploads = Uploads::new(bucket_url, signer, Arc::new(store.clone()), &config.client)?;
        let container = format!("the bucket {:?}", config.bucket);
        Ok(Self::from_store(store, "s3", format!("s3://{}", config.bucket))
            .in_container(container)
            .with_staging(Arc::new(uploads))
            .signing())
    }
}

/// The bucket's URL as object_store addresses it: path-style
/// (`https://s3.eu-west-1.amazonaws.com/lake`) unless virtual-hosted
/// (`https://lake.s3.eu-west-1.amazonaws.com`).
fn bucket_url(bucket: &str, endpoint: Option<&str>, region: &str, virtual_hosted: bool) -> String {
    let endpoint = endpoint.map_or_else(|| format!("https://s3.{region}.amazonaws.com"), str::to_owned);
    let endpoint = endpoint.trim_end_matches('/');
    if !virtual_hosted {
        return format!("{endpoint}/{bucket}");
    }
    match endpoint.split_once("://") {
        Some((scheme, host)) if !host.starts_with(&format!("{bucket}.")) => format!("{scheme}://{bucket}.{host}"),
        _ => endpoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_follow_the_addressing_style() {
        assert_eq!(bucket_url("lake", None, "eu-west-1", false), "https://s3.eu-west-1.amazonaws.com/lake");
        assert_eq!(bucket_url("lake", None, "eu-west-1", true), "https://lake.s3.eu-west-1.amazonaws.com");
        assert_eq!(
            bucket_url("lake", Some("http://127.0.0.1:9000/"), "us-east-1", false),
            "http://127.0.0.1:9000/lake"
        );
        assert_eq!(bucket_url("lake", Some("https://lake.r2.dev"), "auto", true), "https://lake.r2.dev");
        assert_eq!(bucket_url("lake", Some("https://r2.dev"), "auto", true), "https://lake.r2.dev");
    }

    #[test]
    fn uris_name_the_bucket_and_no_credential() {
        use store_core::Backend;
        let backend = S3Backend::new(S3Config {
            bucket: "lake".into(),
            endpoint: Some("https://user:URL-SECRET@minio.example.com:9000/?token=URL-SECRET".into()),
            region: Some("eu-west-1".into()),
            access_key_id: Some("KEY-SECRET".into()),
            secret_access_key: Some("SECRET".into()),
            session_token: Some("TOKEN-SECRET".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(backend.uri(&"a b/c.pkl".parse().unwrap()), "s3://lake/a%20b/c.pkl");
    }

    #[tokio::test]
    #[allow(unsafe_code)] // setting the environment, which only this test reads
    async fn explicit_credentials_replace_the_environments_whole() {
        let credential = |config: S3Config| async {
            let backend = S3Backend::new(config).unwrap();
            let credential = backend.inner().credentials().get_credential().await.unwrap();
            (credential.key_id.clone(), credential.secret_key.clone(), credential.token.clone())
        };
        let config = || S3Config { bucket: "b".into(), region: Some("us-east-1".into()), ..Default::default() };
        // SAFETY: no other test of this binary reads these variables; std's
        // environment lock serialises this with every other lookup.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "ENV-KEY");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "ENV-SECRET");
            std::env::set_var("AWS_SESSION_TOKEN", "ENV-TOKEN");
        }
        let from_env = credential(config()).await;
        let explicit =
            S3Config { access_key_id: Some("KEY".into()), secret_access_key: Some("SECRET".into()), ..config() };
        let explicit = credential(explicit).await;
        // SAFETY: as above.
        unsafe {
            for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
                std::env::remove_var(name);
            }
        }
        assert_eq!(from_env, ("ENV-KEY".into(), "ENV-SECRET".into(), Some("ENV-TOKEN".into())));
        assert_eq!(explicit, ("KEY".into(), "SECRET".into(), None), "no session token of the environment's");
    }
}
