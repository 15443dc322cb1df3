"""Stage 1: the data contract, cleaning with an audit trail, and (later) point-in-time features."""
