//! The crates composed the way another Rust tool would use them: a local
//! backend, a serde type through the JSON serializer, partitioned asset paths.

use std::sync::Arc;

use io_manager::{IoManager, Owner};
use serde::{Deserialize, Serialize};
use store_backends::LocalBackend;
use store_core::{ErrorKind, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DailyTotal {
    day: String,
    orders: u32,
    revenue: f64,
}

fn manager(root: &std::path::Path) -> IoManager<DailyTotal> {
    let store = Store::new(LocalBackend::new(root).expect("local backend")).child(&"warehouse".parse().unwrap());
    let registry = serializers::Registry::<DailyTotal>::with_builtins();
    IoManager::new(store, registry.get("json").expect("json is built in"))
}

#[tokio::test]
async fn partitioned_outputs_round_trip_through_files_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let io = manager(dir.path());
    let days: Vec<String> = (1..=5).map(|d| format!("2026-01-0{d}")).collect();
    for (i, day) in days.iter().enumerate() {
        let value = DailyTotal { day: day.clone(), orders: i as u32, revenue: i as f64 * 10.5 };
        let path = io.asset_path(&["sales", "daily_total"], &[day]).unwrap();
        let owner = Owner::new(["sales", "daily_total"], [day]);
        let written = io.handle_output(&path, &value, Some(&owner)).await.unwrap();
        assert!(
            written.uri.starts_with("file://")
                && written.uri.ends_with(&format!("warehouse/sales/daily_total/{day}.json"))
        );
    }
    // The files are plain JSON where the seed's path table says they are.
    let file = dir.path().join("warehouse/sales/daily_total/2026-01-03.json");
    let on_disk: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(on_disk["orders"], 2);

    // A second manager (another process, say) loads all partitions back, in order.
    let reader = manager(dir.path());
    let objects: Vec<_> = days
        .iter()
        .map(|d| {
            (
                reader.asset_path(&["sales", "daily_total"], &[d]).unwrap(),
                Some(Owner::new(["sales", "daily_total"], [d])),
            )
        })
        .collect();
    let loaded = reader.load_many(&objects).await.unwrap();
    assert_eq!(loaded.iter().map(|t| t.day.as_str()).collect::<Vec<_>>(), days);
    assert_eq!(loaded[4].revenue, 42.0);
}

#[tokio::test]
async fn a_missing_partition_is_not_found_and_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let io = manager(dir.path());
    let path = io.asset_path(&["sales"], &["2026-02-30"]).unwrap();
    let err = io.load_input(&path, None).await.unwrap_err();
    match err {
        io_manager::Error::Store(e) => {
            assert_eq!(e.kind(), ErrorKind::NotFound);
            assert_eq!(e.to_string(), "read \"sales/2026-02-30.json\" on local: not found: no such object");
        }
        other => panic!("expected a store error, got {other}"),
    }
}

#[test]
fn serializer_registry_names_what_it_has() {
    let registry = serializers::Registry::<DailyTotal>::with_builtins();
    let err = registry.get("parquet").unwrap_err();
    assert_eq!(err.to_string(), "unknown serializer \"parquet\"; available: json");
    let _: Arc<dyn serializers::Serializer<DailyTotal>> = registry.get("json").unwrap();
}
