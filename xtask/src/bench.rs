//! `cargo xtask bench`: benches/bench.py with its own pinned venv (benches/requirements.txt, in
//! `<target>/xtask/bench-venv`) and the wheel built for release, against an S3 server on 127.0.0.1
//! (benches/s3-server: s3s-fs on a local folder), reached directly and through proxies that delay every byte
//! as a network to a remote store would, one per round trip in [`ROUND_TRIPS`]. Its logs live in `<target>/xtask/bench/`, its objects in memory (see
//! `s3_data`).

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::run::{Error, Result, run, step};
use crate::servers::{Attempt, Processes, fresh_dir, http_response, io_error};
use crate::{Dirs, python};

const BUCKET: &str = "bench";
const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";
const REGION: &str = "us-east-1";
/// The round trips the S3 server is also reached with, each through a proxy delaying half of it each way.
const ROUND_TRIPS: [Duration; 2] = [Duration::from_millis(20), Duration::from_millis(80)];
/// The most the proxy reads at once, and so the largest chunk it queues.
const CHUNK: usize = 64 << 10;
/// Chunks queued per direction and connection (at most 64 MiB): when the receiving side falls behind, the
/// sending side waits, as over a real network, rather than the proxy buffering without bound.
const QUEUE: usize = 1024;

/// Builds what the benchmark runs, starts the S3 server and the latency proxies in front of it, runs
/// benches/bench.py with `bench_args`, and stops them all (also when a step fails).
pub fn bench(bench_args: &[&str]) -> Result {
    let mut dirs = Dirs::new()?;
    let state = dirs.target.join("xtask").join("bench");
    let venv = dirs.target.join("xtask").join("bench-venv");
    let requirements = dirs.root.join("benches").join("requirements.txt");
    let python =
        step("benchmark venv", || python::ensure_venv(&dirs, &venv, &requirements, &python::BasePython::on_path()?))?;
    step("build and install the wheel (release)", || {
        python::build_and_install_wheel(&dirs, &python, &python, "release")
    })?;
    // The wheel's profile, so that the two builds share the dependencies they compile alike.
    step("build the object_store_limit example (release)", || {
        let example = ["-p", "store-backends", "--features", "s3", "--example", "object_store_limit"];
        run(dirs.cargo().args(["build", "--release"]).args(example))
    })?;
    let server_binary = step("build the S3 server (release)", || build_s3_server(&dirs))?;
    // Declared in this order, they are dropped the other way round: the proxies stop, then the server.
    let server = step("start the S3 server", || start_s3_server(&server_binary, &state).map_err(Error::new))?;
    let delayed = step("start the latency proxies", || {
        ROUND_TRIPS
            .iter()
            .map(|&round_trip| {
                let proxy = DelayProxy::start(server.port, round_trip / 2)
                    .map_err(|e| Error::new(format!("cannot start a proxy to the S3 server: {e}")))?;
                println!("    127.0.0.1:{} adds {} ms to each round trip", proxy.port, round_trip.as_millis());
                Ok((round_trip, proxy))
            })
            .collect::<Result<Vec<_>>>()
    })?;

    let endpoint = |port: u16| format!("http://127.0.0.1:{port}");
    let latency_endpoints = delayed
        .iter()
        .map(|(round_trip, proxy)| format!("{}={}", round_trip.as_millis(), endpoint(proxy.port)))
        .collect::<Vec<_>>()
        .join(",");
    let limit = dirs.target.join("release").join("examples").join("object_store_limit");
    dirs.env = vec![
        ("BENCH_S3_ENDPOINT", endpoint(server.port)),
        // Round trip in ms = endpoint, comma-separated.
        ("BENCH_S3_LATENCY_ENDPOINTS", latency_endpoints),
        ("BENCH_S3_BUCKET", BUCKET.into()),
        ("BENCH_S3_KEY", KEY.into()),
        ("BENCH_S3_SECRET", SECRET.into()),
        ("BENCH_S3_REGION", REGION.into()),
        ("BENCH_LIMIT_BIN", limit.to_string_lossy().into_owned()),
        // Where the server creates its files, for the benchmark's quiet-disk wait.
        ("BENCH_S3_DATA", server.data.join(BUCKET).to_string_lossy().into_owned()),
    ];
    let ran = step("benches/bench.py", || {
        run(dirs.command(&python).args(["benches/bench.py", "--out", "benches/results"]).args(bench_args))
    });
    // The server's objects go now rather than at the next run's start: removing thousands of
    // files slows creating files for minutes after (see bench.py's `wait_for_quiet_disk`).
    drop(delayed);
    let data = server.data.clone();
    drop(server);
    if let Err(e) = fs::remove_dir_all(&data) {
        println!("    could not remove {}: {e}", data.display());
    }
    ran
}

/// benches/s3-server built for release, into the target folder the wheel's build uses; returns the binary. It is
/// a workspace of its own (with its own Cargo.lock), so that the tests never build s3s.
fn build_s3_server(dirs: &Dirs) -> Result<PathBuf> {
    let manifest = dirs.root.join("benches").join("s3-server").join("Cargo.toml");
    run(dirs.cargo().args(["build", "--release", "--locked", "--manifest-path"]).arg(&manifest))?;
    Ok(dirs.target.join("release").join("bench-s3-server"))
}

/// The S3 server, and the port it answers on; dropping this stops it.
struct S3Server {
    /// Kept for its drop.
    _processes: Processes,
    port: u16,
    /// Where it keeps the objects.
    data: PathBuf,
}

/// The S3 server on a free port, over a fresh, empty bucket (see `s3_data`), once it answers.
fn start_s3_server(binary: &Path, state: &Path) -> Attempt<S3Server> {
    let mut processes = Processes::new(state, "the benchmark's S3 server")?;
    let data = fresh_dir(s3_data(state))?;
    // Each folder of its root is a bucket.
    let bucket = data.join(BUCKET);
    fs::create_dir(&bucket).map_err(io_error("create", &bucket))?;
    let port = processes.free_port()?;
    let mut server = Command::new(binary);
    processes.spawn("s3", "bench-s3-server", server.arg(port.to_string()).args([KEY, SECRET]).arg(&data))?;
    // Any answer will do: an unsigned request is refused (403), but by a server that is up.
    processes.wait("s3", || {
        if http_response(port, "GET", "/", "")?.starts_with("HTTP/") { Ok(()) } else { Err("no HTTP response".into()) }
    })?;
    println!("    S3 server up on 127.0.0.1:{port}");
    Ok(S3Server { _processes: processes, port, data })
}

/// Where the S3 server keeps its objects: in memory (`/dev/shm`) where the machine has it, else `<state>/s3-data`.
/// The server stands in for a remote store, so the VM's disk should not set its pace: writing its objects to ext4
/// made Parquet writes over S3 take 170-203 MiB/s from round to round, against 200-203 into memory side by side.
/// The benchmark removes each large round's objects once the round is over, so it holds one round's at a time.
fn s3_data(state: &Path) -> PathBuf {
    let memory = Path::new("/dev/shm");
    if memory.is_dir() { memory.join("dagster-remote-store-bench-s3-data") } else { state.join("s3-data") }
}

/// A TCP proxy on a free port of 127.0.0.1 in front of 127.0.0.1:`upstream`, within this process. Each chunk
/// it reads, from either side, goes on to the other side `delay` after it arrived: a delay line that adds
/// latency and takes no throughput, so a request and its response take 2 × `delay` longer, and a long transfer
/// only 2 × `delay` longer too. It acknowledges what it receives at once (see `quickack`). Dropping it stops
/// taking connections.
struct DelayProxy {
    port: u16,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl DelayProxy {
    fn start(upstream: u16, delay: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let acceptor = thread::Builder::new().name("delay-proxy".into()).spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                // A failed accept or connect loses that one connection, not the proxy.
                let _ = client.and_then(|client| bridge(client, upstream, delay));
            }
        })?;
        Ok(DelayProxy { port, stopping, acceptor: Some(acceptor) })
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // A connection wakes the accept loop, which then sees `stopping`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Bridges `client` to a new connection to 127.0.0.1:`upstream`, with a delay line each way.
fn bridge(client: TcpStream, upstream: u16, delay: Duration) -> io::Result<()> {
    let server = TcpStream::connect(("127.0.0.1", upstream))?;
    // Each chunk goes out as soon as it is due, not held back to be merged with the next.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    delay_line(client.try_clone()?, server.try_clone()?, delay)?;
    delay_line(server, client, delay)
}

/// Forwards what `from` sends to `to`, each chunk `delay` after it arrived. A reader thread stamps each chunk
/// with its due time and queues it, a writer thread sleeps until it is due and writes it, so reading goes on
/// while chunks wait. An end of stream is passed on once the queue is written; a failed write ends the
/// connection both ways.
fn delay_line(mut from: TcpStream, mut to: TcpStream, delay: Duration) -> io::Result<()> {
    let (queue, chunks) = mpsc::sync_channel::<(Instant, Vec<u8>)>(QUEUE);
    let source = from.try_clone()?;
    thread::Builder::new().name("delay-read".into()).spawn(move || {
        let mut buffer = vec![0; CHUNK];
        // Until the end of the stream, an error, or the writer giving up; the writer then sees the queue end.
        while let Ok(read @ 1..) = quickack(&from).and_then(|()| from.read(&mut buffer)) {
            if queue.send((Instant::now() + delay, buffer[..read].to_vec())).is_err() {
                break;
            }
        }
    })?;
    thread::Builder::new().name("delay-write".into()).spawn(move || {
        for (due, chunk) in chunks {
            thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                let _ = to.shutdown(Shutdown::Both);
                let _ = source.shutdown(Shutdown::Both);
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    })?;
    Ok(())
}

/// Makes `stream` acknowledge the next data it receives at once. Linux otherwise holds an acknowledgement back
/// for up to 40 ms, hoping to send it along with a reply, and a sender with Nagle's algorithm on that writes a
/// message in two pieces (s3s-fs's own binary writes a response's head and body so) waits for it before the
/// second: each GET would take 40 ms more (44 ms instead of 2.4 ms for 10 kB here). The setting wears off, so
/// it is made before every read.
#[cfg(target_os = "linux")]
fn quickack(stream: &TcpStream) -> io::Result<()> {
    use std::ffi::{c_int, c_void};
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn setsockopt(socket: c_int, level: c_int, name: c_int, value: *const c_void, length: u32) -> c_int;
    }
    const IPPROTO_TCP: c_int = 6;
    const TCP_QUICKACK: c_int = 12;
    let on: c_int = 1;
    // SAFETY: the socket is open while `stream` lives, and `on` is a c_int of the length passed.
    let done = unsafe {
        setsockopt(stream.as_raw_fd(), IPPROTO_TCP, TCP_QUICKACK, (&raw const on).cast(), size_of::<c_int>() as u32)
    };
    match done {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Elsewhere acknowledgements take their usual course.
#[cfg(not(target_os = "linux"))]
fn quickack(_stream: &TcpStream) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough to measure, short enough for a fast test.
    const TEST_DELAY: Duration = Duration::from_millis(20);

    /// An echo server on a free port of 127.0.0.1: each connection gets back what it sends, then the end.
    fn echo_server() -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = stream.try_clone().unwrap();
                thread::spawn(move || io::copy(&mut reader, &mut stream).unwrap());
            }
        });
        port
    }

    #[test]
    fn proxy_delays_round_trips_but_not_throughput() {
        let proxy = DelayProxy::start(echo_server(), TEST_DELAY).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        client.set_nodelay(true).unwrap();

        // A request and its response each wait once.
        let start = Instant::now();
        client.write_all(b"ping").unwrap();
        let mut answer = [0; 4];
        client.read_exact(&mut answer).unwrap();
        let round_trip = start.elapsed();
        assert_eq!(&answer, b"ping");
        assert!(round_trip >= 2 * TEST_DELAY, "a round trip took {round_trip:?}, less than 2 × {TEST_DELAY:?}");

        // 32 MiB there and back, intact. Sleeping per chunk would take at least `per_chunk` (as chunks are at
        // most CHUNK bytes); a delay line takes about 2 × TEST_DELAY plus the copying.
        let sent: Vec<u8> = (0..32 << 20).map(|i: usize| (i % 251) as u8).collect();
        let per_chunk = TEST_DELAY * (2 * sent.len() / CHUNK) as u32;
        let start = Instant::now();
        let sender = {
            let (mut client, sent) = (client.try_clone().unwrap(), sent.clone());
            thread::spawn(move || {
                client.write_all(&sent).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut received = Vec::with_capacity(sent.len());
        client.read_to_end(&mut received).unwrap();
        let elapsed = start.elapsed();
        sender.join().unwrap();
        assert!(received == sent, "received {} bytes, not the {} sent", received.len(), sent.len());
        assert!(
            elapsed < per_chunk / 10,
            "32 MiB there and back took {elapsed:?}; per chunk it would be {per_chunk:?}"
        );
    }

    /// A server that answers each 4-byte request as s3s-fs's own binary does: a head and a body in two writes,
    /// with Nagle's algorithm on.
    fn split_answer_server() -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let mut stream = listener.accept().unwrap().0;
            let mut request = [0; 4];
            while stream.read_exact(&mut request).is_ok() {
                stream.write_all(b"head").unwrap();
                stream.write_all(b"body").unwrap();
            }
        });
        port
    }

    #[test]
    fn proxy_acknowledges_at_once() {
        let proxy = DelayProxy::start(split_answer_server(), Duration::ZERO).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        client.set_nodelay(true).unwrap();
        let start = Instant::now();
        for _ in 0..10 {
            client.write_all(b"ping").unwrap();
            let mut answer = [0; 8];
            client.read_exact(&mut answer).unwrap();
            assert_eq!(&answer, b"headbody");
        }
        // Each body waiting for a delayed acknowledgement would add about 40 ms.
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_millis(100), "10 requests took {elapsed:?}");
    }
}
