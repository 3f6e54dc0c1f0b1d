use std::sync::Arc;

use serde_json::json;
use store_core::{ErrorKind, Store, WriteMode};

use super::*;

/// Sets a variable that only the test naming it reads.
#[allow(unsafe_code)]
fn set_env(name: &str, value: &str) {
    // SAFETY: each variable is set once, by the one test that reads it; std's
    // own environment lock serialises this with every other std lookup.
    unsafe { std::env::set_var(name, value) }
}

fn load_error(value: Value) -> String {
    let err = RegistryConfig::from_value(value).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    err.message().to_owned()
}

fn memory_and_local(root: &Path) -> Value {
    json!({
        "backends": {
            "scratch": { "type": "memory" },
            "files": { "type": "local", "options": { "root": root, "fsync": true } },
        },
        "stores": {
            "a": { "backend": "files", "root_path": "x" },
            "b": { "backend": "files", "root_path": "/y/z/" },
            "all": { "backend": "files" },
            "tmp": { "backend": "scratch", "root_path": "" },
        },
    })
}

fn summary(config: &RegistryConfig) -> Vec<String> {
    let backends = config.backends().map(|(name, backend)| format!("{name}: {backend:?}"));
    let stores = config.stores().map(|(name, store)| {
        format!("{name} -> {} at {:?}", store.backend(), store.root_path().map(|p| p.as_str().to_owned()))
    });
    backends.chain(stores).collect()
}

#[test]
fn toml_json_and_values_load_the_same_config() {
    let toml = r#"
        [backends.scratch]
        type = "memory"

        [backends.files]
        type = "local"
        options = { root = "/srv/data", fsync = true }

        [stores.a]
        backend = "files"
        root_path = "x"

        [stores.b]
        backend = "files"
        root_path = "/y/z/"

        [stores.all]
        backend = "files"

        [stores.tmp]
        backend = "scratch"
        root_path = ""
    "#;
    let value = memory_and_local(Path::new("/srv/data"));
    let from_toml = RegistryConfig::from_toml(toml).unwrap();
    let from_json = RegistryConfig::from_json(&value.to_string()).unwrap();
    let from_value = RegistryConfig::from_value(value).unwrap();
    let expected = [
        r#"files: BackendConfig { kind: "local", root: "/srv/data", fsync: true }"#,
        r#"scratch: BackendConfig { kind: "memory" }"#,
        r#"a -> files at Some("x")"#,
        "all -> files at None",
        r#"b -> files at Some("y/z")"#,
        "tmp -> scratch at None",
    ];
    for config in [&from_toml, &from_json, &from_value] {
        assert_eq!(summary(config), expected);
    }
}

#[test]
fn files_are_read_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("registry.toml");
    std::fs::write(&toml, "[backends.m]\ntype = \"memory\"\n[stores.s]\nbackend = \"m\"\n").unwrap();
    assert_eq!(
        summary(&RegistryConfig::from_file(&toml).unwrap()),
        [r#"m: BackendConfig { kind: "memory" }"#, "s -> m at None"]
    );

    let json = dir.path().join("registry.JSON");
    std::fs::write(&json, r#"{ "backends": { "m": { "type": "memory" } } }"#).unwrap();
    assert_eq!(summary(&RegistryConfig::from_file(&json).unwrap()), [r#"m: BackendConfig { kind: "memory" }"#]);

    let yaml = dir.path().join("registry.yaml");
    let err = RegistryConfig::from_file(&yaml).unwrap_err();
    assert_eq!(err.message(), format!("registry config {}: expected a .toml or .json file", yaml.display()));

    let missing = dir.path().join("missing.toml");
    let err = RegistryConfig::from_file(&missing).unwrap_err();
    assert!(err.message().starts_with(&format!("cannot read registry config {}: ", missing.display())), "{err}");

    std::fs::write(&json, r#"{ "stores": { "s": { "backend": "m" } } }"#).unwrap();
    let err = RegistryConfig::from_file(&json).unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            r#"registry config {}: store "s": backend "m" is not defined; no backends are defined"#,
            json.display()
        )
    );
}

#[test]
fn syntax_errors_give_a_position() {
    let err = RegistryConfig::from_toml("[backends.m]\ntype = \"memory\nx = 1\n").unwrap_err();
    assert!(err.message().starts_with("invalid TOML at line 2, column "), "{err}");
    let err = RegistryConfig::from_json("{ \"backends\": ").unwrap_err();
    assert!(err.message().starts_with("invalid JSON: "), "{err}");
    assert_eq!(load_error(json!([])), r#"a registry config must be a table with "backends" and "stores""#);
}

#[test]
fn environment_variables_are_read_when_loading() {
    set_env("DRS_REGISTRY_TEST_ROOT", "/srv/from-env");
    set_env("DRS_REGISTRY_TEST_FOLDER", "nested");
    set_env("DRS_REGISTRY_TEST_TYPE", "local");
    let config = RegistryConfig::from_toml(
        r#"
        [backends.files]
        type = "${DRS_REGISTRY_TEST_TYPE}"
        options = { root = { env = "DRS_REGISTRY_TEST_ROOT" } }

        [backends.other]
        type = "local"
        options = { root = "${DRS_REGISTRY_TEST_UNSET_ROOT:-/srv/default}/$${DRS_REGISTRY_TEST_FOLDER}/${DRS_REGISTRY_TEST_FOLDER}" }

        [stores.raw]
        backend = "files"
        root_path = "raw/${DRS_REGISTRY_TEST_FOLDER}"
        "#,
    )
    .unwrap();
    assert_eq!(
        summary(&config),
        [
            r#"files: BackendConfig { kind: "local", root: "/srv/from-env", fsync: false }"#,
            r#"other: BackendConfig { kind: "local", root: "/srv/default/${DRS_REGISTRY_TEST_FOLDER}/nested", fsync: false }"#,
            r#"raw -> files at Some("raw/nested")"#,
        ]
    );

    let err = load_error(json!({
        "backends": { "lake": { "type": "s3", "options": { "bucket": "data", "secret": "${DRS_REGISTRY_TEST_UNSET}" } } },
    }));
    assert_eq!(
        err,
        "backends.lake.options.secret: environment variable DRS_REGISTRY_TEST_UNSET is not set \
         (${DRS_REGISTRY_TEST_UNSET:-default} gives a fallback)"
    );
    let err = load_error(json!({ "stores": { "raw": { "backend": { "env": "DRS_REGISTRY_TEST_UNSET" } } } }));
    assert_eq!(err, "stores.raw.backend: environment variable DRS_REGISTRY_TEST_UNSET is not set");
}

#[test]
fn structure_errors_name_the_entry_and_what_is_accepted() {
    let cases = [
        (json!({ "backend": {} }), r#"unknown top-level key "backend"; accepted: backends, stores"#),
        (json!({ "backends": [] }), r#""backends" must be a table of named backends"#),
        (json!({ "backends": { "lake": "s3" } }), r#"backend "lake" must be a table"#),
        (
            json!({ "backends": { "lake": { "type": "memory", "optons": {} } } }),
            r#"backend "lake": unknown key "optons"; accepted: type, options, retry"#,
        ),
        (
            json!({ "backends": { "lake": { "type": "s4" } } }),
            r#"backend "lake": unknown type "s4"; accepted: local, memory, s3, azure, gcs, sftp"#,
        ),
        (
            json!({ "backends": { "lake": {} } }),
            r#"backend "lake": missing "type"; accepted: local, memory, s3, azure, gcs, sftp"#,
        ),
        (
            json!({ "backends": { "lake": { "type": 3 } } }),
            r#"backend "lake": type must be a string; accepted: local, memory, s3, azure, gcs, sftp"#,
        ),
        (
            json!({ "backends": { "lake": { "type": "memory", "options": ["x"] } } }),
            r#"backend "lake": options must be a table, got a list"#,
        ),
        (
            json!({ "backends": { "lake": { "type": "memory" } }, "stores": { "raw": { "backend": "lakee" } } }),
            r#"store "raw": backend "lakee" is not defined; defined backends: lake"#,
        ),
        (
            json!({ "backends": { "lake": { "type": "memory" } }, "stores": { "raw": {} } }),
            r#"store "raw": missing "backend"; defined backends: lake"#,
        ),
        (
            json!({ "backends": { "lake": { "type": "memory" } }, "stores": { "raw": { "backend": "lake", "root": "x" } } }),
            r#"store "raw": unknown key "root"; accepted: backend, root_path"#,
        ),
        (
            json!({ "backends": { "lake": { "type": "memory" } }, "stores": { "raw": { "backend": "lake", "root_path": 5 } } }),
            r#"store "raw": root_path must be a string"#,
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(load_error(value), expected);
    }
    let err = load_error(
        json!({ "backends": { "lake": { "type": "memory" } }, "stores": { "raw": { "backend": "lake", "root_path": "a/../b" } } }),
    );
    assert!(err.starts_with(r#"store "raw": invalid root_path "a/../b": "#), "{err}");
}

fn backend_error(kind: &str, options: Value) -> String {
    load_error(json!({ "backends": { "lake": { "type": kind, "options": options } } }))
}

#[cfg(all(feature = "s3", feature = "azure", feature = "gcs"))]
#[test]
fn option_errors_name_the_option_and_what_is_accepted() {
    assert_eq!(
        backend_error("s3", json!({ "bucket": "data", "buckett": "x" })),
        r#"backend "lake": unknown option "buckett"; accepted for s3: allow_http, bucket, connect_timeout, endpoint_url, key, max_retries, read_timeout, region_name, retry_timeout, secret, timeout, token, virtual_hosted_style"#
    );
    assert_eq!(
        backend_error("memory", json!({ "size": 1 })),
        r#"backend "lake": unknown option "size"; type memory takes no options"#
    );
    assert_eq!(
        backend_error("s3", json!({ "endpoint_url": "http://x" })),
        r#"backend "lake": missing required option "bucket""#
    );
    assert_eq!(backend_error("local", json!({ "root": 5 })), r#"backend "lake": root must be a string, got 5"#);
    assert_eq!(
        backend_error("local", json!({ "root": "/x", "fsync": "maybe" })),
        r#"backend "lake": fsync must be true or false, got "maybe""#
    );
    assert_eq!(
        backend_error("s3", json!({ "bucket": "b", "max_retries": -1 })),
        r#"backend "lake": max_retries must be a non-negative integer, got -1"#
    );
    assert_eq!(
        backend_error("s3", json!({ "bucket": "b", "max_retries": 2.5 })),
        r#"backend "lake": max_retries must be a non-negative integer, got 2.5"#
    );
    assert_eq!(
        backend_error("azure", json!({ "container": "c", "connect_timeout": -1 })),
        r#"backend "lake": connect_timeout must be a positive number of seconds, got -1"#
    );
    assert_eq!(
        backend_error("gcs", json!({ "bucket": "b", "timeout": 0 })),
        r#"backend "lake": timeout must be a positive number of seconds, got 0"#
    );
    assert_eq!(
        backend_error("gcs", json!({ "bucket": "b", "retry_timeout": "soon" })),
        r#"backend "lake": retry_timeout must be a positive number of seconds, got "soon""#
    );
    assert_eq!(
        backend_error("s3", json!({ "bucket": "b", "secret": ["hidden"] })),
        r#"backend "lake": secret must be a string, got a list"#
    );
    assert_eq!(
        backend_error("s3", json!({ "bucket": "b", "token": 12345 })),
        r#"backend "lake": options.token is a credential and must be a string, got an integer"#
    );
}

#[cfg(all(feature = "s3", feature = "sftp"))]
#[test]
fn retry_settings_merge_into_options() {
    let config = RegistryConfig::from_value(json!({
        "backends": {
            "lake": {
                "type": "s3",
                "options": { "bucket": "data", "endpoint_url": "http://127.0.0.1:9000", "allow_http": true },
                "retry": { "max_retries": 3, "timeout": 60.0, "connect_timeout": 5, "read_timeout": 20, "retry_timeout": 120.0 },
            },
            "box": {
                "type": "sftp",
                "options": { "host": "h", "username": "u", "base_path": "/b", "password": "p" },
                "retry": { "max_retries": 1, "timeout": 0, "connect_timeout": 2.5 },
            },
        },
    }))
    .unwrap();
    assert_eq!(config.backends().count(), 2);

    let retry = |kind: &str, options: Value, retry: Value| {
        load_error(json!({ "backends": { "lake": { "type": kind, "options": options, "retry": retry } } }))
    };
    let s3 = json!({ "bucket": "b", "max_retries": 2 });
    assert_eq!(
        retry("s3", s3.clone(), json!({ "max_retries": 3 })),
        r#"backend "lake": max_retries is given both in options and in retry; give it once"#
    );
    assert_eq!(
        retry("s3", s3.clone(), json!({ "backoff": 3 })),
        r#"backend "lake": unknown retry setting "backoff"; accepted: connect_timeout, max_retries, read_timeout, retry_timeout, timeout"#
    );
    assert_eq!(
        retry("s3", s3, json!({ "timeout": -5 })),
        r#"backend "lake": timeout must be a positive number of seconds, got -5"#
    );
    assert_eq!(
        retry("local", json!({ "root": "/x" }), json!({ "max_retries": 3 })),
        r#"backend "lake": type local takes no retry settings"#
    );
    assert_eq!(
        retry(
            "sftp",
            json!({ "host": "h", "username": "u", "base_path": "/b", "password": "p" }),
            json!({ "retry_timeout": 3 })
        ),
        r#"backend "lake": type sftp takes no retry setting "retry_timeout"; accepted: connect_timeout, max_retries, timeout"#
    );
    assert_eq!(retry("memory", json!({}), json!([])), r#"backend "lake": retry must be a table, got a list"#);
}

#[cfg(feature = "sftp")]
#[test]
fn sftp_options_are_checked_without_connecting() {
    let sftp = |extra: Value| {
        let mut options = json!({ "host": "sftp.example.org", "username": "etl", "base_path": "/data" });
        options.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        options
    };
    let config = RegistryConfig::from_value(json!({
        "backends": { "box": { "type": "sftp", "options": sftp(json!({
            "port": 2222, "private_key": "/keys/id_ed25519", "passphrase": "pp", "host_key_fingerprint": "SHA256:abc",
            "keepalive_interval": 0, "pool_size": 2,
        })) } },
    }))
    .unwrap();
    assert_eq!(
        summary(&config),
        [
            r#"box: BackendConfig { kind: "sftp", host: "sftp.example.org", port: 2222, username: "etl", base_path: "/data" }"#
        ]
    );

    let cases = [
        (json!({ "host": "h", "base_path": "/b", "password": "p" }), r#"missing required option "username""#),
        (sftp(json!({})), "sftp takes exactly one of password= or private_key="),
        (sftp(json!({ "password": "p", "private_key": "/k" })), "sftp takes exactly one of password= or private_key="),
        (
            sftp(json!({ "password": "p", "known_hosts": "/kh", "accept_any_host_key": true })),
            "sftp takes at most one of known_hosts=, host_key_fingerprint= or accept_any_host_key=true",
        ),
        (sftp(json!({ "password": "p", "port": 70000 })), "port must be an integer from 0 to 65535, got 70000"),
        (sftp(json!({ "password": "p", "timeout": -1 })), "timeout must be a number of seconds >= 0, got -1"),
        (
            sftp(json!({ "password": "p", "pool_size": "four" })),
            r#"pool_size must be a non-negative integer, got "four""#,
        ),
        (
            sftp(json!({ "private_key": "/k", "pkey": "/k" })),
            "give private_key= or pkey= (its remote-store name), not both",
        ),
        (
            sftp(json!({ "password": "p", "host_key_policy": "tofu" })),
            r#"host_key_policy must be "strict" or "auto", got "tofu" (for trust on first use, pin the key with host_key_fingerprint= instead)"#,
        ),
        (
            sftp(json!({ "password": "p", "timeout": 3, "io_timeout": 3 })),
            "give timeout= or io_timeout= (its remote-store name), not both",
        ),
        (
            sftp(json!({ "password": "p", "retry_timeout": 4 })),
            r#"unknown option "retry_timeout"; accepted for sftp: accept_any_host_key, base_path, connect_timeout, host, host_key_fingerprint, keepalive_interval, known_hosts, max_retries, passphrase, password, pool_size, port, private_key, timeout, username, pkey, host_keys_path, host_key_policy, io_timeout"#,
        ),
    ];
    for (options, expected) in cases {
        assert_eq!(backend_error("sftp", options), format!("backend \"lake\": {expected}"));
    }

    // remote-store's option names, and numbers and flags as text (as environment variables give them).
    let config = RegistryConfig::from_value(json!({
        "backends": { "box": { "type": "sftp", "options": sftp(json!({
            "port": "2222", "pkey": "/keys/id", "host_keys_path": "/kh", "io_timeout": "2.5", "pool_size": "3",
        })) }, "any": { "type": "sftp", "options": sftp(json!({
            "password": "p", "host_key_policy": "auto", "accept_any_host_key": "false",
        })) } },
    }));
    assert!(config.is_err(), "host_key_policy and accept_any_host_key together are refused");
    let config = RegistryConfig::from_value(json!({
        "backends": { "box": { "type": "sftp", "options": sftp(json!({
            "port": "2222", "pkey": "/keys/id", "host_keys_path": "/kh", "io_timeout": "2.5", "pool_size": "3",
        })) }, "any": { "type": "sftp", "options": sftp(json!({ "password": "p", "host_key_policy": "auto" })) } },
    }))
    .unwrap();
    assert_eq!(
        summary(&config),
        [
            r#"any: BackendConfig { kind: "sftp", host: "sftp.example.org", port: 22, username: "etl", base_path: "/data" }"#,
            r#"box: BackendConfig { kind: "sftp", host: "sftp.example.org", port: 2222, username: "etl", base_path: "/data" }"#,
        ]
    );
}

#[cfg(all(feature = "s3", feature = "azure", feature = "gcs"))]
#[tokio::test]
async fn http_backends_build_without_a_server() {
    let s3 = Options::from_json(json!({
        "bucket": "data", "endpoint_url": "http://127.0.0.1:9", "allow_http": true, "region_name": "us-east-1",
        "key": "AKIA", "secret": "s3cr3t", "virtual_hosted_style": false, "max_retries": 0, "timeout": 1.5,
    }))
    .unwrap();
    let handle = build_backend("s3", &s3).await.unwrap();
    assert_eq!(handle.backend.kind(), "s3");
    assert_eq!(
        format!("{:?}", handle.config),
        r#"BackendConfig { kind: "s3", bucket: "data", endpoint_url: "http://127.0.0.1:9", region_name: "us-east-1" }"#
    );

    let azure = Options::from_json(json!({
        "container": "c", "account_name": "devstoreaccount1", "account_key": "a2V5",
        "account_url": "http://127.0.0.1:9/devstoreaccount1", "allow_http": true,
    }))
    .unwrap();
    let handle = build_backend("azure", &azure).await.unwrap();
    assert_eq!(
        format!("{:?}", handle.config),
        r#"BackendConfig { kind: "azure", container: "c", account_name: "devstoreaccount1", account_url: "http://127.0.0.1:9/devstoreaccount1" }"#
    );

    let gcs = Options::from_json(json!({
        "bucket": "b", "base_url": "http://127.0.0.1:9", "anonymous": true, "allow_http": true, "connect_timeout": 2,
    }))
    .unwrap();
    let handle = build_backend("gcs", &gcs).await.unwrap();
    assert_eq!(
        format!("{handle:?}"),
        r#"BackendHandle { backend: Backend { kind: "gcs", root: "gs://b" }, config: BackendConfig { kind: "gcs", bucket: "b", base_url: "http://127.0.0.1:9" } }"#
    );

    let mut bad = Options::new();
    bad.insert("container", "c").unwrap();
    bad.insert("sas_token", "sig=SAS-HIDDEN%ZZ").unwrap();
    let err = build_backend("azure", &bad).await.unwrap_err();
    assert!(err.message().contains("malformed SAS token") && !err.to_string().contains("SAS-HIDDEN"), "{err}");
    let err = build_backend("azure", &Options::new()).await.unwrap_err();
    assert_eq!(err.message(), r#"missing required option "container""#);
}

#[test]
fn credentials_are_secrets_at_any_depth() {
    for key in ["key", "secret", "token", "password", "passphrase", "account_key", "sas_token", "connection_string"] {
        assert!(is_secret_key(key), "{key}");
    }
    for key in ["client_secret", "private_key", "service_account", "credentials", "db_password", "API_TOKEN", "apiKey"]
    {
        assert!(is_secret_key(key), "{key}");
    }
    for key in ["known_hosts", "host_key_fingerprint", "accept_any_host_key", "acceptAnyHostKey", "keys", "token_url"] {
        assert!(!is_secret_key(key), "{key}");
    }
    let options = Options::from_json(json!({
        "secret": "a", "extra": { "client_secret": "b", "list": [{ "api_key": "c" }] }, "credentials": { "user": "d" },
    }))
    .unwrap();
    let secrets = |value: &OptionValue| match value {
        OptionValue::Map(map) => map.iter().map(|(key, value)| format!("{key}={value:?}")).collect::<Vec<_>>(),
        other => vec![format!("{other:?}")],
    };
    assert_eq!(secrets(options.get("secret").unwrap()), ["Secret(Secret(***))"]);
    assert_eq!(secrets(options.get("credentials").unwrap()), ["user=Secret(Secret(***))"]);
    assert_eq!(
        format!("{options:?}"),
        r#"{"credentials": Map({"user": Secret(Secret(***))}), "extra": Map({"client_secret": Secret(Secret(***)), "list": List([Map({"api_key": Secret(Secret(***))})])}), "secret": Secret(Secret(***))}"#
    );

    let mut options = Options::new();
    let err = options.insert("password", 1234).unwrap_err();
    assert_eq!(err.message(), "password is a credential and must be a string, got an integer");
    let err = Options::from_json(json!({ "nested": { "my token": [true] } })).unwrap_err();
    assert_eq!(err.message(), r#"options.nested."my token"[0] is a credential and must be a string, got a boolean"#);
    let err = Options::from_json(json!("x")).unwrap_err();
    assert_eq!(err.message(), "options must be a table, got a string");
}

#[cfg(all(feature = "s3", feature = "azure", feature = "gcs", feature = "sftp"))]
#[tokio::test]
async fn secrets_never_show_in_debug_or_errors() {
    const SECRET: &str = "Sup3r-S3cret-Value";
    set_env("DRS_REGISTRY_TEST_SECRET", SECRET);
    let config = RegistryConfig::from_toml(&format!(
        r#"
        [backends.lake]
        type = "s3"
        options = {{ bucket = "data", key = "{SECRET}", secret = "${{DRS_REGISTRY_TEST_SECRET}}", token = {{ env = "DRS_REGISTRY_TEST_SECRET" }}, allow_http = true, endpoint_url = "http://user:{SECRET}@127.0.0.1:9/?sig={SECRET}" }}

        [backends.blob]
        type = "azure"
        options = {{ container = "c", account_key = "{SECRET}", sas_token = "sig={SECRET}", connection_string = "AccountKey={SECRET}", account_url = "https://a.blob.core.windows.net?sv=1&sig={SECRET}" }}

        [backends.gcs]
        type = "gcs"
        options = {{ bucket = "b", service_account = "{SECRET}", base_url = "https://{SECRET}@gcs.example.org/" }}

        [backends.box]
        type = "sftp"
        options = {{ host = "h", username = "u", base_path = "/b", private_key = "-----BEGIN OPENSSH PRIVATE KEY-----{SECRET}", passphrase = "{SECRET}" }}

        [stores.raw]
        backend = "lake"
        "#
    ))
    .unwrap();
    let registry = Registry::new(config.clone());
    let options = Options::from_json(json!({ "password": SECRET, "nested": { "db_password": SECRET } })).unwrap();
    let mut shown = vec![format!("{config:?}"), format!("{options:?}")];
    shown.extend(config.backends().map(|(_, backend)| format!("{backend:?} {:?}", backend.settings())));
    let store = registry.store("raw").await.unwrap();
    shown.push(format!("{store:?} {registry:?} {:?}", registry.backend_config("raw").unwrap()));

    let wrapped = |text: String| format!("{{ bucket = \"b\", secret = \"{SECRET}\", {text} }}");
    let toml_errors = [
        "type = \"s3\"\noptions = { bucket = \"b\", secret = \"Sup3r-S3cret-Value, key = 1 }".to_owned(),
        format!("type = \"s3\"\noptions = {}", wrapped("bucket_name = \"x\"".into())),
        format!("type = \"s3\"\noptions = {}", wrapped("max_retries = \"many\"".into())),
        format!("type = \"s3\"\noptions = {}", wrapped("timeout = -1".into())),
        format!("type = \"s4\"\noptions = {}", wrapped("x = 1".into())),
        format!("type = \"s3\"\noptions = {}\nretry = {{ max_retries = 1 }}", wrapped("max_retries = 2".into())),
        format!("type = \"s3\"\noptions = {{ bucket = \"b\", secret = [\"{SECRET}\"] }}"),
        format!("type = \"s3\"\noptions = {{ bucket = \"b\", secret = \"{SECRET}${{DRS_REGISTRY_TEST_UNSET_2}}\" }}"),
        format!("type = \"s3\"\noptions = {{ bucket = \"b\", secret = \"{SECRET}${{\" }}"),
        format!(
            "type = \"sftp\"\noptions = {{ host = \"h\", username = \"u\", base_path = \"/b\", password = \"{SECRET}\", private_key = \"{SECRET}\" }}"
        ),
        format!(
            "type = \"sftp\"\noptions = {{ host = \"h\", username = \"u\", base_path = \"/b\", password = \"{SECRET}\", port = \"many\" }}"
        ),
    ];
    for entry in toml_errors {
        let err = RegistryConfig::from_toml(&format!("[backends.lake]\n{entry}\n")).unwrap_err();
        shown.push(format!("{err} {err:?}"));
    }
    let mut bad_secret = Options::new();
    bad_secret.insert("container", "c").unwrap();
    bad_secret.insert("connection_string", format!("AccountName=a;{SECRET}")).unwrap();
    let err = build_backend("azure", &bad_secret).await.unwrap_err();
    shown.push(format!("{err} {err:?}"));

    for text in shown {
        assert!(!text.contains(SECRET) && !text.contains("Sup3r"), "a secret shows in: {text}");
    }
    // URLs keep where they point, not who logs in or what the query signs.
    let urls = config.backends().filter(|(name, _)| *name != "box").map(|(_, backend)| format!("{backend:?}"));
    assert_eq!(
        urls.collect::<Vec<_>>(),
        [
            r#"BackendConfig { kind: "azure", container: "c", account_url: "https://a.blob.core.windows.net?<redacted>" }"#,
            r#"BackendConfig { kind: "gcs", bucket: "b", base_url: "https://<redacted>@gcs.example.org/" }"#,
            r#"BackendConfig { kind: "s3", bucket: "data", endpoint_url: "http://<redacted>@127.0.0.1:9/?<redacted>" }"#,
        ]
    );
}

fn local_registry(root: &Path) -> Registry {
    Registry::new(RegistryConfig::from_value(memory_and_local(root)).unwrap())
}

#[tokio::test]
async fn stores_are_scoped_to_their_root_path() {
    let dir = tempfile::tempdir().unwrap();
    let registry = local_registry(dir.path());
    assert_eq!(registry.store_names().collect::<Vec<_>>(), ["a", "all", "b", "tmp"]);
    let a = registry.store("a").await.unwrap();
    a.write(&"f.txt".parse().unwrap(), "through a".into(), WriteMode::CreateNew).await.unwrap();
    let b = registry.store("b").await.unwrap();
    b.write(&"g.txt".parse().unwrap(), "through b".into(), WriteMode::CreateNew).await.unwrap();

    let plain = Store::new(crate::LocalBackend::new(dir.path()).unwrap());
    assert_eq!(plain.read(&"x/f.txt".parse().unwrap()).await.unwrap(), "through a");
    assert_eq!(plain.read(&"y/z/g.txt".parse().unwrap()).await.unwrap(), "through b");
    let all = registry.store("all").await.unwrap();
    assert_eq!(all.root(), None);
    assert_eq!(all.read(&"x/f.txt".parse().unwrap()).await.unwrap(), "through a");
    assert_eq!(
        format!("{:?}", registry.backend_config("a").unwrap()),
        format!(r#"BackendConfig {{ kind: "local", root: {:?}, fsync: true }}"#, dir.path().display().to_string())
    );
    registry.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_of_one_backend_share_it_and_build_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(local_registry(dir.path()));
    let tasks: Vec<_> = ["a", "b", "all", "a"]
        .into_iter()
        .map(|name| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.store(name).await.unwrap() })
        })
        .collect();
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(task.await.unwrap());
    }
    for store in &stores {
        assert!(Arc::ptr_eq(store.backend(), stores[0].backend()));
    }
    let tmp = registry.store("tmp").await.unwrap();
    assert_eq!(tmp.backend_kind(), "memory");
    assert!(!Arc::ptr_eq(tmp.backend(), stores[0].backend()));
    assert!(Arc::ptr_eq(tmp.backend(), registry.store("tmp").await.unwrap().backend()));
    registry.close().await.unwrap();
}

#[tokio::test]
async fn unknown_stores_and_failed_builds_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "not a folder").unwrap();
    let registry = local_registry(&file);
    let err = registry.store("nope").await.unwrap_err();
    assert_eq!(err.message(), r#"unknown store "nope"; defined stores: a, all, b, tmp"#);
    let err = registry.backend_config("nope").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);

    let err = registry.store("a").await.unwrap_err();
    assert!(
        err.message().starts_with(r#"store "a": cannot build backend "files": cannot create local root "#),
        "{err}"
    );
    assert!(registry.store("tmp").await.is_ok());

    let empty = Registry::new(RegistryConfig::from_toml("").unwrap());
    let err = empty.store("raw").await.unwrap_err();
    assert_eq!(err.message(), r#"unknown store "raw"; no stores are defined"#);
    empty.close().await.unwrap();
}

#[cfg(not(feature = "sftp"))]
#[test]
fn types_left_out_of_the_build_are_errors() {
    assert_eq!(
        backend_error("sftp", json!({ "host": "h" })),
        r#"backend "lake": type "sftp" is not available: store-backends was built without its "sftp" feature"#
    );
}

/// Every option of the spec is read by its backend's parser: a value no option takes (a list) is refused
/// with a message naming it. A parser that never reads an option would let the list through.
#[test]
fn every_specified_option_is_read() {
    for backend in all_backend_options() {
        let valid = |kind: OptionType| match kind {
            OptionType::Path => OptionValue::from("/tmp"),
            _ => OptionValue::from("x"),
        };
        let mut base = Options::new();
        for option in backend.options().filter(|option| option.required) {
            base.insert(option.name, valid(option.kind)).unwrap();
        }
        if backend.kind == "sftp" {
            base.insert("password", "x").unwrap();
        }
        let available = BackendConfig::parse(backend.kind, &base);
        if available.as_ref().is_err_and(|e| e.message().contains("is not available")) {
            continue;
        }
        available.unwrap_or_else(|e| panic!("{}: {e}", backend.kind));
        for option in backend.options() {
            let mut options = base.clone();
            options.insert(option.name, OptionValue::List(Vec::new())).unwrap();
            let err = BackendConfig::parse(backend.kind, &options).unwrap_err();
            assert!(err.message().contains(option.name), "{} {}: {}", backend.kind, option.name, err.message());
        }
    }
}
