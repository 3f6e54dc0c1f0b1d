//! The options each backend type takes, defined once. Option parsing and the messages that
//! list accepted options read [`backend_options`]; the Python constructors take exactly these
//! keywords, and a tidy test checks the Python stubs and the docs' table against them.

/// What an option holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionType {
    /// Text; credentials are text too (see [`is_secret_key`](super::is_secret_key)).
    Text,
    /// A file system path.
    Path,
    /// `true` or `false`; `false` when left out.
    Flag,
    /// A whole number, 0 or more.
    Count,
    /// A number of seconds.
    Seconds,
}

/// One option of a backend type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    /// The name, in config files and as a Python keyword.
    pub name: &'static str,
    /// What it holds.
    pub kind: OptionType,
    /// Whether a backend cannot be built without it.
    pub required: bool,
    /// For remote-store's name of an option, the option it stands for: accepted in configs, so
    /// that remote-store configs load as they are, but not as a keyword of the Python classes.
    pub alias_of: Option<&'static str>,
}

impl OptionSpec {
    const fn new(name: &'static str, kind: OptionType) -> Self {
        Self { name, kind, required: false, alias_of: None }
    }

    const fn required(name: &'static str, kind: OptionType) -> Self {
        Self { name, kind, required: true, alias_of: None }
    }

    const fn alias(name: &'static str, kind: OptionType, of: &'static str) -> Self {
        Self { name, kind, required: false, alias_of: Some(of) }
    }
}

/// The options of one backend type, in the order the Python constructor lists them: the first
/// is also its one positional argument.
///
/// ```
/// use store_backends::registry::{OptionType, backend_options};
///
/// let s3 = backend_options("s3").unwrap();
/// assert_eq!(s3.positional().map(|o| o.name), Some("bucket"));
/// assert!(s3.options().any(|o| o.name == "retry_timeout" && o.kind == OptionType::Seconds));
/// assert_eq!(backend_options("memory").unwrap().options().count(), 0);
/// ```
#[derive(Debug)]
pub struct BackendOptions {
    /// The backend type: `"local"`, `"memory"`, `"s3"`, ...
    pub kind: &'static str,
    own: &'static [OptionSpec],
    http: bool,
}

impl BackendOptions {
    /// Every option, aliases included.
    pub fn options(&self) -> impl Iterator<Item = &'static OptionSpec> + use<> {
        let http: &'static [OptionSpec] = if self.http { HTTP } else { &[] };
        self.own.iter().chain(http)
    }

    /// The options of this type alone: every option but the HTTP ones the cloud types share.
    pub fn specific(&self) -> impl Iterator<Item = &'static OptionSpec> + use<> {
        self.own.iter()
    }

    /// The positional argument of the Python constructor: the first option, when it is required.
    pub fn positional(&self) -> Option<&'static OptionSpec> {
        self.own.first().filter(|option| option.required)
    }

    /// The accepted names as messages list them: the options sorted, then the aliases.
    pub fn accepted(&self) -> Vec<&'static str> {
        let (mut names, aliases): (Vec<&OptionSpec>, Vec<_>) =
            self.options().partition(|option| option.alias_of.is_none());
        names.sort_by_key(|option| option.name);
        names.into_iter().chain(aliases).map(|option| option.name).collect()
    }
}

use OptionType::{Count, Flag, Path, Seconds, Text};

/// The retry and timeout options every HTTP backend takes (see [`crate::ClientConfig`]).
const HTTP: &[OptionSpec] = &[
    OptionSpec::new("allow_http", Flag),
    OptionSpec::new("max_retries", Count),
    OptionSpec::new("connect_timeout", Seconds),
    OptionSpec::new("read_timeout", Seconds),
    OptionSpec::new("timeout", Seconds),
    OptionSpec::new("retry_timeout", Seconds),
];

/// Every backend type, in the order messages list them.
const BACKENDS: &[BackendOptions] = &[
    BackendOptions {
        kind: "local",
        own: &[OptionSpec::required("root", Path), OptionSpec::new("fsync", Flag)],
        http: false,
    },
    BackendOptions { kind: "memory", own: &[], http: false },
    BackendOptions {
        kind: "s3",
        own: &[
            OptionSpec::required("bucket", Text),
            OptionSpec::new("endpoint_url", Text),
            OptionSpec::new("key", Text),
            OptionSpec::new("secret", Text),
            OptionSpec::new("token", Text),
            OptionSpec::new("region_name", Text),
            OptionSpec::new("virtual_hosted_style", Flag),
        ],
        http: true,
    },
    BackendOptions {
        kind: "azure",
        own: &[
            OptionSpec::required("container", Text),
            OptionSpec::new("account_name", Text),
            OptionSpec::new("account_key", Text),
            OptionSpec::new("sas_token", Text),
            OptionSpec::new("connection_string", Text),
            OptionSpec::new("account_url", Text),
        ],
        http: true,
    },
    BackendOptions {
        kind: "gcs",
        own: &[
            OptionSpec::required("bucket", Text),
            OptionSpec::new("service_account", Text),
            OptionSpec::new("base_url", Text),
            OptionSpec::new("anonymous", Flag),
        ],
        http: true,
    },
    BackendOptions {
        kind: "sftp",
        own: &[
            OptionSpec::required("host", Text),
            OptionSpec::required("username", Text),
            OptionSpec::required("base_path", Text),
            OptionSpec::new("port", Count),
            OptionSpec::new("password", Text),
            OptionSpec::new("private_key", Text),
            OptionSpec::new("passphrase", Text),
            OptionSpec::new("known_hosts", Path),
            OptionSpec::new("host_key_fingerprint", Text),
            OptionSpec::new("accept_any_host_key", Flag),
            OptionSpec::new("timeout", Seconds),
            OptionSpec::new("connect_timeout", Seconds),
            OptionSpec::new("keepalive_interval", Seconds),
            OptionSpec::new("pool_size", Count),
            OptionSpec::new("max_retries", Count),
            OptionSpec::alias("pkey", Text, "private_key"),
            OptionSpec::alias("host_keys_path", Path, "known_hosts"),
            // "strict" or "auto": accept_any_host_key false or true.
            OptionSpec::alias("host_key_policy", Text, "accept_any_host_key"),
            OptionSpec::alias("io_timeout", Seconds, "timeout"),
        ],
        http: false,
    },
];

/// Every backend type's options, in the order messages list the types.
pub fn all_backend_options() -> &'static [BackendOptions] {
    BACKENDS
}

/// The backend types as messages list them: `local, memory, s3, azure, gcs, sftp`.
pub(super) fn type_names() -> String {
    BACKENDS.iter().map(|backend| backend.kind).collect::<Vec<_>>().join(", ")
}

/// The options of the backend type `kind`, if there is one of that name.
pub fn backend_options(kind: &str) -> Option<&'static BackendOptions> {
    BACKENDS.iter().find(|backend| backend.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_stand_for_options_of_their_backend() {
        for backend in BACKENDS {
            for option in backend.options() {
                if let Some(of) = option.alias_of {
                    assert!(backend.options().any(|o| o.name == of && o.alias_of.is_none()), "{}", option.name);
                }
            }
        }
    }

    #[test]
    fn names_are_unique_per_backend() {
        for backend in BACKENDS {
            let accepted = backend.accepted();
            let mut unique = accepted.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), accepted.len(), "{}", backend.kind);
        }
    }
}
