//! Versioned outputs: every materialization written once, under a name of its
//! own, and a small pointer naming the current one.
//!
//! For an output whose unversioned path is `P` (`sales/daily.pkl`):
//! - each version is an immutable object `P.versions/<version><ext>`, written
//!   once with its checksum and owner like any output (see [`crate::integrity`]);
//! - the pointer `P.versions/current.json` names the current version, with its
//!   checksum, size, run and the versions current before it (newest first, up
//!   to [`HISTORY`]). It moves by compare-and-swap ([`WriteMode::IfMatch`], or
//!   [`WriteMode::CreateNew`] for the first version): a publisher that lost a
//!   race reads the pointer again and retries, so concurrent publishers are
//!   ordered, each one's version becomes current in turn, and none is lost from
//!   the history.
//!
//! A version is named `<UTC time to the millisecond>-<first 8 characters of the
//! run id>-<4 random hex digits>` (`20261207T023512345Z-3f2a9c1e-0b7d`): names sort
//! by the time their write began, say which run wrote them, and are known before
//! the bytes, so a streamed output goes straight to its final name.
//!
//! Loads follow the pointer ([`resolve`]), or load a pinned version. With no
//! pointer, `P` itself loads: an output stored before versions were turned on.
//! [`plan_retention`] and [`plan_wipe`] choose what to delete, never a current
//! version, one written by an unfinished run, or one that a run in progress may
//! have read; [`apply`] deletes it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), io_manager::Error> {
//! use std::sync::Arc;
//! use io_manager::{IoManager, versions::{self, VersionId}};
//! use serde_json::json;
//!
//! let store = store_core::Store::new(store_backends::MemoryBackend::new());
//! let io = IoManager::<serde_json::Value>::new(store.clone(), Arc::new(serializers::Json));
//! let target = io.asset_path(&["report"], &[] as &[&str])?;
//!
//! let first = VersionId::new("3f2a9c1e-8f00-4c1c-9d55-0b7f1e2a3b4c");
//! let written = io.handle_output(&io.version_path(&target, &first), &json!(1), None).await?;
//! io.publish(&target, &first, &written, "3f2a9c1e-8f00-4c1c-9d55-0b7f1e2a3b4c").await?;
//! let second = VersionId::new("77aa0000-0000-0000-0000-000000000000");
//! let written = io.handle_output(&io.version_path(&target, &second), &json!(2), None).await?;
//! let pointer = io.publish(&target, &second, &written, "77aa0000-0000-0000-0000-000000000000").await?;
//! assert_eq!((pointer.version.as_str(), pointer.seq), (second.as_str(), 2));
//!
//! let current = io.resolve(&target, None).await?;
//! assert_eq!(io.load_input(&current, None).await?, json!(2));
//! let pinned = io.resolve(&target, Some(first.as_str())).await?;
//! assert_eq!(io.load_input(&pinned, None).await?, json!(1));
//! assert_eq!(versions::list(&store, &target).await?.len(), 2);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use store_core::{ErrorKind, ListEntry, Store, StorePath, WriteMode};

use crate::{Error, OutputMetadata, Owner, integrity};

/// What a versioned output's folder adds to its unversioned path.
pub const FOLDER_SUFFIX: &str = ".versions";

/// The pointer's name in the folder.
pub const POINTER_NAME: &str = "current.json";

/// How many earlier versions the pointer remembers, with when each became current.
pub const HISTORY: usize = 64;

/// How many times a publisher that lost a race reads the pointer again.
const PUBLISH_ATTEMPTS: u32 = 200;

/// A version's name: `<yyyymmddThhmmssmmmZ>-<run8>-<rand4>`.
///
/// ```
/// use io_manager::versions::VersionId;
///
/// let id = VersionId::parse("20261207T023512345Z-3f2a9c1e-0b7d").expect("a version name");
/// assert_eq!(id.run(), "3f2a9c1e");
/// let ms = id.created().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
/// assert_eq!(ms, 1_796_610_912_345);
/// assert!(VersionId::parse("current.json").is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionId(String);

impl VersionId {
    /// A new name for a version the run `run_id` writes now.
    pub fn new(run_id: &str) -> Self {
        Self::at(SystemTime::now(), run_id)
    }

    /// The name of a version the run `run_id` began writing at `time`.
    pub fn at(time: SystemTime, run_id: &str) -> Self {
        let ms = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let run: String = run_id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
        let run = format!("{:0<8}", run.to_ascii_lowercase());
        // Seeded at random per process: two writers in one millisecond of one run still differ.
        let random = RandomState::new().hash_one(ms) as u16;
        Self(format!("{}-{run}-{random:04x}", format_time(ms)))
    }

    /// The version named `text`, or `None` if `text` is not a version name.
    pub fn parse(text: &str) -> Option<Self> {
        let (time, rest) = text.split_once('-')?;
        let (run, random) = rest.split_once('-')?;
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric());
        (parse_time(time).is_some() && hex(run, 8) && hex(random, 4)).then(|| Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When its write began.
    pub fn created(&self) -> SystemTime {
        let ms = parse_time(&self.0[..19]).unwrap_or_default();
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// The first 8 characters of the id of the run that wrote it.
    pub fn run(&self) -> &str {
        &self.0[20..28]
    }

    /// Whether the run `run_id` wrote it.
    pub fn written_by(&self, run_id: &str) -> bool {
        Self::at(UNIX_EPOCH, run_id).run() == self.run()
    }
}

impl std::fmt::Display for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `yyyymmddThhmmssmmmZ` of milliseconds since the epoch.
fn format_time(ms: u64) -> String {
    let (days, rest) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}{milli:03}Z")
}

/// Milliseconds since the epoch of a `yyyymmddThhmmssmmmZ` time.
fn parse_time(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() != 19 || bytes[8] != b'T' || bytes[18] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second, milli) = (num(9..11)?, num(11..13)?, num(13..15)?, num(15..18)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of a civil date (the inverse of `format_time`).
    let shifted = year - i64::from(month <= 2);
    let era = shifted.div_euclid(400);
    let yoe = shifted - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli;
    u64::try_from(ms).ok()
}

/// The folder of the versions of the output at `target`.
pub fn folder(target: &StorePath) -> StorePath {
    sibling(target, FOLDER_SUFFIX)
}

/// The pointer to the current version of the output at `target`.
pub fn pointer_path(target: &StorePath) -> StorePath {
    in_folder(target, POINTER_NAME).expect("a valid file name")
}

/// Where version `id` of the output at `target` is stored, with `extension`.
pub fn object_path(target: &StorePath, id: &VersionId, extension: &str) -> StorePath {
    in_folder(target, &format!("{id}{extension}")).expect("a version name is a valid file name")
}

/// The object `name` in the folder of the versions of the output at `target`.
fn in_folder(target: &StorePath, name: &str) -> Result<StorePath, store_core::Error> {
    StorePath::parse(format!("{}/{name}", folder(target)))
}

fn sibling(path: &StorePath, suffix: &str) -> StorePath {
    StorePath::parse(format!("{path}{suffix}")).expect("a suffix keeps a path valid")
}

/// A version that was current, and from when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The version's name.
    pub version: String,
    /// When it became current, in milliseconds since the epoch.
    pub published_ms: u64,
}

/// What `P.versions/current.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// The current version's name.
    pub version: String,
    /// Its stored file name in the folder (the version's name and the extension).
    pub file: String,
    /// Its checksum, as output metadata shows it.
    pub checksum: String,
    /// Its size in bytes.
    pub size: u64,
    /// The run that wrote it.
    pub run_id: String,
    /// When it became current, in milliseconds since the epoch.
    pub published_ms: u64,
    /// How many versions have been current, this one included.
    pub seq: u64,
    /// The versions current before it, newest first, at most [`HISTORY`].
    pub history: Vec<Published>,
}

impl Pointer {
    /// Whether version `id` was current at some time at or after `since`: it is
    /// current, or the version that replaced it became current since. `None`
    /// when the history is too short to tell.
    pub fn current_since(&self, id: &VersionId, since: SystemTime) -> Option<bool> {
        if self.version == id.as_str() {
            return Some(true);
        }
        let since = since.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let mut replaced_at = self.published_ms;
        for earlier in &self.history {
            if earlier.version == id.as_str() {
                return Some(replaced_at >= since);
            }
            replaced_at = earlier.published_ms;
        }
        // Not remembered: never current, unless the history was cut after it.
        let cut = self.history.len() >= HISTORY;
        if cut && replaced_at >= since { None } else { Some(false) }
    }
}

/// The pointer of the output at `target`, or `None` if no version was published.
pub async fn current(store: &Store, target: &StorePath) -> Result<Option<Pointer>, Error> {
    let path = pointer_path(target);
    match store.read(&path).await {
        Ok(data) => parse_pointer(store, &path, &data).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn parse_pointer(store: &Store, path: &StorePath, data: &[u8]) -> Result<Pointer, Error> {
    serde_json::from_slice(data).map_err(|e| Error::BadPointer {
        path: path.clone(),
        uri: store.uri(path),
        reason: e.to_string(),
    })
}

/// Makes version `id` of the output at `target` (stored as `written` says, by
/// run `run_id`) current, by compare-and-swap on the pointer; returns the pointer
/// as published.
pub async fn publish(
    store: &Store,
    target: &StorePath,
    id: &VersionId,
    written: &OutputMetadata,
    run_id: &str,
) -> Result<Pointer, Error> {
    let path = pointer_path(target);
    let file = written.path.file_name().to_owned();
    let mut backoff = Duration::from_millis(2);
    for _ in 0..PUBLISH_ATTEMPTS {
        let (previous, mode) = match store.read_for_update(&path).await {
            Ok((data, version)) => (Some(parse_pointer(store, &path, &data)?), WriteMode::IfMatch(version)),
            Err(e) if e.kind() == ErrorKind::NotFound => (None, WriteMode::CreateNew),
            Err(e) => return Err(e.into()),
        };
        let published_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let (seq, history) = match previous {
            Some(previous) => {
                let mut history = vec![Published { version: previous.version, published_ms: previous.published_ms }];
                history.extend(previous.history);
                history.truncate(HISTORY);
                (previous.seq + 1, history)
            }
            None => (1, Vec::new()),
        };
        let pointer = Pointer {
            version: id.to_string(),
            file: file.clone(),
            checksum: written.checksum.to_string(),
            size: written.size,
            run_id: run_id.to_owned(),
            published_ms,
            seq,
            history,
        };
        let data = Bytes::from(serde_json::to_vec_pretty(&pointer).expect("a pointer serializes"));
        match store.write(&path, data, mode).await {
            Ok(_) => return Ok(pointer),
            Err(e) if matches!(e.kind(), ErrorKind::Precondition | ErrorKind::AlreadyExists) => {
                // Another publisher moved it first: wait a little (more each time, with jitter), read it again.
                let jitter = RandomState::new().hash_one(published_ms) % (backoff.as_micros() as u64 + 1);
                tokio::time::sleep(backoff + Duration::from_micros(jitter)).await;
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Store(
        store_core::Error::new(
            ErrorKind::Unavailable,
            format!("version {id} not published: the pointer kept changing for {PUBLISH_ATTEMPTS} attempts"),
        )
        .with_context("publish", path.as_str(), store.backend_kind()),
    ))
}

/// Where the output at `target` loads from: version `pin` if given, else the
/// current version, else (nothing published) `target` itself.
pub async fn resolve(
    store: &Store,
    target: &StorePath,
    extension: &str,
    pin: Option<&str>,
) -> Result<StorePath, Error> {
    if let Some(pin) = pin {
        let id = VersionId::parse(pin)
            .ok_or_else(|| Error::BadVersion { target: target.clone(), version: pin.to_owned() })?;
        return Ok(object_path(target, &id, extension));
    }
    Ok(match current(store, target).await? {
        Some(pointer) => in_folder(target, &pointer.file)?,
        None => target.clone(),
    })
}

/// One stored version: its name and every object it has (the version's object,
/// its checksum records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// Its name.
    pub id: VersionId,
    /// Its objects.
    pub paths: Vec<StorePath>,
}

/// The versions stored for the output at `target`, oldest first.
pub async fn list(store: &Store, target: &StorePath) -> Result<Vec<StoredVersion>, Error> {
    let folder = folder(target);
    let entries: Vec<ListEntry> = store.list(Some(&folder), true).try_collect().await?;
    let mut found: BTreeMap<VersionId, Vec<StorePath>> = BTreeMap::new();
    for entry in entries {
        let ListEntry::Object(meta) = entry else { continue };
        let Some(relative) = meta.path.as_str().strip_prefix(folder.as_str()).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        // `<id><ext>`, `<id><ext>.checksums/...`, `<id><ext>.crc32c`: the name up to its first dot.
        let first = relative.split('/').next().unwrap_or_default();
        if let Some(id) = VersionId::parse(first.split('.').next().unwrap_or_default()) {
            found.entry(id).or_default().push(meta.path);
        }
    }
    // The version's object first, then its records: never records without their object.
    Ok(found
        .into_iter()
        .map(|(id, mut paths)| {
            paths.sort_by_key(|path| path.as_str().len());
            StoredVersion { id, paths }
        })
        .collect())
}

/// How long versions are kept: the last `keep_last`, and those younger than
/// `keep_for`; a version either rule keeps stays. Neither set keeps all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep this many of the newest versions, the current one among them.
    pub keep_last: Option<usize>,
    /// Keep versions written less than this long ago.
    pub keep_for: Option<Duration>,
}

/// What must not be deleted, besides current versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// Ids of runs that have not finished: what they wrote stays.
    pub unfinished_runs: Vec<String>,
    /// The earliest start of an unfinished run that may read the output: a
    /// version current at any time since stays, as the run may be reading it.
    pub readers_since: Option<SystemTime>,
    /// Versions pinned by name (inputs that load them).
    pub pinned: BTreeSet<String>,
    /// Versions younger than this stay: their run may not have reported yet.
    pub grace: Duration,
}

impl Guard {
    /// Why version `id` must stay, if it must (`pointer` being the output's).
    pub fn keeps(&self, id: &VersionId, pointer: Option<&Pointer>, now: SystemTime) -> Option<String> {
        if self.pinned.contains(id.as_str()) {
            return Some("pinned by an input".into());
        }
        if let Some(run) = self.unfinished_runs.iter().find(|run| id.written_by(run)) {
            return Some(format!("written by run {run}, which has not finished"));
        }
        if now.duration_since(id.created()).unwrap_or_default() < self.grace {
            return Some(format!("younger than the grace period of {} s", self.grace.as_secs()));
        }
        let since = self.readers_since?;
        match pointer.map(|pointer| pointer.current_since(id, since)) {
            Some(Some(false)) => None,
            Some(None) | None => {
                Some("a run in progress may read it (the pointer's history is too short to tell)".into())
            }
            Some(Some(true)) => Some("current while a run in progress may have read it".into()),
        }
    }
}

/// Objects to delete, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The output's unversioned path.
    pub target: StorePath,
    /// The version deleted, or `None` for the unversioned object or the pointer.
    pub version: Option<String>,
    /// The objects, deleted in this order.
    pub paths: Vec<StorePath>,
    /// Why they go.
    pub reason: String,
}

/// A version that stays although a rule would delete it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The output's unversioned path.
    pub target: StorePath,
    /// The version, or `None` for the unversioned object.
    pub version: Option<String>,
    /// Why it stays.
    pub reason: String,
    /// Whether it stays only until the runs that protect it finish (a [`Guard`]'s
    /// reasons), rather than for good (another asset's object, one stored after a wipe).
    pub deferred: bool,
}

/// What [`plan_retention`] and [`plan_wipe`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What goes.
    pub deletions: Vec<Deletion>,
    /// What a rule would delete, but stays.
    pub kept: Vec<Kept>,
}

/// The versions of the output at `target` that `retention` no longer keeps and
/// `guard` does not protect; the current version always stays.
pub async fn plan_retention(
    store: &Store,
    target: &StorePath,
    retention: Retention,
    guard: &Guard,
    now: SystemTime,
) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    if retention == Retention::default() {
        return Ok(plan);
    }
    let pointer = current(store, target).await?;
    let stored = list(store, target).await?;
    for (newer, version) in stored.into_iter().rev().enumerate() {
        let by_count = retention.keep_last.is_some_and(|n| newer < n);
        let age = now.duration_since(version.id.created()).unwrap_or_default();
        let by_age = retention.keep_for.is_some_and(|keep_for| age < keep_for);
        if by_count || by_age {
            continue;
        }
        let current = pointer.as_ref().is_some_and(|p| p.version == version.id.as_str());
        let kept = if current {
            Some(("current".to_owned(), false))
        } else {
            guard.keeps(&version.id, pointer.as_ref(), now).map(|why| (why, true))
        };
        let reason = match (retention.keep_last, retention.keep_for) {
            (Some(n), Some(d)) => format!("older than the last {n} versions and than {} s", d.as_secs()),
            (Some(n), None) => format!("older than the last {n} versions"),
            (None, _) => format!("written {} s ago", age.as_secs()),
        };
        decide(&mut plan, target, Some(version.id.to_string()), version.paths, reason, kept);
    }
    Ok(plan)
}

/// Everything stored for the output at `target` (of `owner`) before `wiped_at`,
/// when its asset or partition was wiped: the unversioned object and its
/// records, each version, and the pointer once its version goes. Objects stored
/// since stay (a materialization after the wipe), as does what `guard` protects,
/// and an unversioned object recorded as another asset's.
pub async fn plan_wipe(
    store: &Store,
    target: &StorePath,
    owner: Option<&Owner>,
    wiped_at: SystemTime,
    guard: &Guard,
    now: SystemTime,
) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    let reason = "its asset or partition was wiped".to_owned();
    let pointer = current(store, target).await?;
    let mut current_goes = false;
    for version in list(store, target).await? {
        if version.id.created() >= wiped_at {
            continue;
        }
        let kept = guard.keeps(&version.id, pointer.as_ref(), now).map(|why| (why, true));
        if kept.is_none() && pointer.as_ref().is_some_and(|p| p.version == version.id.as_str()) {
            current_goes = true;
        }
        decide(&mut plan, target, Some(version.id.to_string()), version.paths, reason.clone(), kept);
    }
    if current_goes {
        // First of all: loads then fall back to the unversioned path, which goes too, never to a missing version.
        let pointer = Deletion {
            target: target.clone(),
            version: None,
            paths: vec![pointer_path(target)],
            reason: reason.clone(),
        };
        plan.deletions.insert(0, pointer);
    }
    let object = match store.head(target).await {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(meta) = object.filter(|meta| meta.last_modified.is_none_or(|modified| modified < wiped_at)) {
        // Some stores give modification times in whole seconds: within the wipe's second,
        // the object may have been stored after it.
        let same_second = meta.last_modified.is_some_and(|modified| whole_seconds(modified) == whole_seconds(wiped_at));
        let kept = match integrity::check_owner(store, target, owner).await {
            Ok(()) if same_second => Some(("stored in the second of the wipe: maybe after it".to_owned(), false)),
            Ok(())
                if meta
                    .last_modified
                    .is_some_and(|modified| now.duration_since(modified).unwrap_or_default() < guard.grace) =>
            {
                Some((format!("younger than the grace period of {} s", guard.grace.as_secs()), true))
            }
            Ok(()) => guard.readers_since.map(|_| ("a run in progress may read it".to_owned(), true)),
            Err(Error::OwnedByAnother { stored, .. }) => {
                Some((format!("recorded as the output of {}", Owner::describe(&stored)), false))
            }
            Err(e) => return Err(e),
        };
        let mut paths = vec![meta.path];
        paths.extend(integrity::record_paths(store, target).await?);
        decide(&mut plan, target, None, paths, reason, kept);
    }
    Ok(plan)
}

fn whole_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn decide(
    plan: &mut Plan,
    target: &StorePath,
    version: Option<String>,
    paths: Vec<StorePath>,
    reason: String,
    kept: Option<(String, bool)>,
) {
    match kept {
        Some((why, deferred)) => plan.kept.push(Kept { target: target.clone(), version, reason: why, deferred }),
        None => plan.deletions.push(Deletion { target: target.clone(), version, paths, reason }),
    }
}

/// Deletes what `deletions` name, in order; objects already gone are no error.
/// Returns how many objects were deleted.
pub async fn apply(store: &Store, deletions: &[Deletion]) -> Result<usize, Error> {
    let paths: Vec<StorePath> = deletions.iter().flat_map(|deletion| deletion.paths.iter().cloned()).collect();
    delete_all(store, &paths).await
}

/// Deletes the objects at `paths`, in order; objects already gone are no error.
/// Returns how many there were.
pub async fn delete_all(store: &Store, paths: &[StorePath]) -> Result<usize, Error> {
    for path in paths {
        store.delete(path, true).await?;
    }
    Ok(paths.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::IoManager;

    fn manager() -> IoManager<Value> {
        IoManager::new(Store::new(store_backends::MemoryBackend::new()), Arc::new(serializers::Json))
    }

    /// Writes version `id` of `target` holding `value` and publishes it.
    async fn put(io: &IoManager<Value>, target: &StorePath, id: &VersionId, value: Value) -> Pointer {
        let written = io.handle_output(&io.version_path(target, id), &value, None).await.unwrap();
        io.publish(target, id, &written, id.run()).await.unwrap()
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_publishers_are_ordered_and_none_is_lost() {
        let io = manager();
        let target = io.asset_path(&["shared"], &[] as &[&str]).unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|n| {
                let (io, target) = (io.clone(), target.clone());
                tokio::spawn(async move { put(&io, &target, &VersionId::new(&format!("run{n}")), json!(n)).await })
            })
            .collect();
        let mut published: Vec<Pointer> = Vec::new();
        for task in tasks {
            published.push(task.await.unwrap());
        }
        let mut seqs: Vec<u64> = published.iter().map(|p| p.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=8).collect::<Vec<_>>(), "each publish moved the pointer once");
        let last = current(io.store(), &target).await.unwrap().unwrap();
        assert_eq!(last.seq, 8);
        let mut named: Vec<String> = last.history.iter().map(|h| h.version.clone()).collect();
        named.push(last.version.clone());
        named.sort();
        let mut all: Vec<String> = published.iter().map(|p| p.version.clone()).collect();
        all.sort();
        assert_eq!(named, all);
    }

    #[tokio::test]
    async fn retention_keeps_the_newest_the_current_and_what_guards_protect() {
        let io = manager();
        let target = io.asset_path(&["daily"], &["2026-01-01"]).unwrap();
        let ids: Vec<VersionId> = (0..4).map(|n| VersionId::at(at(1_000_000 + n * 1000), &format!("run{n}"))).collect();
        let mut readers_since = None;
        for (n, id) in ids.iter().enumerate() {
            if n == 2 {
                // A run that may read the output starts while version 1 is current.
                tokio::time::sleep(Duration::from_millis(5)).await;
                readers_since = Some(SystemTime::now());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            put(&io, &target, id, json!(n)).await;
        }
        let now = at(2_000_000);
        let keep_two = Retention { keep_last: Some(2), keep_for: None };
        let plan = plan_retention(io.store(), &target, keep_two, &Guard::default(), now).await.unwrap();
        let gone: Vec<_> = plan.deletions.iter().map(|d| d.version.clone().unwrap()).collect();
        assert_eq!(gone, [ids[1].to_string(), ids[0].to_string()]);
        assert!(plan.deletions[0].paths[0].as_str().ends_with(&format!("{}.json", ids[1])));

        let guard =
            Guard { unfinished_runs: vec!["run0".into()], pinned: [ids[1].to_string()].into(), ..Guard::default() };
        let plan = plan_retention(io.store(), &target, keep_two, &guard, now).await.unwrap();
        assert!(plan.deletions.is_empty(), "{plan:?}");
        assert_eq!(plan.kept.len(), 2);

        // The reader may have loaded version 1, 2 or 3, not 0.
        let readers = Guard { readers_since, ..Guard::default() };
        let keep_one = Retention { keep_last: Some(1), keep_for: None };
        let plan = plan_retention(io.store(), &target, keep_one, &readers, now).await.unwrap();
        let gone: Vec<_> = plan.deletions.iter().map(|d| d.version.clone().unwrap()).collect();
        assert_eq!(gone, [ids[0].to_string()], "{plan:?}");

        let by_age = Retention { keep_last: None, keep_for: Some(Duration::from_millis(2_000_000 - 1_001_500)) };
        let young = plan_retention(io.store(), &target, by_age, &Guard::default(), now).await.unwrap();
        assert_eq!(young.deletions.len(), 2, "{young:?}");
        let grace = Guard { grace: Duration::from_secs(3600), ..Guard::default() };
        assert!(plan_retention(io.store(), &target, keep_one, &grace, now).await.unwrap().deletions.is_empty());

        let plan = plan_retention(io.store(), &target, keep_one, &Guard::default(), now).await.unwrap();
        apply(io.store(), &plan.deletions).await.unwrap();
        assert_eq!(list(io.store(), &target).await.unwrap().len(), 1);
        assert_eq!(io.load_input(&io.resolve(&target, None).await.unwrap(), None).await.unwrap(), json!(3));
    }

    #[tokio::test]
    async fn a_wipe_takes_what_was_stored_before_it_and_the_pointer_first() {
        let io = manager();
        let target = io.asset_path(&["up"], &[] as &[&str]).unwrap();
        let old = VersionId::at(at(1_000_000), "run-old");
        put(&io, &target, &old, json!(1)).await;
        let plan = plan_wipe(io.store(), &target, None, at(1_500_000), &Guard::default(), at(2_000_000)).await.unwrap();
        assert_eq!(plan.deletions[0].paths, [pointer_path(&target)]);
        assert_eq!(plan.deletions[1].version.as_deref(), Some(old.as_str()));
        let newer = VersionId::at(at(1_600_000), "run-new");
        put(&io, &target, &newer, json!(2)).await;
        let plan = plan_wipe(io.store(), &target, None, at(1_500_000), &Guard::default(), at(2_000_000)).await.unwrap();
        assert_eq!(plan.deletions.len(), 1, "the current version came after the wipe: {plan:?}");
        apply(io.store(), &plan.deletions).await.unwrap();
        assert_eq!(io.load_input(&io.resolve(&target, None).await.unwrap(), None).await.unwrap(), json!(2));
    }

    #[test]
    fn times_round_trip_through_names() {
        for ms in [0, 951_782_400_000, 1_796_610_912_345, 4_102_444_799_999, 253_402_300_799_999] {
            let id = VersionId::at(UNIX_EPOCH + Duration::from_millis(ms), "3F2A9C1E-8f00");
            assert_eq!(id.created(), UNIX_EPOCH + Duration::from_millis(ms), "{id}");
            assert_eq!(id.run(), "3f2a9c1e");
            assert_eq!(VersionId::parse(id.as_str()), Some(id.clone()));
        }
        assert_eq!(format_time(951_782_400_000), "20000229T000000000Z");
    }

    #[test]
    fn names_sort_by_time_and_differ_within_a_millisecond() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_610_912_345);
        let (a, b) = (VersionId::at(t, "run"), VersionId::at(t + Duration::from_millis(1), "run"));
        assert!(a < b);
        let same: BTreeSet<VersionId> = (0..64).map(|_| VersionId::at(t, "run")).collect();
        assert!(same.len() > 32, "{}", same.len());
        assert!(a.written_by("run") && !a.written_by("other"));
    }

    #[test]
    fn names_that_are_not_versions_are_refused() {
        for text in ["current.json", "20261207T023512345Z", "20261307T023512345Z-3f2a9c1e-0b7d", "x-3f2a9c1e-0b7d", ""]
        {
            assert_eq!(VersionId::parse(text), None, "{text}");
        }
    }

    fn pointer(history: &[(&str, u64)]) -> Pointer {
        Pointer {
            version: "c".into(),
            file: "c.pkl".into(),
            checksum: String::new(),
            size: 0,
            run_id: String::new(),
            published_ms: 300,
            seq: 1 + history.len() as u64,
            history: history.iter().map(|(v, t)| Published { version: (*v).into(), published_ms: *t }).collect(),
        }
    }

    #[test]
    fn current_since_follows_the_history() {
        let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        let p = pointer(&[("b", 200), ("a", 100)]);
        let id = |s: &str| VersionId(s.into());
        // b was current from 200 until 300, a from 100 until 200.
        assert_eq!(p.current_since(&id("c"), at(1000)), Some(true));
        assert_eq!(p.current_since(&id("b"), at(250)), Some(true));
        assert_eq!(p.current_since(&id("b"), at(301)), Some(false));
        assert_eq!(p.current_since(&id("a"), at(200)), Some(true));
        assert_eq!(p.current_since(&id("a"), at(201)), Some(false));
        assert_eq!(p.current_since(&id("never"), at(0)), Some(false));
        let full: Vec<(String, u64)> = (0..HISTORY as u64).map(|i| (format!("v{i}"), 200 - i)).collect();
        let full: Vec<(&str, u64)> = full.iter().map(|(v, t)| (v.as_str(), *t)).collect();
        assert_eq!(pointer(&full).current_since(&id("older"), at(0)), None, "the history was cut");
        assert_eq!(pointer(&full).current_since(&id("older"), at(250)), Some(false));
    }
}
