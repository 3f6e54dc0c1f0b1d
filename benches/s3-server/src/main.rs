//! The benchmark's S3 server: s3s-fs's S3 over a folder, exactly as its own binary serves it, but with
//! TCP_NODELAY on every connection.
//!
//! s3s-fs writes a response's head and body separately, and with Nagle's algorithm on the body waits for the
//! head's acknowledgement, which Linux holds back for up to 40 ms: every GET would take 40 ms more. Setting
//! TCP_NODELAY here, rather than putting a proxy in front that acknowledges at once, keeps a second copy of every
//! byte off the two cores the client and the server share.
//!
//! ```text
//! bench-s3-server PORT ACCESS_KEY SECRET_KEY DATA_DIR
//! ```
//! Listens on 127.0.0.1:PORT; each folder of DATA_DIR is a bucket.

use std::path::PathBuf;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use s3s_fs::FileSystem;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: bench-s3-server PORT ACCESS_KEY SECRET_KEY DATA_DIR";
    let [port, key, secret, root] =
        <[String; 4]>::try_from(std::env::args().skip(1).collect::<Vec<_>>()).map_err(|_| usage)?;
    let port: u16 = port.parse().map_err(|_| format!("PORT must be a port number, not {port:?}"))?;

    let mut service = S3ServiceBuilder::new(
        FileSystem::new(PathBuf::from(&root)).map_err(|e| format!("cannot serve {root}: {e:?}"))?,
    );
    service.set_auth(SimpleAuth::from_single(key, secret));
    let service = service.build();

    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let http = Builder::new(TokioExecutor::new());
    loop {
        // A failed accept loses that one connection, not the server.
        let Ok((socket, _)) = listener.accept().await else { continue };
        socket.set_nodelay(true)?;
        let connection = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}
