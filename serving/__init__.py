"""Stage 5: the BentoML prediction service over the registered models (issue to come)."""
