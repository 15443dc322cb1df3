"""Stage 1, the data: the data contract (contract, parsing, regions, personal data), cleaning
with an audit trail (cleaning/), point-in-time features on DuckDB, Polars or Spark (registry,
definitions, engines, build, pipeline), snapshots, the online feature path, and the stage as
the commands run it (stage). Imports `core` only."""
