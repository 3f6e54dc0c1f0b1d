//! The SFTP backend against a real OpenSSH server: `cargo xtask test` (or `cargo xtask servers`) starts one
//! and exports `DRS_TEST_SERVERS=sftp` and the `DRS_TEST_SFTP_*` variables read here.
#![cfg(feature = "sftp")]

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use store_backends::{SftpAuth, SftpBackend, SftpConfig, SftpHostKey};
use store_core::{Error, ErrorKind, Store, StorePath, WriteMode};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `cargo xtask servers` or export it"))
}

fn key_auth() -> SftpAuth {
    SftpAuth::PrivateKey { path: env("DRS_TEST_SFTP_KEY").into(), passphrase: None }
}

fn password_auth() -> SftpAuth {
    SftpAuth::Password(env("DRS_TEST_SFTP_PASSWORD"))
}

fn config(auth: SftpAuth) -> SftpConfig {
    SftpConfig {
        port: env("DRS_TEST_SFTP_PORT").parse().expect("DRS_TEST_SFTP_PORT is a port number"),
        host_key: SftpHostKey::KnownHosts(env("DRS_TEST_SFTP_KNOWN_HOSTS").into()),
        ..SftpConfig::new(env("DRS_TEST_SFTP_HOST"), env("DRS_TEST_SFTP_USER"), auth, env("DRS_TEST_SFTP_ROOT"))
    }
}

async fn make_store() -> Store {
    let auth = if std::env::var_os("DRS_TEST_SFTP_KEY").is_some() { key_auth() } else { password_auth() };
    Store::new(SftpBackend::connect(config(auth)).await.expect("connect to the SFTP test server"))
}

/// A store on `config`, in a folder of its own.
async fn isolated(config: SftpConfig, name: &str) -> Store {
    let store = Store::new(SftpBackend::connect(config).await.unwrap_or_else(|e| panic!("connect: {e}")));
    store_core::conformance::isolated(&store, name)
}

fn p(path: &str) -> StorePath {
    path.parse().unwrap()
}

/// The fingerprint of the key the test server shows, as the refusal of a wrong one names it; it must be
/// one that `ssh-keygen -lf` lists for the known_hosts file.
async fn server_fingerprint() -> String {
    let bogus = SftpHostKey::Fingerprint("SHA256:bm90IHRoZSBzZXJ2ZXIncyBrZXk".into());
    let err = SftpBackend::connect(SftpConfig { host_key: bogus, ..config(key_auth()) }).await.unwrap_err();
    let text = err.to_string();
    let seen = text.split([' ', ',', ';']).find(|word| word.starts_with("SHA256:")).expect("a fingerprint").to_owned();
    let listed = Command::new("ssh-keygen").arg("-lf").arg(env("DRS_TEST_SFTP_KNOWN_HOSTS")).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&seen), "{seen} is not in the known_hosts file");
    seen
}

store_core::conformance_tests!(
    make_store,
    #[cfg_attr(not(test_sftp), ignore = "no SFTP test server: run `cargo xtask test` (or `cargo xtask servers`)")]
);

macro_rules! server_test {
    ($(#[doc = $doc:literal])* async fn $name:ident() $body:block) => {
        $(#[doc = $doc])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(not(test_sftp), ignore = "no SFTP test server: run `cargo xtask test` (or `cargo xtask servers`)")]
        async fn $name() $body
    };
}

server_test! {
    async fn password_login_works() {
        let store = isolated(config(password_auth()), "password-login").await;
        store.write(&p("x.txt"), "pw".into(), WriteMode::CreateNew).await.unwrap();
        assert_eq!(store.read(&p("x.txt")).await.unwrap(), "pw");
    }
}

server_test! {
    /// From a key file and from the key's text in memory.
    async fn key_login_works() {
        let pem = std::fs::read_to_string(env("DRS_TEST_SFTP_KEY")).unwrap();
        for auth in [key_auth(), SftpAuth::PrivateKeyPem { pem, passphrase: None }] {
            let store = isolated(config(auth), "key-login").await;
            store.write(&p("x.txt"), "key".into(), WriteMode::CreateNew).await.unwrap();
            assert_eq!(store.read(&p("x.txt")).await.unwrap(), "key");
        }
    }
}

server_test! {
    async fn the_right_fingerprint_is_accepted_with_or_without_prefix() {
        let fingerprint = server_fingerprint().await;
        let bare = fingerprint.trim_start_matches("SHA256:").to_owned();
        for host_key in [SftpHostKey::Fingerprint(fingerprint), SftpHostKey::Fingerprint(bare)] {
            let store = isolated(SftpConfig { host_key, ..config(key_auth()) }, "fingerprint").await;
            assert!(!store.exists(&p("nothing")).await.unwrap());
        }
    }
}

server_test! {
    /// A bogus fingerprint, a known_hosts file with another key for the server, and one without the server.
    async fn wrong_host_keys_are_refused_naming_the_host_and_the_key_seen() {
        let fingerprint = server_fingerprint().await;
        let dir = tempfile::tempdir().unwrap();
        let host = env("DRS_TEST_SFTP_HOST");
        let server = format!("{host}:{}", env("DRS_TEST_SFTP_PORT"));
        let other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKj0H7m1z6ZbQm2I4z8kQhZbC2eY6r7aJ0p3cY6Hn3V9";
        let other = dir.path().join("other");
        std::fs::write(&other, format!("[{host}]:{} {other_key}\n{host} {other_key}\n", env("DRS_TEST_SFTP_PORT")))
            .unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let cases = [
            (SftpHostKey::Fingerprint("SHA256:bm90IHRoZSBzZXJ2ZXIncyBrZXk".into()), "mismatch"),
            (SftpHostKey::KnownHosts(other), "mismatch"),
            (SftpHostKey::KnownHosts(empty), "not in known_hosts"),
        ];
        for (host_key, says) in cases {
            let err = SftpBackend::connect(SftpConfig { host_key, ..config(key_auth()) }).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
            let text = err.to_string();
            assert!(text.contains(&server) && text.contains(says), "{text}");
            assert!(text.contains(&fingerprint), "names the key seen: {text}");
        }
    }
}

server_test! {
    async fn a_wrong_password_is_permission_denied_and_not_shown() {
        let password = "not-the-password-h8Zq2";
        let err = SftpBackend::connect(config(SftpAuth::Password(password.into()))).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        let text = format!("{err} {err:?}");
        assert!(text.contains(&env("DRS_TEST_SFTP_USER")) && !text.contains(password), "{text}");
    }
}

server_test! {
    async fn uri_and_debug_show_no_secret() {
        let password = env("DRS_TEST_SFTP_PASSWORD");
        let config = config(password_auth());
        let backend = SftpBackend::connect(config.clone()).await.unwrap();
        let uri = Store::new(backend.clone()).uri(&p("a b/c.pkl"));
        let expected = format!("sftp://{}@{}:{}", config.username, config.host, config.port);
        assert_eq!(uri, format!("{expected}{}/a%20b/c.pkl", config.base_path.trim_end_matches('/')));
        for text in [uri, format!("{backend:?}"), backend.to_string(), format!("{config:?}"), config.to_string()] {
            assert!(!text.contains(&password), "{text}");
        }
    }
}

/// A TCP proxy to the test server that can cut every connection through it, as a network failure would.
struct Proxy {
    port: u16,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(server: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, accepted) = (Arc::<Mutex<Vec<TcpStream>>>::default(), Arc::<AtomicUsize>::default());
        let (open2, accepted2) = (open.clone(), accepted.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(client), Ok(upstream)) = (client, TcpStream::connect(&server)) else { continue };
                accepted2.fetch_add(1, Ordering::SeqCst);
                open2.lock().unwrap().extend([client.try_clone().unwrap(), upstream.try_clone().unwrap()]);
                pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream, client);
            }
        });
        Proxy { port, open, accepted }
    }

    fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}

server_test! {
    /// Pooled sessions whose connections broke are replaced on the next call.
    async fn reconnects_after_the_connections_break() {
        let proxy = Proxy::start((env("DRS_TEST_SFTP_HOST"), env("DRS_TEST_SFTP_PORT").parse().unwrap()));
        let config = SftpConfig {
            host: "127.0.0.1".into(),
            port: proxy.port,
            host_key: SftpHostKey::Fingerprint(server_fingerprint().await),
            max_retries: 1,
            ..config(key_auth())
        };
        let store = isolated(config, "reconnect").await;
        let path = p("r.txt");
        store.write(&path, "before".into(), WriteMode::Overwrite).await.unwrap();
        // Calls at once fill the pool with several sessions; after the cut, all of them are dead, and one
        // retry must be enough.
        let reads = tokio::join!(store.read(&path), store.read(&path), store.read(&path), store.read(&path));
        for read in <[_; 4]>::from(reads) {
            assert_eq!(read.unwrap(), "before");
        }
        let connections = proxy.accepted.load(Ordering::SeqCst);

        proxy.cut();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(store.read(&path).await.unwrap(), "before");
        store.write(&path, "after".into(), WriteMode::Overwrite).await.unwrap();
        assert_eq!(store.read(&path).await.unwrap(), "after");
        assert!(proxy.accepted.load(Ordering::SeqCst) > connections, "new connections were made");
    }
}

/// Every name in `folder` under the server's base folder, hidden temporaries included (read with ssh2 directly).
fn names_on_server(folder: &str) -> Vec<String> {
    let mut session = ssh2::Session::new().unwrap();
    let port: u16 = env("DRS_TEST_SFTP_PORT").parse().unwrap();
    session.set_tcp_stream(TcpStream::connect((env("DRS_TEST_SFTP_HOST"), port)).unwrap());
    session.handshake().unwrap();
    let key = env("DRS_TEST_SFTP_KEY");
    session.userauth_pubkey_file(&env("DRS_TEST_SFTP_USER"), None, std::path::Path::new(&key), None).unwrap();
    let folder = format!("{}/{folder}", env("DRS_TEST_SFTP_ROOT").trim_end_matches('/'));
    let entries = session.sftp().unwrap().readdir(&folder).unwrap();
    let mut names: Vec<_> =
        entries.iter().map(|(path, _)| path.file_name().unwrap().to_string_lossy().into()).collect();
    names.sort();
    names
}

server_test! {
    /// Refused writes, copies and renames, and failed or dropped streamed writes remove their temporaries;
    /// reserved names are refused.
    async fn refused_writes_leave_no_temporaries() {
        let store = isolated(config(key_auth()), "refused").await;
        store.write(&p("f/once.txt"), "first".into(), WriteMode::CreateNew).await.unwrap();
        store.write(&p("f/other.txt"), "other".into(), WriteMode::CreateNew).await.unwrap();
        let again = stream::iter([Ok("second".into())]).boxed();
        let refused = [
            store.write(&p("f/once.txt"), "second".into(), WriteMode::CreateNew).await,
            store.write_stream(&p("f/once.txt"), again, WriteMode::CreateNew).await,
            store.copy(&p("f/other.txt"), &p("f/once.txt"), false).await.map(|_| Default::default()),
            store.rename(&p("f/other.txt"), &p("f/once.txt"), false).await.map(|_| Default::default()),
        ];
        for result in refused {
            assert_eq!(result.unwrap_err().kind(), ErrorKind::AlreadyExists);
        }
        let failing = stream::iter([Ok("part".into()), Err(Error::new(ErrorKind::Other, "the producer failed"))]);
        let err = store.write_stream(&p("f/failed.txt"), failing.boxed(), WriteMode::Overwrite).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Other, "{err}");
        let endless = stream::iter([Ok(Bytes::from("part"))]).chain(stream::pending()).boxed();
        let dropped = p("f/dropped.txt");
        let dropped = store.write_stream(&dropped, endless, WriteMode::Overwrite);
        assert!(tokio::time::timeout(Duration::from_secs(1), dropped).await.is_err(), "an endless stream ended");
        let err = store.write(&p("f/.drs-tmp-x"), "x".into(), WriteMode::Overwrite).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidPath);
        // The dropped write's task removes its temporary once it sees the stream gone: give it a moment.
        let folder = format!("{}/f", store.root().unwrap());
        for _ in 0..50 {
            if names_on_server(&folder) == ["once.txt", "other.txt"] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(names_on_server(&folder), ["once.txt", "other.txt"]);
        assert_eq!(store.read(&p("f/once.txt")).await.unwrap(), "first");
    }
}

/// Peak resident memory of this process so far (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse::<u64>().ok()).expect("VmHWM in kB") << 10
}

/// Byte `i` of the large streamed object: varies along it, so misplaced chunks show.
fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

server_test! {
    /// 256 MiB streamed up and back chunk by chunk, never whole in memory: peak memory grows by far less. The
    /// test reruns itself in a process of its own, so that other tests' memory does not count.
    async fn streams_256_mib_in_bounded_memory() {
        const SIZE: u64 = 256 << 20;
        const CHUNK: u64 = 1 << 20;
        if std::env::var_os("DRS_TEST_SFTP_ALONE").is_none() {
            let name = "streams_256_mib_in_bounded_memory";
            let child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--nocapture"])
                .env("DRS_TEST_SFTP_ALONE", "1")
                .output()
                .unwrap();
            let output = String::from_utf8_lossy(&child.stdout) + String::from_utf8_lossy(&child.stderr);
            println!("{output}");
            assert!(child.status.success() && output.contains("1 passed"), "{output}");
            return;
        }
        let store = isolated(config(key_auth()), "stream-memory").await;
        let path = p("big.bin");
        let before = peak_rss();
        let chunks = (0..SIZE / CHUNK).map(|n| Ok((n * CHUNK..(n + 1) * CHUNK).map(byte_at).collect::<Bytes>()));
        store.write_stream(&path, stream::iter(chunks).boxed(), WriteMode::Overwrite).await.unwrap();
        assert_eq!(store.head(&path).await.unwrap().size, SIZE);
        let mut pieces = store.read_stream(&path).await.unwrap();
        let mut offset = 0;
        while let Some(piece) = pieces.next().await {
            let piece = piece.unwrap();
            assert!(piece.iter().zip(offset..).all(|(&b, i)| b == byte_at(i)), "wrong bytes at {offset}..");
            offset += piece.len() as u64;
        }
        assert_eq!(offset, SIZE);
        let grown = peak_rss() - before;
        eprintln!("peak RSS grew by {:.1} MiB while streaming 256 MiB up and back", grown as f64 / (1 << 20) as f64);
        assert!(grown < 64 << 20, "peak RSS grew by {grown} bytes");
        store.delete(&path, false).await.unwrap();
    }
}

/// No server needed: nothing listens on the port, so every retry fails, quickly, as Unavailable.
#[tokio::test]
async fn an_unreachable_server_is_unavailable_after_the_retries() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = SftpConfig {
        port,
        max_retries: 1,
        ..SftpConfig::new("127.0.0.1", "nobody", SftpAuth::Password("secret-pw".into()), "/data")
    };
    let err = SftpBackend::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// No server needed.
#[test]
fn config_debug_and_display_hide_secrets() {
    let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
    let auths = [
        SftpAuth::Password("hunter2-pw".into()),
        SftpAuth::PrivateKey { path: "/keys/id_ed25519".into(), passphrase: Some("hunter2-pass".into()) },
        SftpAuth::PrivateKeyPem { pem: pem.into(), passphrase: Some("hunter2-pass".into()) },
    ];
    for auth in auths {
        let config = SftpConfig::new("files.example.com", "etl", auth, "/srv/data/");
        assert_eq!(config.to_string(), "sftp://etl@files.example.com:22/srv/data");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("b3BlbnNzaC1rZXkt"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
    assert!(matches!(SftpHostKey::default(), SftpHostKey::KnownHosts(path) if path.ends_with(".ssh/known_hosts")));
}
