"""Stages 3-4, the models: segmentation schemes side by side (segmentation/), churn and
repurchase predictors against baselines (prediction/), scores.csv and report.html (scores,
report), and the jobs as functions (pipeline: `run`, the main job; `train`, the predictors
alone). Imports `core` and `features`."""
