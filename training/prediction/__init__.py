"""Churn and repurchase prediction: backtest windows, LightGBM tuned by Optuna, calibration,
honest baselines on the same out-of-time window, and a promotion gate.

Flow (`stage.fit`): plan cutoffs per target (`windows`), build point-in-time features at
each cutoff and labels after it (`dataset`), fit the predictor on the training windows, tune it
and calibrate it on the validation window, score it and the baselines on the held-out (latest
labelled) window, and let `promotion` decide whether it becomes the champion.
"""
