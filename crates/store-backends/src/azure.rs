//! Azure Blob Storage.

use std::fmt;

use object_store::azure::{AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
use store_core::{Error, ErrorKind, Result, Secret};

use crate::ObjectStoreBackend;
use crate::cloud::{ClientConfig, config_error, without_env_credentials};
use crate::uri::{bare_url, redact_url};

/// Where an [`AzureBackend`] stores and how it authenticates.
///
/// Give an account key, a SAS token, or a connection string (whose
/// `AccountName`, `AccountKey`, `BlobEndpoint` and `SharedAccessSignature`
/// fill the options left unset). Unset options fall back to the environment
/// (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, ...) and then to
/// managed identity, as Azure's SDKs do; given a key or SAS token, the
/// environment's credentials are not read at all. `Debug` never shows a
/// secret, nor a user or query string (a SAS) in the account URL.
#[derive(Clone, Default)]
pub struct AzureConfig {
    /// Container name.
    pub container: String,
    /// Storage account name.
    pub account_name: Option<String>,
    /// Storage account key.
    pub account_key: Option<Secret>,
    /// Shared access signature, as the query string the portal gives (`sv=...&sig=...`).
    pub sas_token: Option<Secret>,
    /// A connection string, `AccountName=...;AccountKey=...;BlobEndpoint=...`.
    pub connection_string: Option<Secret>,
    /// Blob endpoint including the account, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    pub account_url: Option<String>,
    /// Retries, timeouts and plain-HTTP permission.
    pub client: ClientConfig,
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureConfig")
            .field("container", &self.container)
            .field("account_name", &self.account_name)
            .field("account_key", &self.account_key)
            .field("sas_token", &self.sas_token)
            .field("connection_string", &self.connection_string)
            .field("account_url", &self.account_url.as_deref().map(redact_url))
            .field("client", &self.client)
            .finish()
    }
}

/// Objects in an Azure Blob Storage container. URIs are the blobs' URLs,
/// `https://<account>.blob.core.windows.net/<container>/<blob>` (under `account_url` where
/// one is given), as the Azure portal, `az storage` and azcopy show and take them;
/// unlike `az://<container>/<blob>`, they name the account.
///
/// Conditional writes ([`WriteMode::IfMatch`](store_core::WriteMode::IfMatch))
/// send the e-tag read as `If-Match`, in one PUT.
///
/// ```no_run
/// # fn main() -> store_core::Result<()> {
/// use store_backends::{AzureBackend, AzureConfig};
/// let backend = AzureBackend::new(AzureConfig {
///     container: "pipelines".into(),
///     account_name: Some("mystorage".into()),
///     account_key: std::env::var("STORAGE_KEY").ok().map(Into::into),
///     ..Default::default()
/// })?;
/// # Ok(()) }
/// ```
pub type AzureBackend = ObjectStoreBackend<MicrosoftAzure>;

impl ObjectStoreBackend<MicrosoftAzure> {
    /// A backend for `config.container`; fails on invalid options, without network access.
    pub fn new(mut config: AzureConfig) -> Result<Self> {
        if let Some(connection_string) = config.connection_string.take() {
            apply_connection_string(&mut config, connection_string.expose())?;
        }
        let builder = if config.account_key.is_some() || config.sas_token.is_some() {
            // What names the account and endpoint, not who signs.
            let is_credential = |key: &AzureConfigKey| {
                !matches!(
                    key,
                    AzureConfigKey::AccountName
                        | AzureConfigKey::Endpoint
                        | AzureConfigKey::ContainerName
                        | AzureConfigKey::UseFabricEndpoint
                        | AzureConfigKey::DisableTagging
                        | AzureConfigKey::Client(_)
                )
            };
            without_env_credentials(
                MicrosoftAzureBuilder::new(),
                "AZURE_",
                MicrosoftAzureBuilder::with_config,
                is_credential,
            )
        } else {
            MicrosoftAzureBuilder::from_env()
        };
        let mut builder = builder
            .with_container_name(&config.container)
            .with_allow_http(config.client.allow_http)
            .with_retry(config.client.retry())
            .with_client_options(config.client.options());
        if let Some(account) = config.account_name {
            builder = builder.with_account(account);
        }
        if let Some(key) = config.account_key {
            builder = builder.with_access_key(key.into_exposed());
        }
        if let Some(url) = config.account_url {
            builder = builder.with_endpoint(url);
        }
        if let Some(sas) = config.sas_token {
            builder = builder.with_sas_authorization(sas_pairs(sas.expose())?);
        }
        let url = container_url(&builder, &config.container);
        let store = builder.build().map_err(|e| config_error("azure", e))?;
        let container = format!("the container {:?}", config.container);
        Ok(Self::from_store(store, "azure", url).in_container(container).signing())
    }
}

/// The URL of `container` as object_store addresses it once `builder` is built: under the
/// configured endpoint, the emulator's, or `https://<account>.blob.core.windows.net`
/// (`.blob.fabric.microsoft.com` for Fabric); never with a user or query string, where a
/// SAS could travel.
fn container_url(builder: &MicrosoftAzureBuilder, container: &str) -> String {
    let value = |key| builder.get_config_value(&key);
    let flag =
        |key| value(key).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes" | "y"));
    let account = value(AzureConfigKey::AccountName);
    let account_url = if flag(AzureConfigKey::UseEmulator) {
        let emulator = std::env::var("AZURITE_BLOB_STORAGE_URL").unwrap_or_else(|_| "http://127.0.0.1:10000".into());
        format!("{}/{}", emulator.trim_end_matches('/'), account.as_deref().unwrap_or("devstoreaccount1"))
    } else if let Some(endpoint) = value(AzureConfigKey::Endpoint) {
        endpoint
    } else {
        let domain =
            if flag(AzureConfigKey::UseFabricEndpoint) { "blob.fabric.microsoft.com" } else { "blob.core.windows.net" };
        format!("https://{}.{domain}", account.unwrap_or_default())
    };
    format!("{}/{container}", bare_url(&account_url))
}

/// Fills the options a connection string sets and the config leaves unset.
fn apply_connection_string(config: &mut AzureConfig, connection_string: &str) -> Result<()> {
    for part in connection_string.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            // Never echo the part: it may be a key.
            return Err(Error::new(ErrorKind::Other, "malformed Azure connection string: expected Key=Value parts"));
        };
        match key {
            "AccountName" => fill(&mut config.account_name, value),
            "AccountKey" => fill(&mut config.account_key, value),
            "BlobEndpoint" => fill(&mut config.account_url, value),
            "SharedAccessSignature" => fill(&mut config.sas_token, value),
            _ => {}
        }
    }
    Ok(())
}

/// Sets `slot` to `value` unless it is set.
fn fill<T: for<'a> From<&'a str>>(slot: &mut Option<T>, value: &str) {
    slot.get_or_insert_with(|| value.into());
}

/// A SAS query string as decoded key/value pairs (object_store encodes them again).
fn sas_pairs(sas: &str) -> Result<Vec<(String, String)>> {
    let malformed = || Error::new(ErrorKind::Other, "malformed SAS token: expected key=value pairs joined by '&'");
    sas.trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(malformed)?;
            Ok((percent_decode(key).ok_or_else(malformed)?, percent_decode(value).ok_or_else(malformed)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_fill_unset_options() {
        let mut config = AzureConfig { account_name: Some("explicit".into()), ..Default::default() };
        apply_connection_string(
            &mut config,
            "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/dev;",
        )
        .unwrap();
        assert_eq!(config.account_name.as_deref(), Some("explicit"));
        assert_eq!(config.account_key.as_ref().map(Secret::expose), Some("a2V5"));
        assert_eq!(config.account_url.as_deref(), Some("http://127.0.0.1:10000/dev"));
        let err = apply_connection_string(&mut config, "AccountKey").unwrap_err();
        assert!(!err.to_string().contains("AccountKey"), "{err}");
    }

    #[test]
    fn sas_tokens_are_decoded_pairs_and_errors_hide_them() {
        let pairs = sas_pairs("?sv=2022-11-02&sig=a%2Bb%3D&se=2026-01-01T00%3A00Z").unwrap();
        assert_eq!(pairs[1], ("sig".into(), "a+b=".into()));
        assert_eq!(pairs[2].1, "2026-01-01T00:00Z");
        let err = sas_pairs("sig=SECRET%ZZ").unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn uris_are_blob_urls_without_credentials() {
        use store_core::Backend;
        let uri = |config: AzureConfig| AzureBackend::new(config).unwrap().uri(&"a b/c.pkl".parse().unwrap());
        // The account key is "SECRET" in base64, as Azure gives keys.
        let config = || AzureConfig {
            container: "lake".into(),
            account_name: Some("acct".into()),
            account_key: Some("U0VDUkVU".into()),
            ..Default::default()
        };
        let azurite = AzureConfig {
            account_url: Some("http://user:URL-SECRET@127.0.0.1:10000/devstoreaccount1/?sv=1&sig=URL-SECRET".into()),
            ..config()
        };
        let sas = AzureConfig { account_key: None, sas_token: Some("sv=1&sig=SAS-SECRET".into()), ..config() };
        let connection_string = AzureConfig {
            account_name: None,
            account_key: None,
            connection_string: Some(
                "AccountName=other;AccountKey=U0VDUkVU;BlobEndpoint=https://other.blob.core.windows.net/".into(),
            ),
            ..config()
        };
        let cases = [
            (config(), "https://acct.blob.core.windows.net/lake/a%20b/c.pkl"),
            (azurite, "http://127.0.0.1:10000/devstoreaccount1/lake/a%20b/c.pkl"),
            (sas, "https://acct.blob.core.windows.net/lake/a%20b/c.pkl"),
            (connection_string, "https://other.blob.core.windows.net/lake/a%20b/c.pkl"),
        ];
        for (config, expected) in cases {
            let uri = uri(config);
            assert_eq!(uri, expected);
            assert!(!uri.contains("SECRET") && !uri.contains("U0VDUkVU"), "{uri}");
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let config = AzureConfig {
            container: "c".into(),
            account_key: Some("KEY-SECRET".into()),
            sas_token: Some("sig=SAS-SECRET".into()),
            connection_string: Some("AccountKey=CS-SECRET".into()),
            account_url: Some("https://acct.blob.core.windows.net/?sv=1&sig=URL-SECRET".into()),
            ..Default::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains(r#"account_url: Some("https://acct.blob.core.windows.net/?<redacted>")"#), "{debug}");
    }
}
