"""baskets.html: what customers buy together. The strongest pairs as a lift matrix (a PNG),
the out-of-time check of the next-best products, the top rules of all customers and of each
segment, and the rules that set a segment apart. Jinja autoescapes: every product and segment
name is text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

RULE_COLUMNS = ["antecedent_label", "consequent_label", "n_both", "support", "confidence", "lift"]


def top_rules(table: pd.DataFrame, n: int) -> list[dict]:
    """The n rules of highest lift, one direction of each pair or triple (the more confident
    one)."""
    if table.empty:
        return []
    second = table["antecedent_2"] if "antecedent_2" in table else pd.Series("", table.index)
    items = np.sort(
        np.column_stack([table["antecedent"], table["consequent"], second.fillna("")]).astype(str),
        axis=1,
    )
    pair = pd.Series(items[:, 0]).str.cat([items[:, 1], items[:, 2]], sep="\x00").to_numpy()
    t = table.assign(_pair=pair).sort_values(["lift", "confidence"], ascending=False)
    return t.drop_duplicates("_pair").head(n).drop(columns="_pair").to_dict("records")


def lift_matrix(table: pd.DataFrame, n: int = 15):
    """A heatmap of log lift between the items of the strongest pairs (None: no rules)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overall = table[table["segment"] == "all"]
    if "antecedent_2" in overall:  # pairs only
        overall = overall[overall["antecedent_2"].isna()]
    if overall.empty:
        return None
    strong = overall.sort_values(["lift", "n_both"], ascending=False)
    items = pd.unique(strong[["antecedent", "consequent"]].to_numpy().ravel())[:n]
    label = dict(zip(overall["antecedent"], overall["antecedent_label"], strict=False))
    sub = overall[overall["antecedent"].isin(items) & overall["consequent"].isin(items)]
    m = sub.pivot_table(index="antecedent", columns="consequent", values="lift").reindex(
        index=items, columns=items
    )
    names = [f"{i} {str(label.get(i, ''))[:28]}" if label.get(i) != i else str(i) for i in items]
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * len(items), 0.8 + 0.4 * len(items)))
    im = ax.imshow(np.log10(m.to_numpy(float)), cmap="viridis")
    ax.set_xticks(range(len(items)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(items)), names, fontsize=7)
    ax.set_xlabel("consequent Y")
    ax.set_ylabel("antecedent X")
    fig.colorbar(im, ax=ax, label="log10 lift of X -> Y (blank: below the thresholds)")
    ax.set_title("strongest pairs: lift")
    return fig


def write_page(path: Path, r, cfg) -> Path:
    from core.formats import pct
    from training.report import _png

    table = r.rules
    segments = []
    for name, group in table.groupby("segment", sort=True):
        if name == "all":
            continue
        apart = group[group["distinctive"].eq(True)] if "distinctive" in group else group[:0]
        segments.append(
            {
                "name": name,
                "count": len(group),
                "top": top_rules(group, cfg.top_rules),
                "apart": apart.sort_values("lift_ratio", ascending=False)
                .head(cfg.top_rules)
                .to_dict("records"),
            }
        )
    fig = lift_matrix(table)
    env = Environment(
        loader=PackageLoader("training", "templates"), autoescape=select_autoescape(["html"])
    )
    env.filters["pct"] = pct
    html = env.get_template("baskets.html").render(
        s=r.summary,
        check=r.validation,
        overall=top_rules(table[table["segment"] == "all"], cfg.top_rules * 2),
        segments=segments,
        matrix=_png(fig) if fig is not None else None,
    )
    path.write_text(html, "utf-8")
    return path
