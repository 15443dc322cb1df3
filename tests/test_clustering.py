"""Behavioural clustering: recovers well-separated latent groups, deterministic, honest metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from core.errors import InputError
from training.segmentation import fit_scheme, load, parse
from training.segmentation.clustering import ClusteringScheme, signed_log1p

# latent groups: (recency days, orders, mean order value, tenure days, online share)
GROUPS = (
    (5, 30, 800, 900, 0.8),  # loyal, frequent, recent: the top spenders
    (400, 2, 60, 500, 0.3),  # lapsed one- or two-timers
    (40, 8, 150, 200, 0.9),  # newer regulars
    (200, 12, 1500, 800, 0.2),  # big-basket, lapsing
)


def latent_features(n_per_group: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature rows drawn around well-separated group centres (log-normal noise)."""
    rng = np.random.default_rng(seed)
    parts, truth = [], []
    for g, (rec, freq, aov, tenure, online) in enumerate(GROUPS):
        n = n_per_group

        def noise(centre, n=n):
            return centre * rng.lognormal(0, 0.25, n)

        orders = np.maximum(1, np.round(noise(freq))).astype(int)
        value = noise(aov)
        parts.append(
            pd.DataFrame(
                {
                    "recency_days": np.round(noise(rec)).astype(int),
                    "frequency_orders": orders,
                    "monetary": orders * value,
                    "avg_order_value": value,
                    "tenure_days": np.round(noise(tenure)).astype(int),
                    "interpurchase_mean_days": noise(tenure / max(freq, 1)),
                    "online_share": np.clip(online + rng.normal(0, 0.05, n), 0, 1),
                    "orders_trend_90d": rng.integers(-1, 2, n),
                }
            )
        )
        truth.append(np.full(n, g))
    features = pd.concat(parts, ignore_index=True)
    features.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(features))])
    return features, np.concatenate(truth)


def clustering_spec(trials: int = 12):
    sf = load()
    return next(s for s in sf.schemes if s.kind == "clustering"), sf, trials


def test_clustering_recovers_well_separated_latent_groups():
    features, truth = latent_features()
    s, sf, trials = clustering_spec()
    fitted = fit_scheme(s, sf, features, trials=trials)
    ari = adjusted_rand_score(truth, fitted.labels)
    chosen = {k: v for k, v in fitted.params.items() if k.startswith("chosen.")}
    print(f"adjusted Rand index vs latent groups: {ari:.3f} (chosen {chosen})")
    assert ari >= 0.8
    assert fitted.params["chosen.k"] == len(GROUPS)
    # honest metrics: silhouette on a sample, plus CH, DB and bootstrap stability
    m = fitted.metrics
    assert 0.3 < m["silhouette"] <= 1 and m["calinski_harabasz"] > 0 and m["davies_bouldin"] > 0
    assert 0.8 <= m["stability_ari"] <= 1.0
    assert len(fitted.extras["trials"]) == trials
    assert set(fitted.extras["elbow"]["k"]) == set(range(2, 11))
    # every cluster named from its profile; the loyal group is the high-value, recent one
    loyal = pd.Series(fitted.labels[truth == 0]).mode()[0]
    assert fitted.segment(loyal).name.startswith("high value, frequent, recent")
    assert fitted.segment(loyal).strategy == "core_loyal"


def test_clustering_is_deterministic_and_numbered_by_spend():
    features, _ = latent_features(150, seed=1)
    s, sf, _ = clustering_spec()
    a = fit_scheme(s, sf, features, trials=6)
    b = fit_scheme(s, sf, features.copy(), trials=6)
    assert list(a.labels) == list(b.labels)
    assert a.segments == b.segments
    spend = pd.Series(features["monetary"].to_numpy()).groupby(a.labels).median()
    keys = [seg.key for seg in a.segments if seg.key in spend.index]
    assert spend[keys].is_monotonic_decreasing  # cluster_1 spends the most


def test_the_segmenter_assigns_new_rows_like_the_fit():
    features, _ = latent_features(150, seed=2)
    s, sf, _ = clustering_spec()
    fitted = fit_scheme(s, sf, features, trials=4)
    again = fitted.assign(features.iloc[::-1].reset_index(drop=True))
    assert list(again[::-1]) == list(fitted.labels)
    missing = features.copy()
    missing.loc[:10, "avg_order_value"] = np.nan  # imputed, not an error
    assert len(fitted.assign(missing)) == len(features)


def test_too_small_segments_are_penalised(tmp_path):
    features, _ = latent_features(100, seed=3)
    path = tmp_path / "s.toml"
    path.write_text(
        '[schemes.c]\nkind = "clustering"\nfamilies = ["kmeans"]\nscalings = ["log_standard"]\n'
        "k_min = 8\nk_max = 8\ntrials = 1\nmin_segment_share = 0.2\nstability_refits = 0\n"
        'subsets = { rfm = ["recency_days", "frequency_orders", "monetary"] }\n'
    )
    sf = load(path)
    fitted = fit_scheme(sf.schemes[0], sf, features)
    trial = fitted.extras["trials"].iloc[0]
    assert trial["min_segment_share"] < 0.2
    assert trial["value"] == pytest.approx(trial["silhouette"] - 1.0)


def test_a_subset_naming_a_missing_feature_is_a_clear_error():
    features, _ = latent_features(50)
    s, sf, _ = clustering_spec()
    with pytest.raises(
        InputError, match="behaviour_clusters: feature table lacks column.*online_share"
    ):
        fit_scheme(s, sf, features.drop(columns="online_share"), trials=2)


def test_signed_log_keeps_order_and_sign():
    x = np.array([-100.0, -1, 0, 1, 100])
    y = signed_log1p(x)
    assert np.all(np.diff(y) > 0) and y[2] == 0 and y[0] == -y[-1]


def test_parse_reads_the_default_scheme():
    s, sf, _ = clustering_spec()
    kind = parse(s, sf)
    assert isinstance(kind, ClusteringScheme)
    assert set(kind.families) == {"kmeans", "gmm", "birch"}


@pytest.mark.parametrize("scaling", ["log_standard", "log_robust", "standard", "robust"])
def test_numpy_transform_and_nearest_centre_equal_sklearn(scaling, monkeypatch):
    """The service's path (numpy arithmetic on the fitted statistics, one distance product)
    gives what the sklearn pipeline and predict give, missing values and an all-missing
    column included."""
    from sklearn.cluster import Birch, KMeans, MiniBatchKMeans

    from training.segmentation import clustering
    from training.segmentation.clustering import predict, preprocessor, transform

    rng = np.random.default_rng(1)
    x = rng.lognormal(size=(2000, 5))
    x[:, 1] -= 3  # negative values: the signed log
    x[rng.random(x.shape) < 0.05] = np.nan
    x[:, 4] = np.nan
    pipeline = preprocessor(scaling).fit(x)
    z, sent = pipeline.transform(x), x.copy()
    np.testing.assert_allclose(transform(pipeline, x), z, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(x, sent)  # the input is left as it was
    for model in (
        Birch(n_clusters=5, threshold=0.5),
        KMeans(5, n_init=2, random_state=0),
        MiniBatchKMeans(5, n_init=2, random_state=0),
    ):
        model.fit(z)
        assert (predict(model, z) == model.predict(z)).all()
        assert (predict(model, z[:1]) == model.predict(z[:1])).all()
    monkeypatch.setattr(clustering, "DISTANCES_AT_ONCE", 7)  # blocks of a row or two
    assert (predict(model, z) == model.predict(z)).all()
