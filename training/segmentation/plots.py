"""Figures for a fitted scheme: sizes vs revenue, snake plot, 2D projection, elbow and silhouette.

Plain matplotlib (Agg) figures. Segment labels are bilingual ("high value / 高价值") when a CJK
font is installed (`make install` adds Debian's fonts-wqy-microhei), English otherwise.
Callers own the figures (log them, then close).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from training.segmentation.base import FittedScheme, numeric  # noqa: E402
from training.segmentation.clustering import signed_log1p  # noqa: E402
from training.segmentation.profile import KEY_FEATURES  # noqa: E402

MAX_BARS = 25
CJK_FONTS = (  # (family, file) in order of preference; the file is registered if not cached
    ("WenQuanYi Micro Hei", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    ("Noto Sans CJK SC", "/usr/share/opentype/noto/NotoSansCJK-Regular.ttc"),
)


def _cjk_font() -> str | None:
    """Use a CJK font as a fallback after DejaVu Sans when one is installed."""
    from pathlib import Path

    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family, path in CJK_FONTS:
        if family not in known and Path(path).exists():
            font_manager.fontManager.addfont(path)
            known.add(family)
        if family in known:
            plt.rcParams["font.family"] = ["DejaVu Sans", family]  # per-glyph fallback
            return family
    return None


CJK = _cjk_font()


def segment_label(name: str, name_zh: str) -> str:
    return _label(f"{name} / {name_zh}" if CJK else name)


def sizes_revenue(scheme: FittedScheme):
    """Share of customers next to share of revenue per segment."""
    p = scheme.profile[scheme.profile["segment"] != "all"].head(MAX_BARS).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(p) + 1.5))
    y = np.arange(len(p))
    ax.barh(y - 0.2, p["customer_share"], height=0.4, label="customers")
    ax.barh(y + 0.2, p["revenue_share"], height=0.4, label="revenue")
    ax.set_yticks(y, [segment_label(n, z) for n, z in zip(p["name"], p["name_zh"], strict=True)])
    ax.set_xlabel("share")
    ax.set_title(f"{scheme.name}: segment size and revenue share")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def snake(scheme: FittedScheme, features: pd.DataFrame):
    """Mean of each standardised key feature per segment (log scale for skewed features)."""
    cols = [c for c in KEY_FEATURES if c in features]
    z = pd.DataFrame({c: signed_log1p(numeric(features, c)) for c in cols})
    z = (z - z.mean()) / z.std(ddof=0).replace(0, 1)
    means = z.groupby(scheme.labels, sort=False).mean()
    order = [s.key for s in scheme.segments if s.key in means.index][:MAX_BARS]
    names = {s.key: segment_label(s.name, s.name_zh) for s in scheme.segments}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for key in order:
        ax.plot(cols, means.loc[key, cols], marker="o", label=names[key])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("standardised mean (log scale)")
    ax.set_title(f"{scheme.name}: snake plot")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def projection(scheme: FittedScheme, features: pd.DataFrame, rows: np.ndarray):
    """Customers in the first two principal components of the clustering space."""
    z = scheme.assigner.embed(features.iloc[rows])
    xy = PCA(2, random_state=0).fit_transform(z) if z.shape[1] >= 2 else np.c_[z, np.zeros(len(z))]
    labels = scheme.labels[rows]
    names = {s.key: segment_label(s.name, s.name_zh) for s in scheme.segments}
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for key in [s.key for s in scheme.segments if (labels == s.key).any()]:
        m = labels == key
        ax.scatter(xy[m, 0], xy[m, 1], s=6, alpha=0.5, label=names[key])
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"{scheme.name}: 2D projection ({len(rows):,} customers)")
    ax.legend(fontsize="small", markerscale=3)
    fig.tight_layout()
    return fig


def elbow(table: pd.DataFrame, chosen_k: int):
    """Elbow (K-Means inertia) and silhouette against K, the chosen K marked."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(table["k"], table["inertia"], marker="o")
    a.set_title("elbow: K-Means inertia")
    b.plot(table["k"], table["silhouette"], marker="o", color="tab:green")
    b.set_title("silhouette vs K")
    for ax in (a, b):
        ax.axvline(chosen_k, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("K")
    fig.tight_layout()
    return fig


def tree(scheme: FittedScheme):
    """The fitted tree (sklearn's plot_tree): each node's split, customers and mean outcome
    (a rate for repurchase / churn); the box maps the plot's leaf node ids to segment keys."""
    from sklearn.tree import plot_tree

    learned = scheme.extras["model"]
    leaves = len(learned.leaves)
    fig, ax = plt.subplots(figsize=(min(4 + 2.2 * leaves, 30), 3 + 1.4 * learned.model.get_depth()))
    plot_tree(
        learned.model,
        feature_names=learned.columns,
        filled=True,
        impurity=False,
        node_ids=True,
        precision=2,
        rounded=True,
        fontsize=8,
        ax=ax,
    )
    keys = scheme.assigner.node_keys
    legend = "\n".join(
        f"node #{n} = {k}"
        for (n, _), k in sorted(zip(learned.leaves, keys, strict=True), key=lambda x: int(x[1][5:]))
    )
    ax.text(1.0, 1.0, legend, transform=ax.transAxes, ha="right", va="top", fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "grey"})  # fmt: skip
    target = scheme.params.get("target", "")
    ax.set_title(f"{scheme.name}: decision tree on {target} (value = mean outcome)")
    fig.tight_layout()
    return fig


def _label(name: str) -> str:
    """A segment name as plot text: at most 48 characters, and `$` shown as itself (matplotlib
    reads text between two `$` as mathtext, and a name like `cost $\\x$` would not draw)."""
    name = name if len(name) <= 48 else name[:45] + "..."
    return name.replace("$", r"\$")


def figures(scheme: FittedScheme, features: pd.DataFrame, rows: np.ndarray) -> dict[str, object]:
    """All figures for a scheme, by file name."""
    import warnings

    with warnings.catch_warnings():  # without a CJK font, region names lose glyphs: not an error
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        out = {
            "sizes_revenue.png": sizes_revenue(scheme),
            "snake_plot.png": snake(scheme, features),
        }
        if scheme.kind == "clustering":
            out["projection_2d.png"] = projection(scheme, features, rows)
            out["elbow_silhouette.png"] = elbow(scheme.extras["elbow"], scheme.params["chosen.k"])
        if scheme.kind == "tree" and "model" in scheme.extras:
            out["tree.png"] = tree(scheme)
        for fig in out.values():
            fig.canvas.draw()  # render now, inside the warning filter
    return out
