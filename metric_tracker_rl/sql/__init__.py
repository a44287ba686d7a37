"""The SQL sandbox the analysis tools' SQL runs in: the engine's limits, the tables' column types, the worker
processes and their pool. Imports nothing of the package, so a worker process (`python -m
metric_tracker_rl.sql.worker`) starts without loading the tools."""
