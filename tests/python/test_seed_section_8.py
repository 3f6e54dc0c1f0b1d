"""The design's own unit test (section 8), with only its import lines changed."""

from dagster import AssetKey, build_input_context, build_output_context

from dagster_remote_store import Store, remote_store_io_manager
from dagster_remote_store.backends import MemoryBackend


def test_roundtrip_pickle():
    store = Store(MemoryBackend())
    mgr = remote_store_io_manager(store, serializer="pickle")

    obj = {"key": "value"}
    out_ctx = build_output_context(asset_key=AssetKey(["my", "asset"]))
    mgr.handle_output(out_ctx, obj)

    in_ctx = build_input_context(asset_key=AssetKey(["my", "asset"]),
                                  upstream_output=out_ctx)
    assert mgr.load_input(in_ctx) == obj
