"""Every named artifact of custseg, in one place (as Kedro's catalog): the files each stage
writes, the default folders under the state folder, MLflow names (experiment, registered
models, the champion alias, the reference artifact). Stages take their names from here and
never make up a path relative to the current directory.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

from core import paths
from core.errors import ConfigError

# --- files in a stage's output folder --------------------------------------------------------
# cleaning (`custseg clean`, and the main job's output folder)
CLEAN_TRANSACTIONS = "transactions.parquet"
CLEAN_CUSTOMERS = "customers.parquet"
ID_MAP = "id_map.parquet"  # merged duplicate ids -> the id kept
CHANGES = "changes.parquet"  # one row per dropped, changed or flagged input row
AUDIT_JSON = "audit.json"
AUDIT_HTML = "audit.html"
# features
FEATURES = "features.parquet"  # a feature snapshot (as-of date and definition hash inside)
# segmentation
SEGMENTS = "segments.parquet"  # customer_id + segment_<scheme> per scheme
PROFILES = "profiles.csv"  # every scheme's profile table
# prediction and the main job
SCORES = "scores.csv"  # customer_id, probabilities, segment per scheme
RUN_REPORT = "report.html"
# batch scoring (`custseg score`)
SCORE_PARTS = "scores"  # folder of Parquet parts, one row per customer (the service's fields)
SCORE_CSV = "scores.csv"  # the same rows as one CSV (--csv)
SCORE_SUMMARY = "score.json"  # rows, as-of date, engine and the champion versions that scored
# baskets (`custseg basket`)
RULES_CSV = "rules.csv"  # association rules X -> Y, all customers and per segment
RULES_PARQUET = "rules.parquet"
NEXT_BEST = "next_best.csv"  # customer_id, next_best_1..k
BASKETS_JSON = "baskets.json"  # counts and the out-of-time check of the next-best products
BASKETS_HTML = "baskets.html"
# monitoring
MONITOR_SUMMARY = "summary.json"
MONITOR_REPORT = "monitor_report.html"
MONITOR_HISTORY = "history.csv"  # one row per monitoring run, in the monitoring folder
TAG_HISTORY = "tag_history.csv"  # dynamic tag prevalence per monitoring run, beside it
# campaigns (`custseg campaign plan / evaluate`)
PLAN = "plan.csv"  # customer_id, scheme, segment, segment_name, strategy, group, plan_date
CAMPAIGN_RESULTS = "campaign_results.csv"  # one row per segment: uplift, CIs, cost, ROI
CAMPAIGN_SUMMARY = "campaign_summary.json"
CAMPAIGN_REPORT = "campaign_report.html"
CAMPAIGN_EFFECTS = "campaign_effects.csv"  # measured effect per (scheme, segment, strategy)


def plan_summary(plan: Path) -> Path:
    """The summary (JSON) written beside a plan file: plan.csv -> plan.summary.json."""
    return plan.with_name(plan.stem + ".summary.json")


def drift_page(group: str) -> str:
    """Evidently's page for one group of columns (features, predictions, target)."""
    return f"drift_{group}.html"


# sample data (`custseg sample`)
SAMPLE_FORMATS = ("csv", "parquet")
SAMPLE_TRUTH = "truth"  # sub-folder with the ground truth


def sample_file(table: str, fmt: str = "csv") -> str:
    """customers.csv, transactions.parquet, ..."""
    return f"{table}.{fmt}"


# --- the state folder ------------------------------------------------------------------------
PII_KEY = "pii.key"  # the key of the phone / e-mail hashes
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"


def sample_dir() -> Path:
    """Default folder of `custseg sample` and of the main job's own sample data."""
    return paths.home() / "sample"


def clean_dir() -> Path:
    """Default output folder of `custseg clean`."""
    return paths.home() / "clean"


def features_file() -> Path:
    """Default snapshot of `custseg features`."""
    return paths.home() / "features" / FEATURES


def run_dir() -> Path:
    """Default output folder of the main job (`custseg run`)."""
    return paths.home() / "output"


def train_dir() -> Path:
    """Default output folder of `custseg train` (the predictors alone)."""
    return paths.home() / "train"


def segments_dir() -> Path:
    """Default output folder of `custseg segment fit`."""
    return paths.home() / "segments"


def baskets_dir() -> Path:
    """Default output folder of `custseg basket`."""
    return paths.home() / "baskets"


def score_dir() -> Path:
    """Default output folder of `custseg score` (batch scores as Parquet parts)."""
    return paths.home() / "score"


def campaigns_dir() -> Path:
    """Default folder of `custseg campaign`: plans, results, and the strategy-effect table."""
    return paths.home() / "campaigns"


def campaign_effects() -> Path:
    """The strategy-effect table every `campaign evaluate` updates (`segment compare` reads it)."""
    return campaigns_dir() / CAMPAIGN_EFFECTS


def monitoring_root() -> Path:
    """Where monitoring keeps its history; each run writes a folder per as-of date inside."""
    return paths.home() / "monitoring"


def monitoring_dir(as_of: date) -> Path:
    """Default output folder of `custseg monitor` as of `as_of`."""
    return monitoring_root() / str(as_of)


# --- MLflow ----------------------------------------------------------------------------------
EXPERIMENT = "custseg"  # default experiment
CHAMPION = "champion"  # the registry alias of what is served, for every custseg model
PROJECT = "custseg"  # default project: the prefix of every registered model name
PROJECT_ENV = "CUSTSEG_PROJECT"  # `--project` sets it; the service reads it
PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,47}")
PROJECT_RULE = "letters, digits, '_' and '.', starting with a letter or digit, at most 48"


def project() -> str:
    """The project whose models a command registers and serves (`--project`, default custseg):
    two data sets in one MLflow store never share a registered model."""
    name = os.environ.get(PROJECT_ENV) or PROJECT
    if not PROJECT_NAME.fullmatch(name):
        raise ConfigError(f"{PROJECT_ENV} {name!r}: {PROJECT_RULE}")
    return name


PREDICTION_TARGETS = ("repurchase", "churn")
VALUE_TARGET = "value"  # the CLV model, registered as custseg-value


def model_set_name() -> str:
    """Registered model whose champion alias points at what is served, as one set."""
    return f"{project()}-model-set"


REFERENCE_DIR = "reference"  # artifact folder of a fitting run: the monitoring reference
REFERENCE_FILE = FEATURES
REFERENCE_TAG = "custseg.reference_run"  # on each scheme run: the run holding its reference


def segmenter_name(scheme: str) -> str:
    """Registered model of a segmentation scheme: <project>-segmenter-<scheme>."""
    return f"{project()}-segmenter-{scheme}"


def next_best_name() -> str:
    """Registered model of the next-best products (item-item co-occurrence):
    <project>-next-best."""
    return f"{project()}-next-best"


def predictor_name(target: str) -> str:
    """Registered model of a prediction target: <project>-repurchase, <project>-churn."""
    return f"{project()}-{target}"


def scheme_of(registered: str) -> str | None:
    """The scheme of a registered segmenter name of this project, None for any other model."""
    prefix = f"{project()}-segmenter-"
    return registered.removeprefix(prefix) if registered.startswith(prefix) else None


# artifacts inside an MLflow run (paths relative to the run's artifact root)
RUN_OUTPUTS = "outputs"  # scores.csv and report.html of the main job / `train`
RUN_CLEANING = "cleaning"  # the audit pages
RUN_MONITORING = "monitoring"  # a monitoring run's summary, report and Evidently pages
RUN_BASKETS = "baskets"  # a basket run's rules, next-best products and page
SNAPSHOT_META = "features/snapshot_meta.json"
PROFILE_TABLE = "profile.json"  # a scheme's profile, as an MLflow table
PROFILE_CSV = "profile.csv"
PLOTS = "plots"
TUNING_TRIALS = "tuning/trials.csv"
ASSIGNMENTS = "assignments.parquet"  # a scheme run's customer_id -> segment
SCHEME_DEFINITION = "scheme/definition.json"  # the scheme file's part that decided the fit
SPEC_HASH_TAG = "custseg.spec_hash"  # on scheme runs and segmenter versions: its definition
DATA_HASH_TAG = "custseg.data_hash"  # on scheme runs: the feature table's fingerprint
REUSED_TAG = "custseg.reused_from"  # on a scheme run that reused a fit: the run that made it
TUNING_ELBOW = "tuning/elbow.csv"
DRIVERS = "drivers.csv"  # a predictor's mean absolute contributions
DECISION = "decision.json"  # the promotion gate's decision
