"""A small Dagster project whose assets are stored through dagster_remote_store."""
