"""Behavioural clustering tuned by Optuna: feature subset, scaling, family and K.

Tuning fits on a sample (`fit_sample`) and scores the silhouette on another sample
(`silhouette_sample`): silhouette is quadratic in N and never computed on all of a large table.
The final model is fitted once with the best parameters (K-Means on every customer, switching to
MiniBatchKMeans above `minibatch_above`; Gaussian mixture and BIRCH on the fit sample) and then
assigns every customer. Clusters are numbered by median spend, highest first, and named from
their profile (`naming`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.cluster import Birch, KMeans, MiniBatchKMeans
from sklearn.impute import SimpleImputer
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, RobustScaler, StandardScaler

from core.errors import ConfigError
from training.sampling import sample_rows
from training.segmentation import naming
from training.segmentation.base import Segment, numeric
from training.segmentation.spec import Options, SchemeSpec, check_strategy

FAMILIES = ("kmeans", "gmm", "birch")
SCALINGS = ("log_standard", "log_robust", "standard", "robust")
PENALTY = 1.0  # subtracted from the silhouette of a trial with a too-small segment
MIN_PER_CLUSTER = 20  # K is capped at customers / 20; fewer than 20 * k_min: no clustering


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """log1p that keeps the sign, so spend and trend features (which can be negative) share it."""
    return np.sign(x) * np.log1p(np.abs(x))


def preprocessor(scaling: str) -> Pipeline:
    steps = [("log", FunctionTransformer(signed_log1p))] if scaling.startswith("log") else []
    steps += [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", RobustScaler() if scaling.endswith("robust") else StandardScaler()),
    ]
    return Pipeline(steps)


def make_model(family: str, k: int, n: int, seed: int, minibatch_above: int):
    if family == "kmeans":
        if n > minibatch_above:
            return MiniBatchKMeans(k, batch_size=4096, n_init=3, random_state=seed)
        return KMeans(k, n_init=3, random_state=seed)
    if family == "gmm":
        return GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed)
    return Birch(n_clusters=k, threshold=0.5)


def matrix(features: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    return np.column_stack([numeric(features, c) for c in columns])


@dataclass(frozen=True)
class ClusterAssigner:
    columns: tuple[str, ...]
    transform: Pipeline
    model: object
    order: np.ndarray  # model label -> segment index (by median spend, highest first)
    keys: tuple[str, ...]

    def embed(self, features: pd.DataFrame) -> np.ndarray:
        return transform(self.transform, matrix(features, self.columns))

    def assign(self, features: pd.DataFrame) -> np.ndarray:
        if not len(features):
            return np.array([], dtype=object)
        return np.asarray(self.keys, dtype=object)[
            self.order[predict(self.model, self.embed(features))]
        ]


DISTANCES_AT_ONCE = 2_000_000  # rows x centres per distance block (16 MB of float64)


def transform(pipeline: Pipeline, x: np.ndarray) -> np.ndarray:
    """`pipeline.transform(x)` for the steps `preprocessor` makes, as numpy arithmetic on their
    fitted statistics (another step: its own transform). sklearn checks its input at every step,
    which cost more than the arithmetic at one customer a request (the service)."""
    x = np.array(x, dtype="float64")  # a copy: the steps below work in place
    for _, step in pipeline.steps:
        if isinstance(step, FunctionTransformer) and step.func is signed_log1p:
            x = signed_log1p(x)
        elif isinstance(step, SimpleImputer) and not step.add_indicator:
            x = np.where(np.isnan(x), step.statistics_, x)
        elif isinstance(step, RobustScaler | StandardScaler):
            robust = isinstance(step, RobustScaler)
            center = step.center_ if robust else step.mean_
            if center is not None and (step.with_centering if robust else step.with_mean):
                x -= center
            if step.scale_ is not None:
                x /= step.scale_
        else:
            x = step.transform(x)
    return x


def predict(model: object, x: np.ndarray) -> np.ndarray:
    """`model.predict(x)`; for K-Means and BIRCH, the nearest centre by matrix products over
    blocks of rows (as sklearn computes the distances, without its per-call checks, which
    dominated a request's clustering)."""
    if not isinstance(model, Birch | KMeans | MiniBatchKMeans):
        return model.predict(x)
    birch = isinstance(model, Birch)
    centers = model.subcluster_centers_ if birch else model.cluster_centers_
    norms = (centers * centers).sum(axis=1)
    step = max(DISTANCES_AT_ONCE // len(centers), 1)
    nearest = np.concatenate(
        [
            np.argmin(norms - 2 * x[i : i + step] @ centers.T, axis=1)  # + |x|^2: same argmin
            for i in range(0, max(len(x), 1), step)  # one (empty) block for no rows
        ]
    )
    return model.subcluster_labels_[nearest] if birch else nearest


@dataclass(frozen=True)
class Choice:
    subset: str
    scaling: str
    family: str
    k: int


@dataclass(frozen=True)
class ClusteringScheme:
    subsets: dict[str, tuple[str, ...]]
    families: tuple[str, ...]
    scalings: tuple[str, ...]
    k_min: int = 3
    k_max: int = 8
    trials: int = 20
    silhouette_sample: int = 4000
    fit_sample: int = 40000
    minibatch_above: int = 50000
    min_segment_share: float = 0.02
    stability_refits: int = 5
    seed: int = 42
    chosen: Choice | None = None
    study: object = field(default=None, compare=False, repr=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for cols in self.subsets.values() for c in cols))

    @classmethod
    def parse(cls, spec: SchemeSpec, strategies, where: str) -> ClusteringScheme:
        opts = Options(where, spec.options)
        raw = opts.get("subsets", dict, required=True)
        subsets = {}
        for name, cols in raw.items():
            if not (isinstance(cols, list) and cols and all(isinstance(c, str) for c in cols)):
                raise ConfigError(
                    f"{where}: subsets.{name} = {cols!r}: expected a list of feature names"
                )
            subsets[name] = tuple(cols)
        if not subsets:
            raise ConfigError(f"{where}: subsets: define at least one feature subset")
        families = tuple(opts.strings("families", list(FAMILIES)))
        scalings = tuple(opts.strings("scalings", ["log_standard"]))
        for key, values, known in (
            ("families", families, FAMILIES),
            ("scalings", scalings, SCALINGS),
        ):
            bad = [v for v in values if v not in known]
            if bad:
                raise ConfigError(
                    f"{where}: {key}: unknown {', '.join(bad)}; known: {', '.join(known)}"
                )
        ints = {}
        for key, default, lo in (
            ("k_min", 3, 2),
            ("k_max", 8, 2),
            ("trials", 20, 1),
            ("silhouette_sample", 4000, 100),
            ("fit_sample", 40000, 100),
            ("minibatch_above", 50000, 100),
            ("stability_refits", 5, 0),
            ("seed", 42, 0),
        ):
            ints[key] = opts.get(key, int, default)
            if ints[key] < lo:
                raise ConfigError(f"{where}: {key} = {ints[key]}: expected a whole number >= {lo}")
        if ints["k_min"] > ints["k_max"]:
            raise ConfigError(f"{where}: k_min = {ints['k_min']} is above k_max = {ints['k_max']}")
        share = opts.number("min_segment_share", 0.02, 0.0, 0.5)
        opts.done()
        for key in naming.ARCHETYPES:
            check_strategy(f"{where} (cluster strategies)", key, strategies)
        return cls(subsets, families, scalings, min_segment_share=share, **ints)

    def too_few(self, n: int) -> str | None:
        """Why `n` customers are too few to cluster (None when they are enough)."""
        need = MIN_PER_CLUSTER * self.k_min
        if n < need:
            per = f"{MIN_PER_CLUSTER} per cluster"
            return f"{n:,} customer(s); clustering needs at least {need} ({per})"
        return None

    def k_max_for(self, n: int) -> int:
        return max(self.k_min, min(self.k_max, n // MIN_PER_CLUSTER))

    # -- tuning -------------------------------------------------------------------------------
    def tune(
        self, features: pd.DataFrame, trials: int | None = None, on_trial: Callable | None = None
    ):
        """Optuna TPE over subset x scaling x family x K; returns the scheme with `chosen` set."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        rng = np.random.default_rng(self.seed)
        fit_rows = sample_rows(rng, len(features), self.fit_sample)
        eval_rows = sample_rows(rng, len(features), self.silhouette_sample)
        fit_df, eval_df = features.iloc[fit_rows], features.iloc[eval_rows]

        seen: dict[Choice, dict[str, float]] = {}  # TPE re-proposes points in a small space

        def objective(trial) -> float:
            choice = Choice(
                trial.suggest_categorical("subset", list(self.subsets)),
                trial.suggest_categorical("scaling", list(self.scalings)),
                trial.suggest_categorical("family", list(self.families)),
                trial.suggest_int("k", self.k_min, self.k_max_for(len(features))),
            )
            if choice not in seen:
                seen[choice] = self._score(choice, fit_df, eval_df, self.seed)
            scores = seen[choice]
            for name, value in scores.items():
                trial.set_user_attr(name, value)
            penalty = PENALTY if scores["min_segment_share"] < self.min_segment_share else 0.0
            return scores["silhouette"] - penalty

        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.seed)
        )
        callbacks = [lambda s, t: on_trial(t)] if on_trial else []
        study.optimize(objective, n_trials=trials or self.trials, callbacks=callbacks)
        best = study.best_trial.params
        chosen = Choice(best["subset"], best["scaling"], best["family"], best["k"])
        return replace(self, chosen=chosen, study=study)

    def _score(self, choice: Choice, fit_df, eval_df, seed: int) -> dict[str, float]:
        cols = self.subsets[choice.subset]
        pre = preprocessor(choice.scaling).fit(matrix(fit_df, cols))
        z_fit = pre.transform(matrix(fit_df, cols))
        model = _fit(
            make_model(choice.family, choice.k, len(z_fit), seed, self.minibatch_above), z_fit
        )
        shares = np.bincount(model.predict(z_fit), minlength=choice.k) / len(z_fit)
        z_eval = pre.transform(matrix(eval_df, cols))
        labels = model.predict(z_eval)
        return {"min_segment_share": float(shares.min()), **separation(z_eval, labels)}

    def elbow(self, features: pd.DataFrame, k_values: range | None = None) -> pd.DataFrame:
        """Inertia (K-Means) and silhouette (chosen family) for each K, on the chosen subset and
        scaling: the elbow and silhouette-vs-K plots."""
        c = self._require_chosen()
        rng = np.random.default_rng(self.seed + 1)
        fit_df = features.iloc[sample_rows(rng, len(features), min(self.fit_sample, 10000))]
        eval_df = features.iloc[sample_rows(rng, len(features), self.silhouette_sample)]
        cols = self.subsets[c.subset]
        pre = preprocessor(c.scaling).fit(matrix(fit_df, cols))
        z = pre.transform(matrix(fit_df, cols))
        rows = []
        top = min(max(self.k_max, 10), len(fit_df) // MIN_PER_CLUSTER)
        for k in k_values or range(2, max(top, 2) + 1):
            km = _fit(KMeans(k, n_init=3, random_state=self.seed), z)
            scores = self._score(replace(c, k=k), fit_df, eval_df, self.seed)
            rows.append({"k": k, "inertia": float(km.inertia_), **scores})
        return pd.DataFrame(rows)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, features: pd.DataFrame, seed: int | None = None) -> ClusterAssigner:
        c = self._require_chosen()
        seed = self.seed if seed is None else seed
        cols = self.subsets[c.subset]
        x = matrix(features, cols)
        pre = preprocessor(c.scaling).fit(x)
        z = pre.transform(x)
        if c.family == "kmeans":
            model = _fit(make_model(c.family, c.k, len(z), seed, self.minibatch_above), z)
        else:
            rows = sample_rows(np.random.default_rng(seed), len(z), self.fit_sample)
            model = _fit(make_model(c.family, c.k, len(rows), seed, self.minibatch_above), z[rows])
        labels = model.predict(z)
        spend = numeric(features, "monetary") if "monetary" in features else x[:, 0]
        order = _order_by_spend(labels, spend, c.k)
        return ClusterAssigner(
            cols, pre, model, order, tuple(f"cluster_{i + 1}" for i in range(c.k))
        )

    def describe(self, assigner: ClusterAssigner, features: pd.DataFrame) -> list[Segment]:
        return naming.name_segments(features, assigner.assign(features), list(assigner.keys))

    def _require_chosen(self) -> Choice:
        if self.chosen is None:
            raise RuntimeError("tune() the clustering scheme before fitting it")
        return self.chosen


def separation(z: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin of `labels` in the space `z` (NaN when
    there is a single label)."""
    if not 2 <= len(np.unique(labels)) < len(labels):  # silhouette's own domain
        return {
            "silhouette": -1.0,
            "calinski_harabasz": float("nan"),
            "davies_bouldin": float("nan"),
        }
    return {
        "silhouette": float(silhouette_score(z, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(z, labels)),
        "davies_bouldin": float(davies_bouldin_score(z, labels)),
    }


def _fit(model, z: np.ndarray):
    with warnings.catch_warnings():  # convergence chatter on tiny or degenerate samples
        warnings.simplefilter("ignore")
        return model.fit(z)


def _order_by_spend(labels: np.ndarray, spend: np.ndarray, k: int) -> np.ndarray:
    """model label -> segment index: highest median spend first, then larger first, then label."""
    frame = pd.DataFrame({"label": labels, "spend": spend})
    stats = frame.groupby("label")["spend"].agg(["median", "size"]).reindex(range(k))
    stats["median"] = stats["median"].fillna(-np.inf)
    stats["size"] = stats["size"].fillna(0)
    ranked = stats.sort_values(["median", "size"], ascending=False, kind="stable").index.to_numpy()
    order = np.empty(k, dtype=np.int64)
    order[ranked] = np.arange(k)
    return order
