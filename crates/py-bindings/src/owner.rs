//! Which asset an object is stored for, as Python passes it: `(asset_key,
//! partition_keys)` (see `io_manager::Owner`).

use io_manager::Owner;
use pyo3::prelude::*;
use store_core::StorePath;

use crate::store::parse_path;

/// An object's owner as Python gives it: `(asset_key, partition_keys)`.
pub type PyOwner = Option<(Vec<String>, Vec<String>)>;

/// The [`Owner`] that `owner` names.
pub fn to_owner(owner: PyOwner) -> Option<Owner> {
    owner.map(|(asset_key, partition)| Owner::new(asset_key, partition))
}

/// `paths`, parsed, each with its owner from `owners` (one per path, or none at all).
pub fn owned_paths(
    py: Python<'_>,
    paths: &[String],
    owners: Option<Vec<PyOwner>>,
) -> PyResult<Vec<(StorePath, Option<Owner>)>> {
    let owners = owners.unwrap_or_else(|| vec![None; paths.len()]);
    if owners.len() != paths.len() {
        let message = format!("{} owners for {} paths: give one per path", owners.len(), paths.len());
        return Err(pyo3::exceptions::PyValueError::new_err(message));
    }
    paths.iter().zip(owners).map(|(path, owner)| Ok((parse_path(py, path)?, to_owner(owner)))).collect()
}
