//! `posix-rename@openssh.com` (atomic replace) through libssh2 directly: the one
//! call of the SFTP backend that ssh2 does not wrap, so the one place it needs
//! `unsafe`.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_ulong};

use libssh2_sys as raw;
use ssh2::{ErrorCode, Session};

unsafe extern "C" {
    // Added in libssh2 1.11.1 (libssh2_sftp.h), which libssh2-sys builds and links statically, but not
    // declared by libssh2-sys.
    fn libssh2_sftp_posix_rename_ex(
        sftp: *mut raw::LIBSSH2_SFTP,
        source: *const c_char,
        source_len: usize,
        dest: *const c_char,
        dest_len: usize,
    ) -> c_int;
}

/// An SFTP channel of our own for `posix-rename@openssh.com` (atomic replace): libssh2 implements it, but
/// ssh2 exposes neither the call nor the raw handle of its own channel.
pub(super) struct PosixRenamer {
    handle: *mut raw::LIBSSH2_SFTP,
    /// Keeps the session alive until the handle is shut down, and provides its lock.
    session: Session,
}

// SAFETY: the handle is used only while holding the session's lock, as ssh2's own (Send) handles are.
unsafe impl Send for PosixRenamer {}

impl PosixRenamer {
    pub(super) fn new(session: &Session) -> Result<Self, ssh2::Error> {
        let handle = {
            let mut locked = session.raw();
            // SAFETY: the session is connected, logged in and locked for the call.
            unsafe { raw::libssh2_sftp_init(&raw mut *locked) }
        };
        if handle.is_null() {
            return Err(ssh2::Error::last_session_error(session).unwrap_or_else(ssh2::Error::unknown));
        }
        Ok(Self { handle, session: session.clone() })
    }

    /// Renames `from` to `to`, atomically replacing `to`. Fails with `LIBSSH2_FX_OP_UNSUPPORTED` (without
    /// asking) if the server did not announce the extension.
    pub(super) fn rename(&self, from: &str, to: &str) -> Result<(), ssh2::Error> {
        let locked = self.session.raw();
        // SAFETY: `handle` is live until Drop, the session is locked for the call, and both buffers outlive it
        // with their exact lengths given (libssh2 needs no NUL terminator here).
        let rc = unsafe {
            libssh2_sftp_posix_rename_ex(self.handle, from.as_ptr().cast(), from.len(), to.as_ptr().cast(), to.len())
        };
        if rc == 0 {
            return Ok(());
        }
        if rc == raw::LIBSSH2_ERROR_SFTP_PROTOCOL {
            // SAFETY: as above; reads the status the server answered.
            let status: c_ulong = unsafe { raw::libssh2_sftp_last_error(self.handle) };
            return Err(ssh2::Error::from_errno(ErrorCode::SFTP(c_int::try_from(status).unwrap_or(-1))));
        }
        drop(locked);
        Err(ssh2::Error::from_session_error(&self.session, rc))
    }
}

impl Drop for PosixRenamer {
    fn drop(&mut self) {
        let _locked = self.session.raw();
        // SAFETY: `handle` came from libssh2_sftp_init on this session, which our clone keeps alive; it is shut
        // down exactly once, here, with the session locked.
        unsafe { raw::libssh2_sftp_shutdown(self.handle) };
    }
}
