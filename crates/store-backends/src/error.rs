//! Each backend module's own error type, and the one place each maps onto
//! [`store_core::ErrorKind`]: a module builds its typed error, and `?` or
//! `.into()` turns it into a [`store_core::Error`] through `From`, with the
//! typed error kept as the source. The messages are the store-relative texts
//! users see, never a credential.
//!
//! object_store's own errors are classified here too; where that reads their
//! texts (`cloud::classify`), tests pin the texts.

use store_core::{Error, ErrorKind};

/// Where a module error lands among the store's kinds.
trait Classified: std::error::Error + Send + Sync + Sized + 'static {
    fn kind(&self) -> ErrorKind;

    fn into_store_error(self) -> Error {
        Error::new(self.kind(), self.to_string()).with_source(self)
    }
}

#[cfg(feature = "local")]
pub(crate) use local::LocalError;
pub(crate) use object_store_adapter::ObjectStoreError;
#[cfg(feature = "sftp")]
pub(crate) use sftp::{SftpError, ssh_kind};
#[cfg(any(feature = "s3", feature = "gcs"))]
pub(crate) use uploads::UploadsError;

mod object_store_adapter {
    use store_core::{Error, ErrorKind};

    use super::Classified;
    use crate::uri::redact;

    /// What goes wrong in the adapter over object_store (S3, Azure, GCS, and local files).
    #[derive(Debug, thiserror::Error)]
    pub(crate) enum ObjectStoreError {
        /// object_store failed; the common kinds get fixed texts (object_store's name
        /// backend-absolute paths), others its text with URL query strings, where
        /// signatures travel, redacted.
        #[error("{}", store_message(.0))]
        Store(#[from] object_store::Error),
        /// A write answered "not found": an object store says so only when the
        /// bucket or container is missing.
        #[error("{0} does not exist")]
        MissingContainer(String),
        /// A multipart upload whose completion, retried, found the upload gone:
        /// an earlier completion went unanswered, or the upload was discarded.
        #[error(
            "the upload was gone when its completion was retried, so an earlier completion went unanswered: \
             the object holds this write or the one before it ({})",
            redact(&.0.to_string())
        )]
        UploadGone(#[source] object_store::Error),
        /// A ranged read found another version of the object.
        #[error("the object was replaced while it was being read")]
        Replaced,
        /// A conditional write found the object at another version, or gone.
        #[error("the object is no longer at the version the write expected: it was replaced or deleted")]
        Changed(#[source] object_store::Error),
        /// A conditional write given neither an e-tag nor a version to compare.
        #[error("a conditional write needs the e-tag or version of the object it replaces (see read_for_update)")]
        NoVersion,
        /// A conditional write streamed beyond one part: it would need a multipart upload, which
        /// cannot be made conditional.
        #[error(
            "a conditional write (IfMatch) is sent in one request: a stream larger than one part \
             ({part_size} bytes) is refused; write it from one buffer"
        )]
        ConditionalStream { part_size: usize },
        /// A response body that ended before the size it announced.
        #[error("the object's body ended after {seen} of its {size} bytes")]
        CutShort { seen: u64, size: u64 },
        /// A path object_store refuses; a `StorePath` is stricter, so only a bug gets here.
        #[error("{0}")]
        Path(#[from] object_store::path::Error),
    }

    fn store_kind(err: &object_store::Error) -> ErrorKind {
        use object_store::Error as E;
        match err {
            E::NotFound { .. } => ErrorKind::NotFound,
            E::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            E::Precondition { .. } | E::NotModified { .. } => ErrorKind::Precondition,
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::PermissionDenied,
            E::InvalidPath { .. } => ErrorKind::InvalidPath,
            #[cfg(any(feature = "s3", feature = "azure", feature = "gcs"))]
            other => crate::cloud::classify(other).unwrap_or(ErrorKind::Other),
            #[cfg(not(any(feature = "s3", feature = "azure", feature = "gcs")))]
            _ => ErrorKind::Other,
        }
    }

    fn store_message(err: &object_store::Error) -> String {
        match store_kind(err) {
            ErrorKind::NotFound => "no such object".to_owned(),
            ErrorKind::AlreadyExists => "an object already exists at the target".to_owned(),
            _ => redact(&err.to_string()),
        }
    }

    impl Classified for ObjectStoreError {
        fn kind(&self) -> ErrorKind {
            match self {
                ObjectStoreError::Store(err) => store_kind(err),
                ObjectStoreError::MissingContainer(_) => ErrorKind::NotFound,
                ObjectStoreError::UploadGone(_) | ObjectStoreError::CutShort { .. } => ErrorKind::Unavailable,
                ObjectStoreError::Replaced | ObjectStoreError::Changed(_) => ErrorKind::Precondition,
                ObjectStoreError::NoVersion | ObjectStoreError::ConditionalStream { .. } => ErrorKind::Other,
                ObjectStoreError::Path(_) => ErrorKind::InvalidPath,
            }
        }
    }

    impl From<ObjectStoreError> for Error {
        fn from(err: ObjectStoreError) -> Self {
            err.into_store_error()
        }
    }
}

#[cfg(feature = "local")]
mod local {
    use std::io;
    use std::path::PathBuf;

    use store_core::{Error, ErrorKind, StorePath};

    use super::Classified;

    /// What goes wrong in the local filesystem backend.
    #[derive(Debug, thiserror::Error)]
    pub(crate) enum LocalError {
        /// The root folder cannot be created, resolved or opened.
        #[error("cannot {action} local root {}: {source}", root.display())]
        Root { action: &'static str, root: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
        /// A name the backend keeps for its temporary files.
        #[error("{0:?}: names ending in '#' and digits are reserved for temporary files")]
        ReservedName(StorePath),
        /// A path through a symbolic link that leads out of the root.
        #[error("{link:?} is a symbolic link leading outside the local root {}", root.display())]
        Escape {
            /// The link, relative to the root.
            link: String,
            root: PathBuf,
        },
        /// Metadata asked of a filesystem that cannot keep it.
        #[error("this local filesystem has no extended attributes for metadata")]
        NoExtendedAttributes,
        /// A leftover to remove that is no temporary file of ours.
        #[error("{0:?} is not a temporary file")]
        NotTemporary(String),
        /// A conditional write found another file at the target, or none.
        #[error("the object is no longer at the version the write expected: it was replaced or deleted")]
        Changed,
        /// A conditional write without the e-tag to compare.
        #[error("a conditional write needs the e-tag of the object it replaces (see read_for_update)")]
        NoETag,
        /// The blocking task doing the I/O panicked or was cancelled.
        #[error("the local I/O task failed: {0}")]
        Task(#[from] tokio::task::JoinError),
        /// The filesystem refused; the common kinds get the fixed texts every backend uses.
        #[error("{}", io_message(.0))]
        Io(#[from] io::Error),
    }

    fn io_message(err: &io::Error) -> String {
        match err.kind() {
            io::ErrorKind::NotFound => "no such object".to_owned(),
            io::ErrorKind::AlreadyExists => "an object already exists at the target".to_owned(),
            _ => err.to_string(),
        }
    }

    impl Classified for LocalError {
        fn kind(&self) -> ErrorKind {
            match self {
                LocalError::ReservedName(_) | LocalError::NotTemporary(_) => ErrorKind::InvalidPath,
                LocalError::Escape { .. } => ErrorKind::PermissionDenied,
                LocalError::Changed => ErrorKind::Precondition,
                LocalError::Io(err) => match err.kind() {
                    io::ErrorKind::NotFound => ErrorKind::NotFound,
                    io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
                    io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                    _ => ErrorKind::Other,
                },
                LocalError::Root { .. }
                | LocalError::NoExtendedAttributes
                | LocalError::NoETag
                | LocalError::Task(_) => ErrorKind::Other,
            }
        }
    }

    impl From<LocalError> for Error {
        fn from(err: LocalError) -> Self {
            err.into_store_error()
        }
    }
}

#[cfg(feature = "sftp")]
mod sftp {
    use std::io;

    use store_core::{Error, ErrorKind};

    use super::Classified;

    /// What goes wrong in the SFTP backend.
    #[derive(Debug, thiserror::Error)]
    pub(crate) enum SftpError {
        /// The configured base path is not an absolute folder.
        #[error("the SFTP base path must be an absolute folder, not {0:?}")]
        BasePath(String),
        /// The base folder cannot be created; its kind is the failed call's.
        #[error("cannot create the base folder {folder:?}: {}", source.message())]
        BaseFolder { folder: String, source: Error },
        /// A name the backend keeps for its temporary files.
        #[error("names starting with {prefix:?} are reserved for temporary files")]
        ReservedName { prefix: &'static str },
        /// A leftover to remove that is no temporary file of ours.
        #[error("{0:?} is not a temporary file")]
        NotTemporary(String),
        /// No TCP connection to the server.
        #[error("cannot connect to {server}: {source}")]
        Connect { server: String, source: io::Error },
        /// The SSH session failed at one step of setting it up.
        #[error("{step} {server} failed: {}", source.message())]
        Session { step: &'static str, server: String, source: ssh2::Error },
        /// The server sent no host key, or libssh2 cannot hash it.
        #[error("{0}")]
        HostKeyUnreadable(&'static str),
        /// The server's host key is not the one configured or known; the text says how to fix it.
        #[error("{0}")]
        HostKeyRefused(String),
        /// The connection dropped while the server was deciding on the login.
        #[error("the connection to {server} failed during login: {}", source.message())]
        LoginLost { server: String, source: ssh2::Error },
        /// The server refused the login.
        #[error("{server} refused {method} login as {user:?}: {reason}")]
        LoginRefused { server: String, method: &'static str, user: String, reason: String },
        /// A request the server answered with an SFTP status, or a session that failed.
        #[error("{}", ssh_message(.0))]
        Ssh(#[from] ssh2::Error),
        /// A plain rename refused because the target exists.
        #[error("an object already exists at the target")]
        AlreadyExists(#[source] ssh2::Error),
        /// A read or write of file contents failed; `refused` if the server answered it with a status.
        #[error("{}", transfer_message(.source))]
        Transfer { refused: bool, source: io::Error },
        /// The path is a folder or a special file.
        #[error("no such object (the path is a folder or special file)")]
        NotAFile,
        /// A range that starts at or past the end of the object.
        #[error("byte range starts at {start}, beyond the end of the object ({size} bytes)")]
        RangeBeyondEnd { start: u64, size: u64 },
        /// A resumed read found another file at the path.
        #[error("the object was replaced while it was being read")]
        Replaced,
        /// A conditional write found the object at another version, or gone.
        #[error("the object is no longer at the version the write expected: it was replaced or deleted")]
        Changed,
        /// A conditional write without the e-tag to compare.
        #[error("a conditional write needs the e-tag of the object it replaces (see read_for_update)")]
        NoETag,
        /// A server that gives no modification times, of which e-tags are made.
        #[error("the SFTP server gives no modification times, so conditional writes cannot tell versions apart")]
        NoTimes,
        /// Other conditional writers of the object kept its lease for too long. Not `Unavailable`: the
        /// connection is fine, and retrying at once would only wait again.
        #[error("other conditional writers of the object held its lease for over {} s", waited.as_secs())]
        LeaseBusy { waited: std::time::Duration },
        /// A conditional write that held the lease too long to rename safely (the server is slow).
        #[error("the conditional write held the object's lease too long to finish safely; nothing was written")]
        LeaseOverdue,
        /// The caller dropped a streamed write before its end.
        #[error("the streamed write was cancelled")]
        Cancelled,
        /// The thread running a blocking call panicked.
        #[error("an SFTP worker thread failed")]
        Worker(#[source] tokio::task::JoinError),
    }

    /// The kind of a libssh2 error. SFTP status codes are the server's answer to a request; any other
    /// libssh2 error means the session failed (socket closed, timeout, protocol error), which a fresh
    /// connection may fix.
    pub(crate) fn ssh_kind(err: &ssh2::Error) -> ErrorKind {
        use libssh2_sys as raw;
        use ssh2::ErrorCode::{SFTP, Session};
        match err.code() {
            SFTP(raw::LIBSSH2_FX_NO_SUCH_FILE | raw::LIBSSH2_FX_NO_SUCH_PATH) => ErrorKind::NotFound,
            SFTP(raw::LIBSSH2_FX_PERMISSION_DENIED | raw::LIBSSH2_FX_WRITE_PROTECT) => ErrorKind::PermissionDenied,
            SFTP(raw::LIBSSH2_FX_FILE_ALREADY_EXISTS) => ErrorKind::AlreadyExists,
            SFTP(raw::LIBSSH2_FX_NO_CONNECTION | raw::LIBSSH2_FX_CONNECTION_LOST) | Session(_) => {
                ErrorKind::Unavailable
            }
            SFTP(_) => ErrorKind::Other,
        }
    }

    /// Store-relative wording: libssh2's texts name no paths.
    fn ssh_message(err: &ssh2::Error) -> String {
        match ssh_kind(err) {
            ErrorKind::NotFound => "no such object".to_owned(),
            ErrorKind::PermissionDenied => "the SFTP server denied access".to_owned(),
            ErrorKind::AlreadyExists => "an object already exists at the target".to_owned(),
            ErrorKind::Unavailable => format!("SSH connection failed: {}", err.message()),
            _ => format!("SFTP request failed: {}", err.message()),
        }
    }

    fn transfer_message(err: &io::Error) -> String {
        match err.kind() {
            io::ErrorKind::UnexpectedEof => "SFTP transfer ended before the object's last byte".to_owned(),
            io::ErrorKind::WriteZero => "SFTP transfer stopped taking bytes".to_owned(),
            _ => format!("SFTP transfer failed: {err}"),
        }
    }

    impl Classified for SftpError {
        fn kind(&self) -> ErrorKind {
            match self {
                SftpError::BasePath(_) | SftpError::ReservedName { .. } | SftpError::NotTemporary(_) => {
                    ErrorKind::InvalidPath
                }
                SftpError::BaseFolder { source, .. } => source.kind(),
                SftpError::Connect { .. } | SftpError::Session { .. } | SftpError::LoginLost { .. } => {
                    ErrorKind::Unavailable
                }
                SftpError::HostKeyRefused(_) | SftpError::LoginRefused { .. } => ErrorKind::PermissionDenied,
                SftpError::Ssh(err) => ssh_kind(err),
                SftpError::AlreadyExists(_) => ErrorKind::AlreadyExists,
                SftpError::Transfer { refused, .. } => {
                    if *refused {
                        ErrorKind::Other
                    } else {
                        ErrorKind::Unavailable
                    }
                }
                SftpError::NotAFile => ErrorKind::NotFound,
                SftpError::Replaced | SftpError::Changed => ErrorKind::Precondition,
                SftpError::HostKeyUnreadable(_)
                | SftpError::NoETag
                | SftpError::NoTimes
                | SftpError::LeaseBusy { .. }
                | SftpError::LeaseOverdue
                | SftpError::RangeBeyondEnd { .. }
                | SftpError::Cancelled
                | SftpError::Worker(_) => ErrorKind::Other,
            }
        }
    }

    impl From<SftpError> for Error {
        fn from(err: SftpError) -> Self {
            err.into_store_error()
        }
    }
}

#[cfg(any(feature = "s3", feature = "gcs"))]
mod uploads {
    use store_core::{Error, ErrorKind};

    use super::Classified;

    /// What goes wrong listing or aborting incomplete multipart uploads, which
    /// object_store cannot list.
    #[derive(Debug, thiserror::Error)]
    pub(crate) enum UploadsError {
        #[error("cannot build the HTTP client: {0}")]
        Client(#[source] reqwest::Error),
        /// The request failed before an answer; the error carries no URL.
        #[error("cannot list incomplete uploads: {0}")]
        Request(#[source] reqwest::Error),
        #[error("listing incomplete uploads answered {0}")]
        Status(reqwest::StatusCode),
        #[error("unreadable list of incomplete uploads: {0}")]
        Unreadable(#[source] quick_xml::DeError),
        #[error("no credentials to list incomplete uploads: {0}")]
        NoCredentials(#[source] object_store::Error),
        #[cfg(feature = "s3")]
        #[error("bad URL: {0}")]
        BadUrl(String),
        #[cfg(feature = "s3")]
        #[error("a bucket URL without a host")]
        NoHost,
        #[error("cannot abort the upload: {0}")]
        Abort(#[source] object_store::Error),
    }

    impl Classified for UploadsError {
        fn kind(&self) -> ErrorKind {
            match self {
                UploadsError::Request(_) => ErrorKind::Unavailable,
                UploadsError::Status(status) => match status.as_u16() {
                    401 | 403 => ErrorKind::PermissionDenied,
                    404 => ErrorKind::NotFound,
                    408 | 429 | 500..=599 => ErrorKind::Unavailable,
                    _ => ErrorKind::Other,
                },
                UploadsError::NoCredentials(_) => ErrorKind::PermissionDenied,
                #[cfg(feature = "s3")]
                UploadsError::BadUrl(_) | UploadsError::NoHost => ErrorKind::Other,
                UploadsError::Client(_) | UploadsError::Unreadable(_) | UploadsError::Abort(_) => ErrorKind::Other,
            }
        }
    }

    impl From<UploadsError> for Error {
        fn from(err: UploadsError) -> Self {
            err.into_store_error()
        }
    }
}
