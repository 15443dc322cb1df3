"""Stage 3-4: segmentation schemes and churn / repurchase predictors (issues to come)."""
