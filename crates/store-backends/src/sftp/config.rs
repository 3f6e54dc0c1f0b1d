//! What [`SftpBackend::connect`](super::SftpBackend::connect) needs to know: server, login, host key check,
//! base folder, timeouts, pool size and retries.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use store_core::Secret;

use crate::uri::uri_escape;

/// How to log in. Passwords, passphrases and key material are [`Secret`]s, which `Debug` never shows.
#[derive(Clone, Debug)]
pub enum SftpAuth {
    /// Password login.
    Password(Secret),
    /// Public-key login with a private key file on this machine (OpenSSH or PEM format).
    PrivateKey {
        /// The private key file; the public key is derived from it.
        path: PathBuf,
        /// The key's passphrase, if it is encrypted.
        passphrase: Option<Secret>,
    },
    /// Public-key login with a private key held in memory, e.g. from a secret store.
    PrivateKeyPem {
        /// The private key text (`-----BEGIN ... PRIVATE KEY-----` ...).
        pem: Secret,
        /// The key's passphrase, if it is encrypted.
        passphrase: Option<Secret>,
    },
}

/// How the server proves it is the server: checked on every connection, before logging in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SftpHostKey {
    /// The key must match an entry of this OpenSSH `known_hosts` file: `host` for port 22,
    /// `[host]:port` for other ports (hashed entries work). The default is `~/.ssh/known_hosts`.
    KnownHosts(PathBuf),
    /// The key must have this SHA-256 fingerprint, as `ssh-keygen -lf` prints it (`SHA256:` prefix optional).
    Fingerprint(String),
    /// Accept any key. Insecure: whoever can intercept the connection can read and change the data and
    /// capture the password. Only for throwaway test servers; never the default.
    AcceptAny,
}

impl Default for SftpHostKey {
    /// `KnownHosts(~/.ssh/known_hosts)`.
    fn default() -> Self {
        let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).unwrap_or_default();
        Self::KnownHosts(PathBuf::from(home).join(".ssh").join("known_hosts"))
    }
}

/// Settings of an [`SftpBackend`](super::SftpBackend). Build one with [`SftpConfig::new`] and change fields as
/// needed (struct update syntax works). `Debug` and `Display` never show secrets.
#[derive(Clone, Debug)]
pub struct SftpConfig {
    /// Server name or address.
    pub host: String,
    /// Server port; 22 by default.
    pub port: u16,
    /// The account to log in as.
    pub username: String,
    /// How to log in.
    pub auth: SftpAuth,
    /// How to check the server's host key; `~/.ssh/known_hosts` by default.
    pub host_key: SftpHostKey,
    /// Absolute folder on the server that everything lives under; created if missing.
    pub base_path: String,
    /// Limit for opening the TCP connection and for the SSH handshake; 10 s by default.
    pub connect_timeout: Duration,
    /// Limit for any one blocking SSH call once connected (zero: none); 30 s by default.
    pub io_timeout: Duration,
    /// How often connections send an SSH keepalive, idle pooled ones included (zero: never); 30 s by default.
    pub keepalive_interval: Duration,
    /// Most SSH connections open at once; each carries one transfer at a time. 4 by default, at least 1.
    pub pool_size: usize,
    /// How often a transient failure (connection lost, timeout) is retried, with exponential backoff and
    /// jitter; 3 by default.
    pub max_retries: u32,
}

impl SftpConfig {
    /// Settings for `username` on `host` (port 22), with everything under `base_path` and the defaults above.
    pub fn new(
        host: impl Into<String>,
        username: impl Into<String>,
        auth: SftpAuth,
        base_path: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port: 22,
            username: username.into(),
            auth,
            host_key: SftpHostKey::default(),
            base_path: base_path.into(),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            pool_size: 4,
            max_retries: 3,
        }
    }

    /// `host:port`, as errors name the server.
    pub(super) fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for SftpConfig {
    /// The URI of the base folder: `sftp://user@host:port/base/path`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let base = uri_escape(self.base_path.trim_end_matches('/'));
        write!(f, "sftp://{}@{host}:{}{base}", self.username, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_names_user_server_and_folder_and_no_secret() {
        let password = SftpConfig::new("sftp.example.com", "etl", SftpAuth::Password("SECRET".into()), "/srv/data/");
        assert_eq!(password.to_string(), "sftp://etl@sftp.example.com:22/srv/data");
        let pem = SftpAuth::PrivateKeyPem { pem: "KEY-SECRET".into(), passphrase: Some("PASS-SECRET".into()) };
        let key = SftpConfig { port: 2222, ..SftpConfig::new("::1", "etl", pem, "/home/etl/a b") };
        assert_eq!(key.to_string(), "sftp://etl@[::1]:2222/home/etl/a%20b");
    }
}
