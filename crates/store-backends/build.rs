//! Server-backed tests run only where `cargo xtask test` (or you) started the
//! server: `DRS_TEST_SERVERS=s3,azure,gcs,sftp` lists the running ones, and each
//! listed name becomes a `test_<name>` cfg. Tests of an unlisted server are
//! compiled as ignored, with the reason, so a missing server never counts as a pass.
//! Only the list is tracked here; addresses and credentials are read at run time.

fn main() {
    println!("cargo::rerun-if-env-changed=DRS_TEST_SERVERS");
    let running = std::env::var("DRS_TEST_SERVERS").unwrap_or_default();
    for server in ["s3", "azure", "gcs", "sftp"] {
        println!("cargo::rustc-check-cfg=cfg(test_{server})");
        if running.split(',').any(|s| s.trim() == server) {
            println!("cargo::rustc-cfg=test_{server}");
        }
    }
}
