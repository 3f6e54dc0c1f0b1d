"""A week of orders: raw data, daily partitions, rolling and weekly aggregates.

Every asset is pickled into a local folder through ``remote_store_io_manager``,
except ``customer_report``, which goes through a second IO manager as JSON.
The folder is ``$DAGSTER_REMOTE_STORE_ROOT`` (default ``./demo-output``)::

    dagster dev -m examples.dagster_project.definitions
"""

import os
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetIn,
    DailyPartitionsDefinition,
    Definitions,
    IOManager,
    IOManagerDefinition,
    TimeWindowPartitionMapping,
    asset,
    io_manager,
)

from dagster_remote_store import Store, remote_store_io_manager
from dagster_remote_store.backends import LocalBackend

Order = dict[str, Any]  # {"id": int, "customer": str, "amount": float, "day": "YYYY-MM-DD"}
Totals = dict[str, Any]  # {"orders": int, "revenue" or "spent": float}

# 2026-01-01 .. 2026-01-07 (the end date is exclusive): 7 partitions.
DAILY = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-08")

_CUSTOMERS = ["ada", "grace", "linus", "margaret", "ken"]


@asset
def raw_orders() -> list[Order]:
    """20 orders spread over the first week of January 2026."""
    return [
        {
            "id": i,
            "customer": _CUSTOMERS[i % len(_CUSTOMERS)],
            "amount": round(10 + (i * 37 % 90) + 0.25 * (i % 4), 2),
            "day": f"2026-01-{1 + i % 7:02d}",
        }
        for i in range(1, 21)
    ]


@asset(partitions_def=DAILY)
def daily_orders(context: AssetExecutionContext, raw_orders: list[Order]) -> list[Order]:
    """The orders placed on the partition's day."""
    return [order for order in raw_orders if order["day"] == context.partition_key]


@asset
def weekly_summary(daily_orders: dict[str, list[Order]]) -> dict[str, Totals]:
    """Order count and revenue per day; the IO manager loads every daily partition."""
    return {
        day: {"orders": len(orders), "revenue": round(sum(o["amount"] for o in orders), 2)}
        for day, orders in daily_orders.items()
    }


@asset(
    partitions_def=DAILY,
    # This day and the two before it, loaded as {day: orders} (clipped at the start of the range).
    ins={"daily_orders": AssetIn(partition_mapping=TimeWindowPartitionMapping(start_offset=-2, end_offset=0))},
)
def rolling_revenue(daily_orders: dict[str, list[Order]]) -> float:
    """Revenue over a 3-day window ending on the partition's day."""
    return round(sum(o["amount"] for orders in daily_orders.values() for o in orders), 2)


@asset(io_manager_key="json_io_manager")
def customer_report(raw_orders: list[Order]) -> dict[str, Totals]:
    """Orders and total spent per customer, stored as JSON."""
    report: dict[str, Totals] = {}
    for order in raw_orders:
        entry = report.setdefault(order["customer"], {"orders": 0, "spent": 0.0})
        entry["orders"] += 1
        entry["spent"] = round(entry["spent"] + order["amount"], 2)
    return dict(sorted(report.items()))


ASSETS = [raw_orders, daily_orders, weekly_summary, rolling_revenue, customer_report]


def _store_io_manager(root: str, serializer: str) -> IOManagerDefinition:
    """An IO manager resource on ``Store(LocalBackend(root))``.

    The store is opened when a run initializes the resource and closed when the
    run ends, so merely loading the definitions touches no folder.
    """

    @io_manager
    def _resource() -> Iterator[IOManager]:
        with Store(LocalBackend(root=root)) as store:
            yield remote_store_io_manager(store, serializer=serializer)

    return _resource


def build_definitions(root: str) -> Definitions:
    """The project's assets, stored under the folder ``root``."""
    return Definitions(
        assets=ASSETS,
        resources={
            "io_manager": _store_io_manager(root, "pickle"),
            "json_io_manager": _store_io_manager(root, "json"),
        },
    )


defs = build_definitions(os.environ.get("DAGSTER_REMOTE_STORE_ROOT", "demo-output"))
