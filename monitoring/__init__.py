"""Stage 6: drift and segment-health monitoring with Evidently (issue to come)."""
