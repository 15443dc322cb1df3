"""Decision-tree segments: a tree learned to separate a business outcome, one segment a leaf.

Target: `repurchase` (any order in the next `horizon_days`), `churn` (none), `spend` (net spend
in the horizon), or a numeric feature column. Outcome targets are learned out of time, like
the predictors: the tree grows on the features at c1 = as_of - 2h with the outcomes in
(c1, c1 + h], its leaves are measured on the held-out cutoff c2 = as_of - h with the outcomes
in (c2, as_of] (per-leaf rate with a 95% interval, and eta squared: the share of the outcome's
variance between the leaves), then it is grown again with the same settings on c2 (the
freshest labels) and that tree assigns every customer. A log too short for c1 (60 days of
history before it) learns on c2 alone, measured on 30% of its customers held out (a note says
so); a log shorter still skips the scheme. A feature target needs no labels: it learns on the
as-of table, measured on 30% of customers held out.

Every target is grown with a regression tree (squared error): for a 0/1 outcome that is the
Gini split of a classification tree, and a leaf's value is its rate. Leaves are ranked by
their outcome (`leaf_1` best); each leaf's path, with the bounds on one feature merged, is a
rule, and the fitted assigner is an ordinary first-match-wins `RuleAssigner` over those
rules, so serving is vectorised and `custseg segment export-rules` writes it as a `rules`
scheme. Missing inputs: the tree learns on values with NaN filled by the training median
(learned at fit); on a column that had missing values a rule then says where a missing value
goes (`missing = true` on the column's bounds when its training median satisfies them), which
places it exactly as the filled value. On a column that never was missing in training a
missing value satisfies no bound, so such a customer falls to the default (last) leaf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from core.errors import ConfigError, InputError
from training.segmentation.base import Segment, numeric
from training.segmentation.outcomes import OUTCOMES, History, eta_squared, rates
from training.segmentation.rules import Condition, Rule, RuleAssigner
from training.segmentation.spec import Options, SchemeSpec

FEATURES = (
    "recency_days",
    "frequency_orders",
    "monetary",
    "avg_order_value",
    "tenure_days",
    "interpurchase_mean_days",
    "online_share",
    "orders_180d",
    "spend_180d",
    "orders_trend_90d",
)
MIN_HISTORY_DAYS = 60  # history a learning cutoff needs before it
HOLD_OUT = 0.3  # share of customers held out when there is no later window
OUTCOME_WORDS = {  # target -> (English, Chinese) for leaf names
    "repurchase": ("repurchase", "复购率"),
    "churn": ("churn", "流失率"),
    "spend": ("spend", "消费"),
}
HIGH, LOW = 1.25, 0.75  # a leaf's outcome vs everyone's: above HIGH is high, below LOW low


class NothingToLearn(InputError):
    """The outcome does not vary where the tree would learn: the scheme is skipped, not an
    error (a log where nobody came back)."""


@dataclass(frozen=True)
class TreeAssigner(RuleAssigner):
    """The leaves as first-match-wins rules (the last leaf is the default); `last` keeps the
    default leaf's own path for its definition, `fill` the training medians."""

    last: tuple[Condition, ...] = ()
    fill: tuple[tuple[str, float], ...] = ()
    node_keys: tuple[str, ...] = ()  # the keys by their leaf's position in the tree

    def learned(self) -> dict:
        return {f"fill_{c}": v for c, v in self.fill}

    def segment_of(self, key: str) -> Segment:
        return {s.key: s for s in (*(r.segment for r in self.rules), self.default)}[key]


def grow(x: np.ndarray, y: np.ndarray, max_leaves: int, max_depth, min_leaf: int, seed: int):
    from sklearn.tree import DecisionTreeRegressor

    return DecisionTreeRegressor(
        max_leaf_nodes=max(max_leaves, 2),
        max_depth=max_depth,
        min_samples_leaf=max(min_leaf, 1),
        random_state=seed,
    ).fit(x, y)


def paths(model, columns: list[str]) -> list[tuple[int, list[Condition]]]:
    """(leaf node id, its path's conditions) for every leaf, left to right."""
    t = model.tree_
    out = []

    def walk(node: int, conds: list[Condition]) -> None:
        if t.children_left[node] == -1:
            out.append((node, conds))
            return
        col, thr = columns[t.feature[node]], float(t.threshold[node])
        walk(t.children_left[node], [*conds, Condition(col, "max", thr)])
        walk(t.children_right[node], [*conds, Condition(col, "above", thr)])

    walk(0, [])
    return out


def simplify(conds: list[Condition], fill: dict[str, float] | None = None) -> tuple:
    """One lower and one upper bound per feature (the tightest), in the order features first
    appear; `missing` set where the feature's fill value satisfies its bounds."""
    fill = fill or {}
    out: list[Condition] = []
    for column in dict.fromkeys(c.column for c in conds):
        mine = [c for c in conds if c.column == column]
        lows = [c.value for c in mine if c.bound == "above"]
        highs = [c.value for c in mine if c.bound == "max"]
        bounds = ([("above", max(lows))] if lows else []) + ([("max", min(highs))] if highs else [])
        m = fill.get(column, np.nan)
        ok = not np.isnan(m) and all(m > v if b == "above" else m <= v for b, v in bounds)
        out += [Condition(column, b, v, ok) for b, v in bounds]
    return tuple(out)


@dataclass
class Learned:
    """A tree grown on one table: its settings, the medians, the model and its rules."""

    columns: list[str]
    fill: dict[str, float]
    model: object
    leaves: list[tuple[int, tuple[Condition, ...]]]  # node id, simplified path

    def matrix(self, table: pd.DataFrame) -> np.ndarray:
        x = np.column_stack([numeric(table, c) for c in self.columns])
        fill = np.array([self.fill[c] for c in self.columns])
        return np.where(np.isnan(x), fill, x)

    def node(self, table: pd.DataFrame) -> np.ndarray:
        """The leaf node of each row (median-filled, as learned)."""
        return self.model.apply(self.matrix(table).astype(np.float32))


def learn(table: pd.DataFrame, y: np.ndarray, columns: list[str], settings: dict, seed: int):
    fill = {}
    for c in columns:
        v = numeric(table, c)
        fill[c] = float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0
    x = np.column_stack([numeric(table, c) for c in columns])
    x = np.where(np.isnan(x), np.array([fill[c] for c in columns]), x)
    min_leaf = int(np.ceil(settings["min_leaf_share"] * len(y)))
    model = grow(x, y, settings["max_leaves"], settings["max_depth"], min_leaf, seed)
    # a missing value goes where its median went, said on the columns that had missing values
    # (elsewhere "or missing" would only clutter the rule; a missing value there matches no
    # bound on the column, so that customer falls to the default leaf)
    gaps = {c: fill[c] for c in columns if np.isnan(numeric(table, c)).any()}
    leaves = [(n, simplify(p, gaps)) for n, p in paths(model, columns)]
    return Learned(columns, fill, model, leaves)


def assigner(learned: Learned, keys: dict[int, str], segments: dict[str, Segment]) -> TreeAssigner:
    """Rules in key order (leaf_1 first), the last key the default."""
    by_key = {keys[n]: conds for n, conds in learned.leaves}
    order = sorted(by_key, key=lambda k: int(k.rsplit("_", 1)[1]))
    rules = tuple(Rule(segments[k], by_key[k]) for k in order[:-1])
    return TreeAssigner(
        rules,
        segments[order[-1]],
        by_key[order[-1]],
        tuple(sorted(learned.fill.items())),
        tuple(keys[n] for n, _ in learned.leaves),
    )


def _plain(learned: Learned, table: pd.DataFrame, y: np.ndarray, better: bool) -> TreeAssigner:
    """The rules with neutral segments, leaf_1 ... leaf_k by the outcome on (table, y), best
    first (ties and empty leaves by position in the tree)."""
    order = {n: f"leaf_{i + 1}" for i, (n, _) in enumerate(learned.leaves)}
    first = assigner(learned, order, _neutral(order.values()))
    means = rates(first.assign(table), y)["mean"].to_dict()
    keys = _keys(learned, first, means, better)
    return assigner(learned, keys, _neutral(keys.values()))


def _keys(learned: Learned, provisional: TreeAssigner, means: dict, better: bool = True):
    """node -> leaf_i ranked by `means` (keyed by the provisional keys), best first."""
    by_node = dict(zip([n for n, _ in learned.leaves], _order(provisional), strict=True))
    worst = -np.inf if better else np.inf

    def rank(n: int) -> tuple:
        m = means.get(by_node[n], np.nan)
        m = worst if np.isnan(m) else m
        return (-m if better else m, n)

    return {n: f"leaf_{i + 1}" for i, n in enumerate(sorted(by_node, key=rank))}


def _order(a: TreeAssigner) -> list[str]:
    """The keys of `a` by the position of their leaf in the tree (as `paths` lists them)."""
    return list(a.node_keys)


def _neutral(keys) -> dict[str, Segment]:
    return {k: Segment(k, k, k, "maintain") for k in keys}


def _table(a: TreeAssigner, table: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    """Per leaf (leaf_1 first): its rule, customers, the outcome's mean and 95% interval."""
    from training.segmentation.definitions import tree_rules

    measured = rates(a.assign(table), y)
    keys = sorted(a.node_keys, key=lambda k: int(k[5:]))
    out = measured.reindex(keys).rename_axis("leaf").reset_index()
    out["customers"] = out["customers"].fillna(0).astype(int)
    rules = tree_rules(a)
    out.insert(1, "rule", [rules[k] for k in keys])
    return out


@dataclass(frozen=True)
class TreeScheme:
    target: str
    horizon_days: int
    max_leaves: int
    min_leaf_share: float
    features: tuple[str, ...] | None  # None: the default list, those present
    trials: int
    seed: int

    learns = True

    @property
    def outcome(self) -> bool:
        return self.target in OUTCOMES

    @property
    def columns(self) -> tuple[str, ...]:
        """What the as-of table must hold (configured features, a feature target)."""
        return (*(self.features or ()), *(() if self.outcome else (self.target,)))

    @classmethod
    def parse(cls, spec: SchemeSpec, strategies, where: str) -> TreeScheme:
        opts = Options(where, spec.options)
        target = opts.get("target", str, "repurchase")
        horizon = opts.get("horizon_days", int, 90)
        if not 7 <= horizon <= 730:
            raise ConfigError(f"{where}: horizon_days = {horizon}: expected 7 to 730 days")
        leaves = opts.get("max_leaves", int, 8)
        if not 2 <= leaves <= 64:
            raise ConfigError(f"{where}: max_leaves = {leaves}: expected 2 to 64")
        share = opts.number("min_leaf_share", 0.05, 0.001, 0.5)
        features = opts.strings("features", list(FEATURES)) if "features" in spec.options else None
        if features and target in features:
            raise ConfigError(f"{where}: the target {target!r} cannot also be a feature")
        trials = opts.get("trials", int, 0)
        if trials < 0:
            raise ConfigError(f"{where}: trials = {trials}: expected 0 (no tuning) or more")
        seed = opts.get("seed", int, 42)
        opts.done()
        return cls(target, horizon, leaves, share, tuple(features) if features else None,
                   trials, seed)  # fmt: skip

    def skip_reason(self, features: pd.DataFrame, history: History | None) -> str | None:
        if not self.outcome:
            return None
        if history is None:
            return (
                f"target {self.target} is learned out of time on the transaction log, which a "
                "feature snapshot does not carry: `custseg run` fits it"
            )
        c2 = history.as_of - timedelta(days=self.horizon_days)
        if c2 < history.first_order + timedelta(days=MIN_HISTORY_DAYS):
            need = self.horizon_days + MIN_HISTORY_DAYS
            return (
                f"target {self.target}: the log runs {history.first_order} to {history.as_of} "
                f"({(history.as_of - history.first_order).days} days); a {self.horizon_days}-day "
                f"outcome after {MIN_HISTORY_DAYS} days of history needs at least {need} days"
            )
        return None

    def inputs(self, table: pd.DataFrame) -> list[str]:
        if self.features:
            missing = [c for c in self.features if c not in table]
            if missing:
                raise InputError(
                    f"tree: the feature table at a backtest cutoff lacks {', '.join(missing)} "
                    "(features are built from the log; value-model columns such as clv are not)"
                )
            return list(self.features)
        cols = [c for c in FEATURES if c in table and c != self.target]
        return [c for c in cols if np.isfinite(numeric(table, c)).any()]

    def learn(
        self, features: pd.DataFrame, history: History | None, strategies, on_trial=None
    ) -> FittedTree:
        """Grow, measure on the held-out window, grow again on the freshest labels."""
        notes: list[str] = []
        h = timedelta(days=self.horizon_days)
        mask = None  # customers of the learning cutoff held out (no later window)
        if self.outcome:
            c2 = history.as_of - h
            c1 = c2 - h
            train, y_train = history.labelled(c2, self.horizon_days, self.target)
            if c1 >= history.first_order + timedelta(days=MIN_HISTORY_DAYS):
                learn_x, learn_y = history.labelled(c1, self.horizon_days, self.target)
                held_x, held_y = train, y_train
                how = f"learned on cutoff {c1}, measured on the held-out cutoff {c2}"
            else:
                held = _held_out(train["customer_id"])
                learn_x, learn_y = train[~held].reset_index(drop=True), y_train[~held]
                held_x, held_y = train[held].reset_index(drop=True), y_train[held]
                mask = held_x["customer_id"]
                how = (
                    f"learned on {1 - HOLD_OUT:.0%} of the customers at cutoff {c2}, "
                    f"measured on the other {HOLD_OUT:.0%}"
                )
                notes.append(
                    f"{self.target} tree: the log is short for a {self.horizon_days}-day "
                    f"learning window before the held-out one (cutoff {c1} would have under "
                    f"{MIN_HISTORY_DAYS} days of history): {how}"
                )
        else:
            train, y_train = features, numeric(features, self.target)
            ok = ~np.isnan(y_train)
            train, y_train = train[ok].reset_index(drop=True), y_train[ok]
            held = _held_out(train["customer_id"])
            learn_x, learn_y = train[~held].reset_index(drop=True), y_train[~held]
            held_x, held_y = train[held].reset_index(drop=True), y_train[held]
            how = f"learned on {1 - HOLD_OUT:.0%} of the customers, measured on the other 30%"
        if len(learn_y) < 20 or np.nanstd(learn_y) == 0 or len(held_y) == 0:
            raise NothingToLearn(
                f"target {self.target} does not vary among the {len(learn_y)} customers it "
                "would learn on (or none are held out to measure it): nothing to separate"
            )
        columns = self.inputs(learn_x)
        settings = {"max_leaves": self.max_leaves, "max_depth": None,
                    "min_leaf_share": self.min_leaf_share}  # fmt: skip
        study = None
        if self.trials:
            settings, study = self.tune(learn_x, learn_y, columns, on_trial)
        better = self.target != "churn"
        first = learn(learn_x, learn_y, columns, settings, self.seed)
        first_rules = _plain(first, learn_x, learn_y, better)
        held_labels = first_rules.assign(held_x)
        heldout_eta2 = eta_squared(held_labels, held_y)
        final = learn(train, y_train, columns, settings, self.seed)
        provisional = _plain(final, train, y_train, better)
        labels = provisional.assign(train)
        by_key = rates(labels, y_train)["mean"].to_dict()
        keys = dict(zip([n for n, _ in final.leaves], provisional.node_keys, strict=True))
        segments = self.name(final, keys, by_key, float(np.mean(y_train)), features, strategies)
        fitted_assigner = assigner(final, keys, segments)
        leaves = _table(fitted_assigner, train, y_train)
        leaves.insert(1, "name", [fitted_assigner.segment_of(k).name for k in leaves["leaf"]])
        return FittedTree(
            self,
            fitted_assigner,
            [fitted_assigner.segment_of(k) for k in leaves["leaf"]],
            final,
            (train, y_train, settings),
            first_rules if self.outcome else fitted_assigner,
            mask,
            metrics={
                "tree_heldout_eta2": heldout_eta2,
                "tree_leaves": float(len(final.leaves)),
                "tree_heldout_customers": float(len(held_y)),
            },
            params={
                "learned_how": how,
                **{f"chosen.{k}": v for k, v in settings.items()},
                "inputs": ",".join(columns),
            },
            extras={
                "leaves": leaves,
                "heldout_leaves": _table(first_rules, held_x, held_y),
                **({"trials": _trials(study)} if study else {}),
            },  # fmt: skip
            notes=notes,
        )

    def tune(self, x: pd.DataFrame, y: np.ndarray, columns: list[str], on_trial=None):
        """Optuna over leaves, depth and the smallest leaf, scored by eta squared on 30% of
        the learning customers held out (the held-out window stays untouched), less a penalty
        for a leaf under `min_leaf_share` of them."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        held = _held_out(x["customer_id"])
        fit_x, fit_y = x[~held].reset_index(drop=True), y[~held]
        val_x, val_y = x[held].reset_index(drop=True), y[held]

        def objective(trial) -> float:
            settings = {
                "max_leaves": trial.suggest_int("max_leaves", 2, self.max_leaves),
                "max_depth": trial.suggest_int("max_depth", 2, 8),
                "min_leaf_share": trial.suggest_float(
                    "min_leaf_share", self.min_leaf_share, max(self.min_leaf_share, 0.2), log=True
                ),
            }
            got = learn(fit_x, fit_y, columns, settings, self.seed).node(val_x)
            smallest = pd.Series(got).value_counts(normalize=True).min()
            score = eta_squared(got, val_y)
            score = 0.0 if np.isnan(score) else score
            penalty = max(0.0, self.min_leaf_share - smallest)
            trial.set_user_attr("eta2", score)
            trial.set_user_attr("smallest_share", float(smallest))
            if on_trial:
                on_trial(trial)
            return score - penalty

        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.seed)
        )
        study.optimize(objective, n_trials=self.trials)
        best = dict(study.best_params)
        return best, study

    def name(self, learned, keys, values, overall, features, strategies) -> dict[str, Segment]:
        """Names from each leaf's profile on the as-of table (naming.py), with the leaf's
        outcome; the strategy from the outcome level (`strategy_for`)."""
        from training.segmentation.naming import name_segments

        labels = assigner(learned, keys, _neutral(keys.values())).assign(features)
        order = sorted(keys.values(), key=lambda k: int(k[5:]))
        named = {s.key: s for s in name_segments(features, labels, order)}
        en_word, zh_word = OUTCOME_WORDS.get(self.target, (self.target, self.target))
        out = {}
        for key in keys.values():
            value = values.get(key, np.nan)
            text = _value(value, self.target)
            value_high = _value_high(features, labels, key)
            s = named[key]
            strategy = strategy_for(value, overall, self.target != "churn", value_high, s.strategy)
            if strategy not in strategies:
                strategy = s.strategy
            en, zh = f"{s.name} ({en_word} {text})", f"{s.name_zh}（{zh_word}{text}）"
            out[key] = Segment(key, en, zh, strategy)
        return out


def strategy_for(value: float, overall: float, higher_better: bool, value_high: bool,
                 profile_strategy: str) -> str:  # fmt: skip
    """By the leaf's outcome against everyone's (good = high repurchase or spend, low churn):
    a good leaf is deepened (core_loyal) when its customers are of high value, grown (grow)
    otherwise; a middling one nurtured; a bad one won back (win_back_high_value when of high
    value, low_cost when its profile is low value and rare, else win_back)."""
    if not np.isfinite(value) or not overall:
        return profile_strategy
    ratio = value / overall if higher_better else overall / max(value, 1e-12)
    if ratio >= HIGH:
        return "core_loyal" if value_high else "grow"
    if ratio > LOW:
        return "nurture"
    if value_high:
        return "win_back_high_value"
    return "low_cost" if profile_strategy == "low_cost" else "win_back"


def _value(value: float, target: str) -> str:
    if target in ("repurchase", "churn"):
        return f"{value:.0%}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _value_high(features: pd.DataFrame, labels: np.ndarray, key: str) -> bool:
    from training.segmentation.naming import level, percentile

    if "monetary" not in features:
        return False
    m = numeric(features, "monetary")
    members = m[labels == key]
    if not np.isfinite(members).any():
        return False
    return level(percentile(m, float(np.nanmedian(members)))) == 0


def _held_out(ids: pd.Series) -> np.ndarray:
    from training.prediction.dataset import _held_out as stable

    return stable(ids.reset_index(drop=True)).to_numpy()


def _trials(study) -> pd.DataFrame:
    rows = [{"trial": t.number, **t.params, "value": t.value, **t.user_attrs} for t in study.trials]
    return pd.DataFrame(rows)


@dataclass
class FittedTree:
    """A learned tree scheme as `fit_scheme` uses a kind: `fit` gives the assigner (a seed
    other than 0: a tree regrown on a bootstrap of the training rows, for stability)."""

    scheme: TreeScheme
    assigner: TreeAssigner
    segments: list[Segment]
    model: Learned
    training: tuple  # (table, y, settings) the final tree grew on
    heldout_assigner: TreeAssigner  # the tree grown before the held-out window
    heldout_customers: pd.Series | None  # held out of the same cutoff (no later window)
    metrics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    learns = True

    @property
    def columns(self) -> tuple[str, ...]:
        return self.assigner.columns

    def fit(self, features: pd.DataFrame, seed: int = 0) -> TreeAssigner:
        if seed == 0:
            return self.assigner
        table, y, settings = self.training
        rows = np.random.default_rng(seed).integers(0, len(y), len(y))
        boot = learn(table.iloc[rows].reset_index(drop=True), y[rows], self.model.columns,
                     settings, self.scheme.seed)  # fmt: skip
        keys = {n: f"leaf_{i + 1}" for i, (n, _) in enumerate(boot.leaves)}
        return assigner(boot, keys, _neutral(keys.values()))

    def describe(self, assigner: TreeAssigner, features: pd.DataFrame) -> list[Segment]:
        return list(self.segments)

    def heldout_assign(self, table: pd.DataFrame) -> np.ndarray:
        """Segments of the tree grown before the held-out window (for the common held-out
        measure: the final tree has seen that window's outcomes). Customers used to learn
        it (a short log's same-cutoff hold-out) are marked None and left out."""
        labels = self.heldout_assigner.assign(table).astype(object)
        if self.heldout_customers is not None:
            labels[~table["customer_id"].isin(self.heldout_customers).to_numpy()] = None
        return labels


__all__ = ["FittedTree", "TreeAssigner", "TreeScheme"]
