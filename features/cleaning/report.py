"""audit.json for machines and audit.html for people: per-rule counts with reasons, the row
balance of each table, missing rates against the limit, and example rows of every rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, select_autoescape

from core import catalog

if TYPE_CHECKING:
    from features.cleaning import CleanResult

EXAMPLES_PER_RULE = 5


def _examples(changes, table: str, rule: str, action: str) -> list[dict]:
    hit = changes[
        (changes["table"] == table) & (changes["rule"] == rule) & (changes["action"] == action)
    ].head(EXAMPLES_PER_RULE)
    return hit.astype(object).where(hit.notna(), "").to_dict("records")


def write_report(result: CleanResult, out: Path) -> dict[str, Path]:
    audit = result.audit
    json_path, html_path = out / catalog.AUDIT_JSON, out / catalog.AUDIT_HTML
    audit["outputs"].update({"audit_json": json_path.name, "audit_html": html_path.name})
    json_path.write_text(json.dumps(audit, indent=2, ensure_ascii=False, default=str), "utf-8")
    env = Environment(
        loader=PackageLoader("features.cleaning", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    rules = [
        dict(r, examples=_examples(result.changes, r["table"], r["rule"], r["action"]))
        for r in audit["rules"]
    ]
    html = env.get_template("audit.html").render(audit=audit, rules=rules)
    html_path.write_text(html, "utf-8")
    return {"audit_json": json_path, "audit_html": html_path}
