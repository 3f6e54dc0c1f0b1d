//! Google Cloud Storage.

use std::fmt;
use std::sync::Arc;

use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder, GoogleConfigKey};
use store_core::{Result, Secret};

use crate::ObjectStoreBackend;
use crate::cloud::{ClientConfig, config_error, without_env_credentials};
use crate::uploads::{Signer, Uploads};
use crate::uri::redact_url;

/// Where a [`GcsBackend`] stores and how it authenticates.
///
/// Without a service account, credentials come from the environment
/// (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`) or the
/// metadata server, as Google's SDKs do; with one, or `anonymous`, the
/// environment's service account is not read. `Debug` never shows the service account,
/// or a user or query string in the base URL.
#[derive(Clone, Default)]
pub struct GcsConfig {
    /// Bucket name.
    pub bucket: String,
    /// A service-account key: the path of its JSON file, or the JSON itself.
    pub service_account: Option<Secret>,
    /// API base URL of an emulator, e.g. `http://127.0.0.1:4443`.
    pub base_url: Option<String>,
    /// Send requests unsigned (emulators, public buckets). Off by default.
    pub anonymous: bool,
    /// Retries, timeouts and plain-HTTP permission.
    pub client: ClientConfig,
}

impl fmt::Debug for GcsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsConfig")
            .field("bucket", &self.bucket)
            .field("service_account", &self.service_account)
            .field("base_url", &self.base_url.as_deref().map(redact_url))
            .field("anonymous", &self.anonymous)
            .field("client", &self.client)
            .finish()
    }
}

/// Objects in a Google Cloud Storage bucket. URIs are `gs://bucket/key`.
///
/// Conditional writes ([`WriteMode::IfMatch`](store_core::WriteMode::IfMatch))
/// compare the object's generation (the version `read_for_update` returns) with
/// `x-goog-if-generation-match`, in one PUT.
///
/// ```no_run
/// # fn main() -> store_core::Result<()> {
/// use store_backends::{GcsBackend, GcsConfig};
/// let backend = GcsBackend::new(GcsConfig {
///     bucket: "pipelines".into(),
///     service_account: Some("/secrets/sa.json".into()),
///     ..Default::default()
/// })?;
/// # Ok(()) }
/// ```
pub type GcsBackend = ObjectStoreBackend<GoogleCloudStorage>;

impl ObjectStoreBackend<GoogleCloudStorage> {
    /// A backend for `config.bucket`; fails on invalid options, without network access.
    pub fn new(config: GcsConfig) -> Result<Self> {
        // Both set, object_store refuses to build: "service account path and key provided".
        let builder = if config.service_account.is_some() || config.anonymous {
            let is_credential = |key: &GoogleConfigKey| {
                matches!(key, GoogleConfigKey::ServiceAccount | GoogleConfigKey::ServiceAccountKey)
            };
            let set = GoogleCloudStorageBuilder::with_config;
            without_env_credentials(GoogleCloudStorageBuilder::new(), "GOOGLE_", set, is_credential)
        } else {
            GoogleCloudStorageBuilder::from_env()
        };
        let mut builder = builder
            .with_bucket_name(&config.bucket)
            .with_skip_signature(config.anonymous)
            .with_retry(config.client.retry())
            .with_client_options(config.client.options());
        if let Some(base_url) = &config.base_url {
            builder = builder.with_base_url(base_url);
        }
        builder = match config.service_account.map(Secret::into_exposed) {
            Some(json) if json.trim_start().starts_with('{') => builder.with_service_account_key(json),
            Some(path) => builder.with_service_account_path(path),
            // object_store asks a credential provider before writes even when
            // signing is skipped; a service account with OAuth disabled has none to ask.
            None if config.anonymous => {
                let base_url = config.base_url.as_deref().unwrap_or("https://storage.googleapis.com");
                let key = serde_json::json!({
                    "gcs_base_url": base_url, "disable_oauth": true,
                    "client_email": "", "private_key": "", "private_key_id": "",
                });
                builder.with_service_account_key(key.to_string())
            }
            None => builder,
        };
        let store = builder.build().map_err(|e| config_error("gcs", e))?;
        let signer = if config.anonymous { Signer::Anonymous } else { Signer::Bearer(store.credentials().clone()) };
        let base_url = config.base_url.as_deref().unwrap_or("https://storage.googleapis.com").trim_end_matches('/');
        let bucket_url = format!("{base_url}/{}", config.bucket);
        let uploads = Uploads::new(bucket_url, signer, Arc::new(store.clone()), &config.client)?;
        let container = format!("the bucket {:?}", config.bucket);
        Ok(Self::from_store(store, "gcs", format!("gs://{}", config.bucket))
            .in_container(container)
            .with_staging(Arc::new(uploads))
            .signing())
    }
}

#[cfg(test)]
mod tests {
    use store_core::Backend;

    use super::*;

    #[test]
    fn uris_name_the_bucket_and_no_credential() {
        let backend = GcsBackend::new(GcsConfig {
            bucket: "lake".into(),
            base_url: Some("http://user:URL-SECRET@127.0.0.1:4443/?token=URL-SECRET".into()),
            anonymous: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(backend.uri(&"a b/c.pkl".parse().unwrap()), "gs://lake/a%20b/c.pkl");
    }
}
