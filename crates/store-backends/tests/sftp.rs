//! The SFTP backend against a real OpenSSH server: `cargo xtask test` (or `cargo xtask servers`) starts one
//! and exports `DRS_TEST_SERVERS=sftp` and the `DRS_TEST_SFTP_*` variables read here.
#![cfg(feature = "sftp")]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
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
    SftpAuth::Password(env("DRS_TEST_SFTP_PASSWORD").into())
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
        for auth in [key_auth(), SftpAuth::PrivateKeyPem { pem: pem.into(), passphrase: None }] {
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

/// A TCP proxy to the test server that can cut the connections through it, as a network failure would: all
/// at once, or each once it has carried so many bytes from the server.
struct Proxy {
    port: u16,
    /// Both ends of each connection made: the client's and the server's.
    links: Arc<Mutex<Vec<Link>>>,
    /// How many bytes from the server new connections may carry before they are cut.
    limit: Arc<AtomicU64>,
    /// How long, in milliseconds, a connection that reached `limit` stays open (passing nothing) before it is
    /// cut. libssh2 drops what it has received but not yet handed out when its socket fails, so a client
    /// slower than the proxy (a loaded machine) would otherwise lose every byte of each connection.
    linger_ms: Arc<AtomicU64>,
}

type Link = [Arc<TcpStream>; 2];

impl Proxy {
    fn start(server: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (links, limit) = (Arc::<Mutex<Vec<Link>>>::default(), Arc::new(AtomicU64::new(u64::MAX)));
        let linger_ms = Arc::new(AtomicU64::new(0));
        let (links2, limit2, linger2) = (links.clone(), limit.clone(), linger_ms.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(client), Ok(upstream)) = (client, TcpStream::connect(&server)) else { continue };
                let link = [Arc::new(client), Arc::new(upstream)];
                links2.lock().unwrap().push(link.clone());
                pipe(&link, 0, 1, u64::MAX, Duration::ZERO);
                let linger = Duration::from_millis(linger2.load(Ordering::SeqCst));
                pipe(&link, 1, 0, limit2.load(Ordering::SeqCst), linger);
            }
        });
        Proxy { port, links, limit, linger_ms }
    }

    fn accepted(&self) -> usize {
        self.links.lock().unwrap().len()
    }

    fn cut(&self) {
        self.links.lock().unwrap().iter().for_each(close);
    }
}

/// Passes bytes from end `from` of `link` to end `to` until either closes or `limit` bytes have passed; then
/// cuts the connection, after `linger` if the limit was reached.
fn pipe(link: &Link, from: usize, to: usize, mut limit: u64, linger: Duration) {
    let link = link.clone();
    std::thread::spawn(move || {
        let mut buffer = vec![0; 64 << 10];
        while let Ok(read @ 1..) = (&*link[from]).read(&mut buffer) {
            let n = read.min(usize::try_from(limit).unwrap_or(usize::MAX));
            limit -= n as u64;
            if (&*link[to]).write_all(&buffer[..n]).is_err() {
                break;
            }
            if n < read || limit == 0 {
                std::thread::sleep(linger);
                break;
            }
        }
        close(&link);
    });
}

fn close(link: &Link) {
    for end in link {
        drop(end.shutdown(Shutdown::Both));
    }
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
        let connections = proxy.accepted();

        proxy.cut();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(store.read(&path).await.unwrap(), "before");
        store.write(&path, "after".into(), WriteMode::Overwrite).await.unwrap();
        assert_eq!(store.read(&path).await.unwrap(), "after");
        assert!(proxy.accepted() > connections, "new connections were made");
    }
}

/// A config for the test server through `proxy`, with small timeouts.
async fn through(proxy: &Proxy, max_retries: u32) -> SftpConfig {
    SftpConfig {
        host: "127.0.0.1".into(),
        port: proxy.port,
        host_key: SftpHostKey::Fingerprint(server_fingerprint().await),
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(2),
        max_retries,
        ..config(key_auth())
    }
}

server_test! {
    /// Every connection is cut once it has carried 1.5 MiB from the server (and lingered 1 s): a 3 MiB streamed
    /// read (1 MiB chunks) goes on from where each connection stopped, and yields the object exactly; libssh2's
    /// early "end of file" never ends it short.
    async fn a_streamed_read_resumes_after_lost_connections() {
        let direct = isolated(config(key_auth()), "resume").await;
        let path = p("big.bin");
        let data: Bytes = (0..3u64 << 20).map(byte_at).collect();
        direct.write(&path, data.clone(), WriteMode::Overwrite).await.unwrap();
        let proxy = Proxy::start((env("DRS_TEST_SFTP_HOST"), env("DRS_TEST_SFTP_PORT").parse().unwrap()));
        proxy.limit.store(3 << 19, Ordering::SeqCst);
        proxy.linger_ms.store(1000, Ordering::SeqCst);
        // Generous timeouts: this checks resumption, and the other tests of this binary (hundreds of
        // handshakes) can slow the server's logins past the proxied configuration's 2 s.
        let timeouts = Duration::from_secs(20);
        let config = SftpConfig { connect_timeout: timeouts, io_timeout: timeouts, ..through(&proxy, 6).await };
        let store = Store::new(SftpBackend::connect(config).await.unwrap());
        let store = store.child(direct.root().unwrap());
        let chunks: Vec<Bytes> = store.read_stream(&path).await.unwrap().map(Result::unwrap).collect().await;
        assert!(chunks.concat() == data, "read {} bytes, not the object's {}", chunks.concat().len(), data.len());
        assert!(proxy.accepted() >= 3, "the connections were cut: {}", proxy.accepted());
    }
}

server_test! {
    /// A connection cut anywhere in the SSH handshake, the login or the first requests fails as Unavailable
    /// (a transient failure, retried), never as a refusal or another error.
    async fn a_connection_cut_while_connecting_is_unavailable() {
        let proxy = Proxy::start((env("DRS_TEST_SFTP_HOST"), env("DRS_TEST_SFTP_PORT").parse().unwrap()));
        let config = through(&proxy, 0).await;
        let mut cut = 0;
        for limit in (0..8192).step_by(41) {
            proxy.limit.store(limit, Ordering::SeqCst);
            if let Err(err) = SftpBackend::connect(config.clone()).await {
                assert_eq!(err.kind(), ErrorKind::Unavailable, "cut after {limit} bytes: {err}");
                cut += 1;
            }
        }
        assert!(cut > 50, "only {cut} connections were cut before they were up");
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
            store.copy(&p("f/other.txt"), &p("f/once.txt"), false).await.map(|()| Default::default()),
            store.rename(&p("f/other.txt"), &p("f/once.txt"), false).await.map(|()| Default::default()),
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
        eprintln!("peak RSS grew by {:.1} MiB while streaming 256 MiB up and back", grown as f64 / f64::from(1 << 20));
        assert!(grown < 64 << 20, "peak RSS grew by {grown} bytes");
        store.delete(&path, false).await.unwrap();
    }
}

/// An OpenSSH server of the test's own, on a free port and with a host key of its own, to kill, restart and
/// stop: the shared test server is never touched. It serves the shared server's user, folder and client key.
struct PrivateServer {
    dir: tempfile::TempDir,
    port: u16,
    fingerprint: String,
    listener: Option<std::process::Child>,
}

impl PrivateServer {
    fn start() -> PrivateServer {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("host_ed25519");
        let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status();
        assert!(made.unwrap().success(), "ssh-keygen failed");
        let listed = Command::new("ssh-keygen").arg("-lf").arg(key.with_extension("pub")).output().unwrap();
        let fingerprint = String::from_utf8_lossy(&listed.stdout).split_whitespace().nth(1).unwrap().to_owned();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let settings = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nPidFile none\nAuthorizedKeysFile .ssh/authorized_keys\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nAllowUsers {}\nSubsystem sftp internal-sftp\n",
            key.display(),
            env("DRS_TEST_SFTP_USER")
        );
        std::fs::write(dir.path().join("sshd_config"), settings).unwrap();
        let mut server = PrivateServer { dir, port, fingerprint, listener: None };
        server.launch();
        server
    }

    /// Starts sshd and waits until it greets.
    fn launch(&mut self) {
        let config = self.dir.path().join("sshd_config");
        let sshd = Command::new("/usr/sbin/sshd").arg("-D").arg("-f").arg(config).spawn().unwrap();
        self.listener = Some(sshd);
        for _ in 0..100 {
            let mut banner = [0; 4];
            if TcpStream::connect(("127.0.0.1", self.port)).and_then(|mut s| s.read_exact(&mut banner)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the private sshd on port {} did not start", self.port);
    }

    /// Sends `signal` to the listener and every process under it (the sessions it serves).
    fn signal(&self, signal: &str) {
        let Some(listener) = &self.listener else { return };
        let mut pids = vec![listener.id()];
        let mut at = 0;
        while at < pids.len() {
            pids.extend(children(pids[at]));
            at += 1;
        }
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        // Sessions may have ended meanwhile: kill then says so, which is fine.
        Command::new("kill").arg(format!("-{signal}")).args(&pids).stderr(Stdio::null()).status().unwrap();
    }

    /// Kills the server and its sessions, as a crash or a reboot would.
    fn kill(&mut self) {
        self.signal("KILL");
        if let Some(mut listener) = self.listener.take() {
            listener.wait().unwrap();
        }
    }

    fn config(&self, io_timeout: Duration, max_retries: u32) -> SftpConfig {
        SftpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            host_key: SftpHostKey::Fingerprint(self.fingerprint.clone()),
            io_timeout,
            connect_timeout: io_timeout,
            max_retries,
            ..config(key_auth())
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill();
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter_map(|stat| {
            // "pid (name) state ppid ...": the name may hold spaces, so read after its closing parenthesis.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let parent: u32 = fields.nth(1)?.parse().ok()?;
            let child: u32 = stat.split_whitespace().next()?.parse().ok()?;
            (parent == pid).then_some(child)
        })
        .collect()
}

server_test! {
    /// A server killed (with every session it served) and started again is used again by the same store: its
    /// pooled sessions are dead, and the calls reconnect.
    async fn a_restarted_server_is_used_again() {
        let mut server = PrivateServer::start();
        let store = isolated(server.config(Duration::from_secs(2), 5), "restart").await;
        let path = p("r.txt");
        store.write(&path, "before".into(), WriteMode::Overwrite).await.unwrap();
        let reads = tokio::join!(store.read(&path), store.read(&path), store.read(&path));
        for read in <[_; 3]>::from(reads) {
            assert_eq!(read.unwrap(), "before");
        }
        server.kill();
        server.launch();
        assert_eq!(store.read(&path).await.unwrap(), "before");
        store.write(&path, "after".into(), WriteMode::Overwrite).await.unwrap();
        let mut stream = store.read_stream(&path).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), "after");
    }
}

server_test! {
    /// A server that stops answering (SIGSTOP: connections open, nothing read) fails each call as Unavailable
    /// once its timeouts and retries are spent, never hanging: each attempt takes one configured timeout.
    async fn a_server_that_stops_answering_fails_calls_within_their_timeouts() {
        let server = PrivateServer::start();
        let (timeout, retries) = (Duration::from_secs(1), 1);
        let store = isolated(server.config(timeout, retries), "stopped").await;
        let path = p("s.txt");
        store.write(&path, "x".into(), WriteMode::Overwrite).await.unwrap();
        server.signal("STOP");
        // Each attempt waits one timeout for the first answer that never comes; then a backoff of at most
        // 100 ms. Nothing waits for the dead session's goodbye.
        let limit = timeout * (retries + 1) + Duration::from_millis(500);
        for call in ["read", "write", "stream"] {
            let started = std::time::Instant::now();
            let attempt = async {
                match call {
                    "read" => store.read(&path).await.map(drop),
                    "write" => store.write(&path, "y".into(), WriteMode::Overwrite).await.map(drop),
                    _ => store.read_stream(&path).await.map(drop),
                }
            };
            let result = tokio::time::timeout(limit * 3, attempt).await.unwrap_or_else(|_| panic!("{call} hung"));
            let err = result.expect_err(call);
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{call}: {err}");
            eprintln!("{call} on a stopped server failed after {:?}: {err}", started.elapsed());
            assert!(started.elapsed() <= limit, "{call} took {:?}, more than {limit:?}", started.elapsed());
        }
        server.signal("CONT");
        assert_eq!(store.read(&path).await.unwrap(), "x", "once it answers again, the store uses it");
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
        assert!(debug.contains("Secret(***)"), "{debug}");
    }
    assert!(matches!(SftpHostKey::default(), SftpHostKey::KnownHosts(path) if path.ends_with(".ssh/known_hosts")));
}

#[tokio::test]
#[cfg_attr(not(test_sftp), ignore = "no SFTP test server: run `cargo xtask test`")]
async fn temporaries_of_killed_writers_are_leftovers_to_clean_up() {
    let store = isolated(config(key_auth()), "leftovers").await;
    store.write(&p("a/b.pkl"), "kept".into(), WriteMode::Overwrite).await.unwrap();
    // What a writer killed before its rename leaves: the server's files are on this machine.
    let root = store.root().expect("an isolated store has a root").as_str().to_owned();
    let folder = std::path::Path::new(&env("DRS_TEST_SFTP_ROOT")).join(root).join("a");
    std::fs::write(folder.join(".drs-tmp-00000000deadbeef"), "half").unwrap();
    let found = store.leftovers(None).await.unwrap();
    assert_eq!(found.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["a/.drs-tmp-00000000deadbeef"]);
    assert_eq!(store.clean_up(None, Duration::from_secs(3600)).await.unwrap(), [], "too young to remove");
    assert_eq!(store.clean_up(None, Duration::ZERO).await.unwrap(), found);
    assert!(!folder.join(".drs-tmp-00000000deadbeef").exists());
    assert_eq!(store.read(&p("a/b.pkl")).await.unwrap(), "kept");
}

/// The lease file of the object at `path` of `store`, on this machine, where the test server keeps its files.
fn lease_file(store: &Store, path: &str) -> std::path::PathBuf {
    let full = std::path::Path::new(&env("DRS_TEST_SFTP_ROOT")).join(store.root().unwrap().as_str()).join(path);
    let name = full.file_name().unwrap().to_str().unwrap().to_owned();
    full.with_file_name(format!(".drs-tmp-lease-{name}"))
}

server_test! {
    /// A lease left by a writer killed while holding it is broken once it has expired (by the server's clock),
    /// and leaves nothing behind; until then `leftovers` shows it.
    async fn an_expired_lease_is_broken() {
        let store = isolated(config(key_auth()), "lease-expired").await;
        store.write(&p("v/pointer.json"), "1".into(), WriteMode::Overwrite).await.unwrap();
        let lease = lease_file(&store, "v/pointer.json");
        std::fs::write(&lease, "12345-00000000deadbeef").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(120);
        std::fs::File::options().write(true).open(&lease).unwrap().set_modified(old).unwrap();
        let found = store.leftovers(None).await.unwrap();
        assert_eq!(found.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["v/.drs-tmp-lease-pointer.json"]);
        assert_eq!(store.list(None, true).collect::<Vec<_>>().await.len(), 1, "listings skip the lease");

        let (_, version) = store.read_for_update(&p("v/pointer.json")).await.unwrap();
        let path = p("v/pointer.json");
        let write = store.write(&path, "2".into(), WriteMode::IfMatch(version));
        tokio::time::timeout(Duration::from_secs(10), write).await.expect("no wait for an expired lease").unwrap();
        assert_eq!(store.read(&p("v/pointer.json")).await.unwrap(), "2");
        let folder = format!("{}/v", store.root().unwrap());
        assert_eq!(names_on_server(&folder), ["pointer.json"], "the broken lease is gone");
    }
}

server_test! {
    /// A lease held by a live writer (recent) holds conditional writers back until it is released; plain
    /// writes do not wait for it.
    async fn a_held_lease_makes_conditional_writers_wait() {
        let store = isolated(config(key_auth()), "lease-held").await;
        store.write(&p("v/pointer.json"), "1".into(), WriteMode::Overwrite).await.unwrap();
        let lease = lease_file(&store, "v/pointer.json");
        std::fs::write(&lease, "12345-00000000deadbeef").unwrap();
        let (_, version) = store.read_for_update(&p("v/pointer.json")).await.unwrap();
        let (writer, path) = (store.clone(), p("v/pointer.json"));
        let waiting = tokio::spawn(async move { writer.write(&path, "2".into(), WriteMode::IfMatch(version)).await });
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!waiting.is_finished(), "a conditional write went ahead of a held lease");
        assert_eq!(store.read(&p("v/pointer.json")).await.unwrap(), "1");
        std::fs::remove_file(&lease).unwrap();
        let written = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("released").unwrap();
        written.expect("the write once the lease is released");
        assert_eq!(store.read(&p("v/pointer.json")).await.unwrap(), "2");
        std::fs::write(&lease, "12345-00000000deadbeef").unwrap();
        let path = p("v/pointer.json");
        let plain = store.write(&path, "3".into(), WriteMode::Overwrite);
        tokio::time::timeout(Duration::from_secs(5), plain).await.expect("plain writes take no lease").unwrap();
        std::fs::remove_file(&lease).unwrap();
    }
}

server_test! {
    /// `head`, `get`, listings and writes report one e-tag; conditional writes in quick succession (the
    /// server's times have whole seconds) each make a new one.
    async fn e_tags_agree_and_never_repeat_among_conditional_writes() {
        use futures::TryStreamExt;
        use store_core::{ListEntry, UpdateVersion};

        let store = isolated(config(key_auth()), "e-tags").await;
        let path = p("v/pointer.json");
        let mut written = store.write(&path, "00".into(), WriteMode::Overwrite).await.unwrap();
        let mut seen = std::collections::HashSet::new();
        for round in 1..=10u32 {
            let (_, version) = store.read_for_update(&path).await.unwrap();
            assert_eq!(version, UpdateVersion::from(written.clone()), "a write reports what a read sees");
            assert_eq!(store.head(&path).await.unwrap().e_tag, version.e_tag, "head and get agree");
            let listed: Vec<ListEntry> = store.list(None, true).try_collect().await.unwrap();
            assert!(matches!(&listed[..], [ListEntry::Object(m)] if m.e_tag == version.e_tag), "{listed:?}");
            assert!(seen.insert(version.e_tag.clone().unwrap()), "round {round}: an e-tag came back");
            let full = store.root().unwrap().join(&path);
            let options = store_core::GetOptions { stream: true, ..Default::default() };
            let streamed = store.backend().get_opts(&full, options);
            assert_eq!(streamed.await.unwrap().e_tag, version.e_tag, "a streamed read agrees");
            written = store.write(&path, format!("{round:02}").into(), WriteMode::IfMatch(version)).await.unwrap();
        }
        let big = stream::iter((0..4u8).map(|i| Ok(Bytes::from(vec![i; 1 << 20])))).boxed();
        let (_, version) = store.read_for_update(&path).await.unwrap();
        let streamed = store.write_stream(&path, big, WriteMode::IfMatch(version.clone())).await.unwrap();
        assert_eq!(store.head(&path).await.unwrap().e_tag, streamed.e_tag, "a streamed conditional write");
        let late = stream::iter([Ok(Bytes::from("late"))]).boxed();
        let err = store.write_stream(&path, late, WriteMode::IfMatch(version)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
        assert_eq!(store.head(&path).await.unwrap().size, 4 << 20);
    }
}
