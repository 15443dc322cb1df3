"""The BentoML service started as a real process and called over HTTP: the same numbers as
`custseg run`, strict input (4xx naming row and field, never a 500), API key, reload."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import date

import pandas as pd
import pytest

from custseg.process import running
from tests.conftest import free_port, run_job, serve_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(champions):
    """A state folder where `custseg run` has registered champions; its output folder (the
    session's, shared with batch scoring's tests: test_reload puts the served set back)."""
    return champions


@pytest.fixture(scope="module")
def server(trained):
    home, _ = trained
    port = free_port()
    env = serve_env(
        home, CUSTSEG_API_KEY="s3cret", CUSTSEG_MAX_BATCH="50", CUSTSEG_WATCH_SECONDS="1"
    )
    base = f"http://127.0.0.1:{port}"
    serve = ["serve", "--port", str(port)]
    with running(serve, env, base + "/readyz", home / "server.log"):
        yield base


def call(base: str, path: str, body: object | str | None = None, key: str | None = "s3cret"):
    data = (
        body.encode()
        if isinstance(body, str)
        else None
        if body is None
        else json.dumps(body).encode()
    )
    headers = {"content-type": "application/json", **({"x-api-key": key} if key else {})}
    req = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def rows(base: str, trained, n: int = 5) -> list[dict]:
    _, out = trained
    status, meta = call(base, "/metadata")
    assert status == 200
    cols = [f["name"] for f in meta["features"]]
    features = pd.read_parquet(out / "features.parquet")
    return json.loads(features[["customer_id", *cols]].head(n).to_json(orient="records"))


def test_health_and_metadata(server):
    assert urllib.request.urlopen(server + "/healthz").status == 200
    status, meta = call(server, "/metadata")
    assert status == 200
    names = {m["name"] for m in meta["models"]}
    assert "custseg-segmenter-rfm_rules" in names and "custseg-repurchase" in names
    described = {f["name"]: f for f in meta["features"]}
    assert described["recency_days"]["description"].startswith("days since the last order")


def test_rows_of_the_feature_table_are_accepted_as_written(server, trained):
    """The first rows of `custseg run`'s features.parquet, every column, sent unchanged: the
    answer is ModelSet.predict's in process. /metadata lists each column's use."""
    from serving.models import load_champions

    home, out = trained
    table = pd.read_parquet(out / "features.parquet").head(5)
    sent = table.astype(object).where(table.notna(), None).to_dict("records")  # NaN/NA: null
    status, body = call(server, "/predict", {"customers": sent})
    assert status == 200, body
    models = load_champions(f"sqlite:///{home / 'mlflow.db'}")
    assert body["customers"] == models.predict(table)
    assert body["versions"] == models.versions

    status, meta = call(server, "/metadata")
    use = {f["name"]: f["input"] for f in meta["features"]}
    assert meta["id"] == "customer_id" and set(use) == set(table.columns) - {"customer_id"}
    assert use["recency_days"] == "required" and use["overdue_ratio"] == "nullable"
    assert use["region"] == "ignored"  # read by no model, accepted
    sent[0]["region"] = 3  # still type-checked
    sent[1]["colour"] = "red"  # not a feature-table column: still refused
    status, text = call(server, "/predict", {"customers": sent})
    assert status == 400 and "customers[0].region: Input should be a valid string" in text
    assert "customers[1].colour: unknown field" in text, text


def test_every_error_has_one_shape(server):
    """Bodies BentoML refuses itself (empty, not an object, not JSON), ours, an unknown path:
    {"error": "..."} alone, never an internal class name."""
    cases = [
        ("/predict", "", 400, "the body is empty"),
        ("/predict", "{}", 400, "customers: missing field"),
        ("/predict", "[]", 400, "body: expected a JSON object"),
        ("/predict", "{not json", 400, "body: Invalid JSON"),
        ("/predict", '{"customers": []}', 400, "customers: the batch is empty"),
        ("/score_transactions", "{}", 400, "as_of: missing field; transactions: missing field"),
        ("/nowhere", "{}", 404, "Not Found"),
    ]
    for path, body, want, message in cases:
        status, text = send(server, path, body.encode())
        assert status == want and json.loads(text) == {"error": json.loads(text)["error"]}, text
        assert message in text and "IODescriptor" not in text, (body, text)
    status, text = send(server, "/predict", None, method="GET")
    assert status == 405 and json.loads(text) == {"error": "Method Not Allowed"}


def test_serve_without_champions_exits_at_once(tmp_path):
    """An empty registry: one line and exit code 2 (as compare and monitor), no workers."""
    proc = run_job(tmp_path, "serve", "--port", str(free_port()), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"custseg: error: no champion models in the registry at sqlite:///{tmp_path}/mlflow.db: "
        "run `custseg run` first"
    ]


def same_probabilities(server: str, answer: dict, expected: pd.Series, tol: float) -> None:
    """The served probabilities are the batch job's; a target without a champion (the gate
    refused every model) is null."""
    served = set(call(server, "/metadata")[1]["targets"])
    for target in ("repurchase", "churn"):
        got = answer[f"{target}_probability"]
        if target not in served:
            assert got is None
        else:
            assert got == pytest.approx(expected[f"{target}_probability"], abs=tol)


def test_predict_gives_the_same_numbers_as_the_batch_job(server, trained):
    _, out = trained
    batch = rows(server, trained)
    status, body = call(server, "/predict", {"customers": batch})
    assert status == 200, body
    scores = pd.read_csv(out / "scores.csv", dtype={"customer_id": str}).set_index("customer_id")
    for c in body["customers"]:
        expected = scores.loc[c["customer_id"]]
        same_probabilities(server, c, expected, 1e-6)
        assert c["segments"]["rfm_rules"]["id"] == expected["segment_rfm_rules"]
        assert c["segments"]["behaviour_clusters"]["name_zh"]
    assert body["versions"]["custseg-segmenter-rfm_rules"] == "1"


def test_concurrent_requests_get_their_own_answers_and_errors(server, trained):
    """Requests sent at once are scored together by each worker (serving.coalesce): every
    answer is the one the same request gets alone, every bad request its own 400 (its
    neighbours still 200), whatever the mix of sizes."""
    from concurrent.futures import ThreadPoolExecutor

    batch = rows(server, trained, 40)
    requests = [batch[i : i + 1 + i % 3] for i in range(0, 40, 4)] * 3
    requests.insert(5, [{**batch[0], "recency_days": -1}])
    alone = [call(server, "/predict", {"customers": r}) for r in requests]
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda r: call(server, "/predict", {"customers": r}), requests))
    assert [s for s, _ in together] == [s for s, _ in alone] == [200] * 5 + [400] + [200] * 25
    for (_, got), (_, want), sent in zip(together, alone, requests, strict=True):
        if isinstance(want, dict):
            assert [c["customer_id"] for c in got["customers"]] == [r["customer_id"] for r in sent]
        assert got == want


TIER_NAMES = {"top 1%", "top 1-5%", "top 5-10%", "top 10-25%", "top 25-50%", "bottom 50%"}


def sane_value(c: dict, as_of: date) -> None:
    """The value fields of one answered customer make sense (as of `as_of`)."""
    assert c["clv"] >= 0 and c["expected_orders"] >= 0 and c["expected_order_value"] >= 0
    assert 0 <= c["p_alive"] <= 1 and c["days_to_next_order"] > 0
    assert date.fromisoformat(c["next_order_date"]) > as_of
    assert c["value_tier"] in TIER_NAMES
    assert c["value_tier"] == c["segments"]["value_tiers"]["name"]


def test_predict_answers_the_value_fields(server, trained):
    """The value champion answers clv, expected orders, P(alive), next order and the value
    tier; the caller sends none of its outputs (clv is no input), and the numbers are the
    batch job's, the next order counted from today (UTC) instead of the run's as-of date."""
    from datetime import UTC, datetime

    _, out = trained
    status, meta = call(server, "/metadata")
    assert "custseg-value" in {m["name"] for m in meta["models"]}
    answers = {m["name"]: m["answers"] for m in meta["models"]}
    assert "clv" in answers["custseg-value"] and "p_alive" in answers["custseg-value"]
    assert "value_tier" in answers["custseg-segmenter-value_tiers"]
    assert meta["value"]["model"] == "custseg-value"
    assert "clv" not in {f["name"] for f in meta["features"]}  # computed, not asked for
    scores = pd.read_csv(out / "scores.csv", dtype={"customer_id": str}).set_index("customer_id")
    run_as_of = date.fromisoformat(str(pd.read_parquet(out / "features.parquet").attrs["as_of"]))
    before = datetime.now(UTC).date()
    status, body = call(server, "/predict", {"customers": rows(server, trained, 20)})
    assert status == 200, body
    today = datetime.now(UTC).date()
    for c in body["customers"]:
        expected = scores.loc[c["customer_id"]]
        sane_value(c, before)
        for field in ("clv", "expected_orders", "expected_order_value", "p_alive"):
            assert c[field] == pytest.approx(expected[field], abs=1e-6), field
        assert c["value_tier"] == expected["value_tier"]
        assert c["segments"]["clv_activity"]["id"] == expected["segment_clv_activity"]
        wait = date.fromisoformat(expected["next_order_date"]) - run_as_of
        assert date.fromisoformat(c["next_order_date"]) - wait in (before, today)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(clv=5.0), "customers[1].clv: unknown field"),  # computed, not sent
        (lambda r: r.pop("net_monetary"), "customers[1].net_monetary: missing feature"),
        (
            lambda r: r.update(frequency_days=-1),
            "customers[1].frequency_days: Input should be greater",
        ),
        (
            lambda r: r.update(recency_days="ten"),
            "customers[1].recency_days: Input should be a valid number",
        ),
        (lambda r: r.pop("monetary"), "customers[1].monetary: missing feature"),
        (lambda r: r.update(colour="red"), "customers[1].colour: unknown field"),
        (lambda r: r.update(customer_id=""), "customers[1].customer_id"),
        (lambda r: r.update(monetary=None), "customers[1].monetary: Input should be a valid"),
        (lambda r: r.update(tenure_days=None), "customers[1].tenure_days"),  # was a 500
        (lambda r: r.update(recency_days=-3), "customers[1].recency_days: Input should be greater"),
        (lambda r: r.pop("lifecycle_stage"), "customers[1].lifecycle_stage: missing feature"),
        (
            lambda r: r.update(lifecycle_stage="zzz"),
            "customers[1].lifecycle_stage: Input should be",
        ),
        (
            lambda r: r.update(recency_days=2.5),
            "customers[1].recency_days: Input should be a multi",
        ),
    ],
)
def test_bad_rows_get_400_naming_row_and_field(server, trained, mutate, message):
    batch = rows(server, trained, 2)
    mutate(batch[1])
    status, body = call(server, "/predict", {"customers": batch})
    assert status == 400 and message in body, body


def test_repeated_customers_and_impossible_shares_get_400(server, trained):
    batch = rows(server, trained, 2)
    batch[1]["customer_id"] = batch[0]["customer_id"]
    status, body = call(server, "/predict", {"customers": batch})
    assert status == 400 and "customers[1].customer_id" in body and "repeats customers[0]" in body
    batch = rows(server, trained, 1)
    shares = [c for c in batch[0] if c == "online_share" or c.startswith("category_share__")]
    assert shares, "the champions read no share feature"
    batch[0][shares[0]] = 5.0
    status, body = call(server, "/predict", {"customers": batch})
    assert status == 400 and f"customers[0].{shares[0]}: Input should be less than" in body, body


def test_client_errors_are_logged_in_one_line(server, trained):
    """A 400 is the caller's mistake: one warning line in the server log, no traceback."""
    import time

    home, _ = trained
    batch = rows(server, trained, 1)
    batch[0]["recency_days"] = "soon"
    assert call(server, "/predict", {"customers": batch})[0] == 400
    assert call(server, "/predict", "{not json")[0] == 400
    time.sleep(0.5)  # the worker flushes its log line
    log = (home / "server.log").read_text()
    assert "BadInput: customers[0].recency_days" in log
    assert "Traceback" not in log, log[log.index("Traceback") - 300 :][:1500]


def test_nan_infinity_empty_and_oversized_batches_are_refused(server, trained):
    one = rows(server, trained, 1)[0]
    raw = json.dumps({"customers": [one]}, separators=(",", ":")).replace(
        f'"recency_days":{one["recency_days"]}', '"recency_days":NaN'
    )
    status, body = call(server, "/predict", raw)
    assert status == 400 and "recency_days" in body, body
    raw = json.dumps({"customers": [one]}, separators=(",", ":")).replace(
        f'"recency_days":{one["recency_days"]}', '"recency_days":Infinity'
    )
    assert call(server, "/predict", raw)[0] == 400
    status, body = call(server, "/predict", {"customers": []})
    assert status == 400 and "empty" in body
    status, body = call(server, "/predict", {"customers": [one] * 51})
    assert status == 400 and "over the limit of 50" in body
    assert call(server, "/predict", "{not json")[0] == 400
    status, body = call(server, "/predict", {"customers": [one], "customer": [one]})
    assert status == 400 and json.loads(body) == {"error": "customer: unknown field"}, body


def test_missing_features_may_be_null_where_they_can_be_missing(server, trained):
    one = rows(server, trained, 1)[0]
    one.update(interpurchase_mean_days=None, interpurchase_std_days=None, overdue_ratio=None)
    status, body = call(server, "/predict", {"customers": [one]})
    assert status == 200, body


def test_api_key_is_required(server, trained):
    batch = rows(server, trained, 1)
    assert call(server, "/predict", {"customers": batch}, key=None)[0] == 401
    assert call(server, "/predict", {"customers": batch}, key="wrong")[0] == 401
    assert call(server, "/metadata", key=None)[0] == 401
    assert urllib.request.urlopen(server + "/readyz").status == 200  # health needs no key


def served_versions(server, trained, name: str, want: str, timeout: float = 60) -> list[str]:
    """The version of `name` in 20 consecutive answers once every worker serves `want`
    (two workers: answers come from either)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = [
            call(server, "/predict", {"customers": rows(server, trained, 1)})[1]["versions"][name]
            for _ in range(20)
        ]
        if set(seen) == {want}:
            return seen
        time.sleep(0.5)
    return seen


def test_reload_picks_up_a_new_champion(server, trained):
    """Every worker swaps in a newly published model set by itself (registry watch); /reload
    does it at once in the worker that takes the call. Answers never mix versions of one model.
    Moving one model's own champion alias changes nothing served: the set is what counts."""
    import mlflow

    from core.registry import publish, served

    home, _ = trained
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # the logged model behind a version is looked up there
    client = mlflow.MlflowClient(uri)
    name = "custseg-segmenter-rfm_rules"
    v1 = client.get_model_version(name, "1")
    v2 = client.create_model_version(name, v1.source, run_id=v1.run_id, model_id=v1.model_id)
    client.set_registered_model_alias(name, "champion", str(v2.version))  # not the set: ignored
    assert set(served_versions(server, trained, name, "1", timeout=5)) == {"1"}
    publish(client, {name: str(v2.version)}, v1.run_id, None)
    assert served(client)[name] == str(v2.version)
    assert set(served_versions(server, trained, name, str(v2.version))) == {str(v2.version)}

    publish(client, {name: "1"}, v1.run_id, None)
    status, body = call(server, "/reload", {})
    assert status == 200 and body["versions"][name] == "1"
    assert set(served_versions(server, trained, name, "1")) == {"1"}
    assert call(server, "/reload", {}, key=None)[0] == 401


def raw_orders(trained, ids: list[str]) -> dict:
    """Clean transactions and attributes of `ids`, as a client would send them: order lines
    with their order ids (the sample has orders of several lines)."""
    _, out = trained
    tx = pd.read_parquet(out / "transactions.parquet")
    t = tx[tx["customer_id"].isin(ids)][
        ["customer_id", "order_date", "amount", "is_refund", "category", "channel", "order_id"]
    ].copy()
    t["amount"] = t["amount"].abs()  # refunds are flagged, not negative
    t["order_date"] = t["order_date"].dt.strftime("%Y-%m-%d")
    cu = pd.read_parquet(out / "customers.parquet")
    c = cu[cu["customer_id"].isin(ids)][
        ["customer_id", "signup_date", "age", "gender", "province", "region", "industry"]
    ].copy()
    c["signup_date"] = c["signup_date"].dt.strftime("%Y-%m-%d")
    return {
        "transactions": json.loads(t.to_json(orient="records")),
        "customers": json.loads(c.to_json(orient="records")),
    }


def test_score_transactions_matches_the_batch_job(server, trained):
    """No training/serving skew: raw orders -> the same numbers as `custseg run`."""
    _, out = trained
    scores = pd.read_csv(out / "scores.csv", dtype={"customer_id": str}).set_index("customer_id")
    ids = list(scores.index[:4])
    as_of = (
        pd.read_parquet(out / "features.parquet").attrs.get("as_of")
        or json.loads((out / "audit.json").read_text())["config"]["reference_date"]
    )
    status, body = call(server, "/score_transactions", {"as_of": as_of, **raw_orders(trained, ids)})
    assert status == 200, body
    assert [c["customer_id"] for c in body["customers"]] == sorted(ids)
    for c in body["customers"]:
        expected = scores.loc[c["customer_id"]]
        same_probabilities(server, c, expected, 1e-5)
        for scheme in ("rfm_rules", "rfm_scores", "abc", "behaviour_clusters", "value_tiers"):
            assert c["segments"][scheme]["id"] == expected[f"segment_{scheme}"], scheme
        # the value fields, the next order counted from the request's as_of (the run's)
        sane_value(c, date.fromisoformat(as_of))
        assert c["clv"] == pytest.approx(expected["clv"], abs=0.011)
        assert c["p_alive"] == pytest.approx(expected["p_alive"], abs=1e-5)
        assert c["next_order_date"] == expected["next_order_date"]
        assert c["value_tier"] == expected["value_tier"]


def products_bought(trained, ids: list[str]) -> dict[str, list[str]]:
    """Per customer, the products of its lines that sold something (the batch job's baskets)."""
    _, out = trained
    tx = pd.read_parquet(out / "transactions.parquet")
    as_of = pd.Timestamp(str(pd.read_parquet(out / "features.parquet").attrs["as_of"]))
    sold = tx[tx["customer_id"].isin(ids) & (tx["amount"] > 0) & ~tx["is_refund"]]
    sold = sold[sold["order_date"] <= as_of]
    if "quantity" in sold:
        sold = sold[sold["quantity"].fillna(1) > 0]
    sold = sold[sold["product"].notna()].sort_values("order_date", kind="stable")
    return {
        c: list(dict.fromkeys(g["product"].astype(str))) for c, g in sold.groupby("customer_id")
    }


def batch_next_best(trained, ids: list[str]) -> dict[str, list[str]]:
    _, out = trained
    scores = pd.read_csv(out / "scores.csv", dtype=str).set_index("customer_id")
    cols = ["next_best_1", "next_best_2", "next_best_3"]
    return {c: [p for p in scores.loc[c, cols] if isinstance(p, str)] for c in ids}


def test_predict_answers_next_best_from_recent_products(server, trained):
    """The run registered <project>-next-best with the champions; /predict with a customer's
    products answers up to 3 others, the batch job's (scores.csv) and the registered model's
    for the same history; without recent_products, []."""
    from serving.models import load_champions

    home, out = trained
    status, meta = call(server, "/metadata")
    assert meta["next_best"]["model"] == "custseg-next-best" and meta["next_best"]["k"] == 3
    assert {m["name"]: m["answers"] for m in meta["models"]}["custseg-next-best"] == ["next_best"]
    batch = rows(server, trained, 8)
    ids = [r["customer_id"] for r in batch]
    bought = products_bought(trained, ids)
    sent = [{**r, "recent_products": bought.get(r["customer_id"], [])} for r in batch]
    status, body = call(server, "/predict", {"customers": sent})
    assert status == 200, body
    models = load_champions(f"sqlite:///{home / 'mlflow.db'}")
    expected = batch_next_best(trained, ids)
    for c in body["customers"]:
        history = bought.get(c["customer_id"], [])
        assert c["next_best"] and len(c["next_best"]) <= 3
        assert not set(c["next_best"]) & set(history)
        assert c["next_best"] == models.next_best.recommend([history], 3)[0]
        assert c["next_best"] == expected[c["customer_id"]], c["customer_id"]
    status, body = call(server, "/predict", {"customers": batch[:2]})
    assert status == 200 and [c["next_best"] for c in body["customers"]] == [[], []]


@pytest.mark.parametrize(
    ("products", "message"),
    [
        ("C01-001", "customers[0].recent_products: Input should be a valid list"),
        (["x"] * 201, "customers[0].recent_products: List should have at most 200 items"),
        ([17], "customers[0].recent_products[0]: Input should be a valid string"),
        (["x" * 201], "customers[0].recent_products[0]: String should have at most 200"),
        ([""], "customers[0].recent_products[0]: String should have at least 1"),
        ({"a": 1}, "customers[0].recent_products: Input should be a valid list"),
    ],
)
def test_bad_recent_products_get_400(server, trained, products, message):
    sent = rows(server, trained, 1)
    sent[0]["recent_products"] = products
    status, text = call(server, "/predict", {"customers": sent})
    assert status == 400 and json.loads(text) == {"error": json.loads(text)["error"]}, text
    assert message in text, text


def test_score_transactions_answers_next_best(server, trained):
    """The posted lines' products are the customer's history: the batch job's next-best."""
    _, out = trained
    ids = list(pd.read_csv(out / "scores.csv", dtype={"customer_id": str})["customer_id"][:4])
    as_of = str(pd.read_parquet(out / "features.parquet").attrs["as_of"])
    body = raw_orders(trained, ids)
    tx = pd.read_parquet(out / "transactions.parquet")
    products = tx[tx["customer_id"].isin(ids)]["product"].astype(str).tolist()
    for line, product in zip(body["transactions"], products, strict=True):
        line["product"] = product
    status, answer = call(server, "/score_transactions", {"as_of": as_of, **body})
    assert status == 200, answer
    expected = batch_next_best(trained, ids)
    for c in answer["customers"]:
        assert c["next_best"] == expected[c["customer_id"]], c["customer_id"]
    for line in body["transactions"]:
        line.pop("product")
    status, answer = call(server, "/score_transactions", {"as_of": as_of, **body})
    assert status == 200 and all(c["next_best"] == [] for c in answer["customers"])
    body["transactions"][0]["product"] = 5
    status, text = call(server, "/score_transactions", {"as_of": as_of, **body})
    assert status == 400 and "transactions[0].product: Input should be a valid string" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["transactions"][0].update(amount=-5.0), "transactions[0].amount"),
        (
            lambda b: b["transactions"][0].update(order_date="30/06/2026"),
            "transactions[0].order_date",
        ),
        (lambda b: b["transactions"][0].update(shop="x"), "transactions[0].shop: unknown field"),
        (lambda b: b["transactions"][0].update(channel="phone"), "transactions[0].channel"),
        (
            lambda b: b.update(as_of="yesterday"),
            "as_of: 'yesterday': expected a date as YYYY-MM-DD",
        ),
        (lambda b: b.update(as_of="2000-01-01"), "is after as_of 2000-01-01"),
        (lambda b: b.update(as_of="2199-12-31"), "as_of: 2199-12-31 is in the future"),
        (lambda b: b.update(as_of="9999-12-31"), "expected a year between 1900 and 2200"),
        (lambda b: b["transactions"][0].update(order_date=1718000000), "expected a date"),
        (lambda b: b["transactions"][0].update(order_date="20260518"), "expected a date as YYYY"),
        (
            lambda b: b["transactions"][0].update(order_date="0001-01-01"),
            "transactions[0].order_date: Value error, expected a year between 1900 and 2200",
        ),
        (
            lambda b: b["customers"][0].update(signup_date="9999-01-01"),
            "customers[0].signup_date: Value error, expected a year",
        ),
        (lambda b: b["transactions"][0].update(amount=1e308), "transactions[0].amount: Input"),
        (
            lambda b: (
                b["transactions"].__setitem__(1, {**b["transactions"][0], "order_id": "O1"})
                or b["transactions"][0].update(order_id="O1")
            ),
            "transactions[1] repeats transactions[0] in every field",
        ),
        (
            lambda b: b["customers"].append({"customer_id": "ZZ9"}),
            "customers[1].customer_id: 'ZZ9' has no transactions",
        ),
        (lambda b: b.update(customer=b.pop("customers")), "customer: unknown field"),
        (lambda b: b["customers"][0].update(age="old"), "customers[0].age"),
        (lambda b: b.update(transactions=[]), "transactions: the batch is empty"),
    ],
)
def test_bad_transactions_get_400(server, trained, change, message):
    _, out = trained
    first = pd.read_csv(out / "scores.csv", dtype={"customer_id": str})["customer_id"].iloc[0]
    body = {"as_of": "2026-06-30", **raw_orders(trained, [first])}
    change(body)
    status, text = call(server, "/score_transactions", body)
    assert status == 400 and message in text, text


def test_bentoml_build_makes_a_bento_that_serves(server, trained):
    """`bentoml build` packs code + pins (no tests, no state); the Bento serves the champions
    of the registry it is pointed at and answers as `custseg serve` does."""
    import subprocess
    import sys
    from pathlib import Path

    home, _ = trained
    repo = Path(__file__).resolve().parent.parent
    env = serve_env(
        home,
        BENTOML_HOME=str(home / "bento-build"),
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        CUSTSEG_WORKERS="1",
    )
    bentoml = [sys.executable, "-m", "bentoml"]
    built = subprocess.run([*bentoml, "build", str(repo)], env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    listed = subprocess.run([*bentoml, "list", "-o", "json"], env=env, capture_output=True)
    tag = json.loads(listed.stdout)[0]["tag"]
    src = Path(env["BENTOML_HOME"], "bentos", *tag.split(":"), "src")
    assert (src / "serving" / "service.py").exists() and (
        src / "training" / "schemes.toml"
    ).exists()
    assert not (src / "tests").exists() and not (src / ".custseg").exists()
    # the slim layout: the stages and core only, no commands, sample generator or typer
    assert (src / "core" / "catalog.py").exists() and not (src / "custseg").exists()
    pins = Path(env["BENTOML_HOME"], "bentos", *tag.split(":"), "env", "python")
    assert "typer" not in "".join(f.read_text() for f in pins.glob("requirements*.txt"))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = ["-m", "bentoml", "serve", tag, "--port", str(port)]
    with running(serve, env, base + "/readyz", home / "bento-serve.log"):
        body = {"customers": rows(server, trained, 3)}
        status, answer = call(base, "/predict", body, key=None)
        assert status == 200
        assert answer["customers"] == call(server, "/predict", body)[1]["customers"]


# --- the request guard (serving/guard.py): refusals before BentoML reads or parses a body ---


def send(
    base: str,
    path: str,
    body: bytes | None = b"{}",
    headers: dict | None = None,
    method: str = "POST",
    key: str | None = "s3cret",
    chunks: list[bytes] | None = None,
) -> tuple[int, str]:
    """One request with exactly these headers (http.client: urllib adds its own): JSON content
    type and the key unless overridden; `chunks` are sent with chunked transfer encoding."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    head = {"content-type": "application/json", **({"x-api-key": key} if key else {})}
    head |= headers or {}
    head = {k: v for k, v in head.items() if v is not None}
    try:
        if chunks is not None:
            conn.request(method, path, iter(chunks), head, encode_chunked=True)
        else:
            conn.request(method, path, body, head)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def test_a_huge_body_is_refused_from_its_length_without_being_read(server):
    """98 MB announced, not one byte sent: 413 at once (the old service waited for the body,
    then parsed it); without the key, 401 first."""
    import http.client
    import time
    from urllib.parse import urlsplit

    def announce(key: str | None) -> tuple[int, str, float]:
        url = urlsplit(server)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        t = time.monotonic()
        conn.putrequest("POST", "/predict")
        conn.putheader("content-type", "application/json")
        conn.putheader("content-length", str(98_000_000))
        if key:
            conn.putheader("x-api-key", key)
        conn.endheaders()
        r = conn.getresponse()
        status, text = r.status, r.read().decode()
        conn.close()
        return status, text, time.monotonic() - t

    status, text, took = announce("s3cret")
    assert status == 413 and "over the limit of 16,777,216 bytes" in text, text
    assert took < 5
    status, text, took = announce(None)
    assert status == 401 and "x-api-key" in text and took < 5, text


def test_a_chunked_body_is_counted_while_it_is_read(server):
    status, text = send(server, "/predict", chunks=[b"[" + b" " * (1 << 20)] * 17)
    assert status == 413 and "over the limit" in text, text


def test_a_bad_body_without_the_key_gets_401_not_400(server):
    for key in (None, "wrong"):
        for body in (b"{not json", json.dumps({"customers": "x", "extra": 1}).encode()):
            status, text = send(server, "/predict", body, key=key)
            assert status == 401 and "pydantic" not in text and "customers" not in text, text


def test_other_hosts_origins_and_content_types_are_refused(server):
    """DNS rebinding (a foreign Host), cross-site posts (a foreign Origin) and posts that need
    no CORS preflight (text/plain, forms) never reach an endpoint, even with the key."""
    assert send(server, "/reload", headers={"host": "attacker.example"})[0] == 400
    assert send(server, "/metadata", None, {"host": "attacker.example:80"}, "GET")[0] == 400
    assert send(server, "/readyz", None, {"host": "attacker.example"}, "GET")[0] == 200
    cross = {"origin": "http://attacker.example"}
    status, text = send(server, "/reload", headers=cross)
    assert status == 403 and "cross-origin" in text, text
    assert send(server, "/reload", headers={"origin": "null"})[0] == 403
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None):
        status, text = send(server, "/reload", headers={"content-type": kind})
        assert status == 415 and "application/json" in text, (kind, text)
    port = server.rsplit(":", 1)[1]
    same = {"origin": f"http://127.0.0.1:{port}", "content-type": "application/json; charset=utf-8"}
    assert send(server, "/reload", headers=same)[0] == 200
    assert send(server, "/reload", headers={"host": f"localhost:{port}"})[0] == 200


def test_the_batch_limit_counts_customers_not_order_rows(server, trained):
    """CUSTSEG_MAX_BATCH=50 here: the orders of 51 customers are refused (rows are capped
    separately, at 50 x the batch limit)."""
    _, out = trained
    ids = list(pd.read_csv(out / "scores.csv", dtype={"customer_id": str})["customer_id"][:51])
    as_of = (
        pd.read_parquet(out / "features.parquet").attrs.get("as_of")
        or json.loads((out / "audit.json").read_text())["config"]["reference_date"]
    )
    orders = raw_orders(trained, ids)["transactions"]  # orders only: no customer rows to count
    assert len(orders) <= 50 * 50
    status, text = call(server, "/score_transactions", {"as_of": as_of, "transactions": orders})
    assert status == 400 and "orders of 51 customers, over the limit of 50 customers" in text
    fewer = [t for t in orders if t["customer_id"] != ids[-1]]
    status, answer = call(server, "/score_transactions", {"as_of": as_of, "transactions": fewer})
    assert status == 200 and len(answer["customers"]) == 50, answer


def test_the_key_never_reaches_the_server_log(server, trained):
    import time

    home, _ = trained
    batch = rows(server, trained, 1)
    assert call(server, "/predict", {"customers": batch})[0] == 200
    assert call(server, "/predict", {"customers": [{"x": 1}]})[0] == 400
    assert send(server, "/predict", b"{}", key="guess-0f-the-k3y")[0] == 401
    assert send(server, "/predict", b"{}", {"content-type": "text/plain"})[0] == 415
    time.sleep(0.5)  # the worker flushes its log lines
    log = (home / "server.log").read_text()
    assert "refused POST /predict: 401" in log
    assert "s3cret" not in log and "guess-0f-the-k3y" not in log


@pytest.fixture(scope="module")
def open_server(trained):
    """A second server with no key (the default) and a 4 KiB body limit, one worker."""
    home, _ = trained
    port = free_port()
    env = serve_env(
        home, CUSTSEG_MAX_BODY_BYTES="4096", CUSTSEG_WORKERS="1", CUSTSEG_WATCH_SECONDS="0"
    )
    env.pop("CUSTSEG_API_KEY", None)
    env.pop("CUSTSEG_ALLOWED_HOSTS", None)
    base = f"http://127.0.0.1:{port}"
    with running(["serve", "--port", str(port)], env, base + "/readyz", home / "open.log"):
        yield base


def test_without_a_key_a_cross_site_reload_is_still_refused(open_server):
    """The issue's case: no key set, a page on attacker.example posts text/plain to /reload
    (no CORS preflight), directly or through DNS rebinding."""
    plain = {"content-type": "text/plain", "origin": "http://attacker.example"}
    rebound = plain | {"host": "attacker.example"}
    assert send(open_server, "/reload", b"x", rebound, key=None)[0] == 400
    assert send(open_server, "/reload", b"x", plain, key=None)[0] == 403
    assert send(open_server, "/reload", b"x", {"content-type": "text/plain"}, key=None)[0] == 415
    assert send(open_server, "/reload", b"{}", key=None)[0] == 200  # a local JSON post


def test_the_body_limit_is_configurable(open_server, trained):
    one = rows(open_server, trained, 1)
    body = json.dumps({"customers": one}).encode()
    assert len(body) < 4096
    assert send(open_server, "/predict", body, key=None)[0] == 200
    status, text = send(open_server, "/predict", body + b" " * 4096, key=None)
    assert status == 413 and "over the limit of 4,096 bytes" in text, text
    status, text = send(open_server, "/predict", chunks=[body, b" " * 4096], key=None)
    assert status == 413, text
    assert send(open_server, "/predict", chunks=[body[:10], body[10:]], key=None)[0] == 200


# --- the guard in-process: which requests reach the app, and how much of them was read ---


def guarded(config, path="/predict", method="POST", headers=None, chunks=(b"{}",), server=None):
    """Run RequestGuard(config) on one request against an app that records what reached it:
    (status, body sent back, receive() calls made by the guard, the body the app read)."""
    import asyncio

    from serving.guard import RequestGuard

    head = {"host": "127.0.0.1:3000", "content-type": "application/json"} | (headers or {})
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in head.items() if v is not None],
        "server": server or ("127.0.0.1", 3000),
    }
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    calls, reached, sent = [0], [], []

    async def receive():
        calls[0] += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send_(message):
        sent.append(message)

    async def app(scope, receive, send):
        message = await receive()
        reached.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    asyncio.run(RequestGuard(app, config)(scope, receive, send_))
    status = sent[0]["status"]
    return status, sent[1]["body"].decode(), calls[0], reached[0] if reached else None


def test_guard_refuses_before_reading_the_body():
    from serving.guard import GuardConfig

    config = GuardConfig(api_key="k", max_body_bytes=100)
    key = {"x-api-key": "k"}
    cases = [
        ({"host": "attacker.example"} | key, 400),
        ({}, 401),
        ({"x-api-key": "K"}, 401),
        ({"x-api-key": "k "}, 401),
        ({"origin": "http://attacker.example"} | key, 403),
        ({"content-type": "text/plain"} | key, 415),
        ({"content-type": None} | key, 415),
        ({"content-length": "101"} | key, 413),
        ({"content-length": "1e3"} | key, 400),
    ]
    for headers, want in cases:
        status, body, reads, reached = guarded(config, headers=headers)
        assert (status, reads, reached) == (want, 0, None), (headers, body)
    assert guarded(config, headers=key, chunks=(b"{}",) * 60)[:3] == (413, ANY_BODY, 51)
    status, _, reads, reached = guarded(config, headers=key, chunks=(b"[1,", b"2]"))
    assert (status, reads, reached) == (200, 2, b"[1,2]")  # the whole body, replayed at once


class _Any:
    def __eq__(self, other):
        return True


ANY_BODY = _Any()


def test_guard_leaves_health_checks_open_and_reads_hosts():
    from serving.guard import GuardConfig, host_name

    config = GuardConfig(api_key="k")
    for path in ("/healthz", "/readyz", "/livez", "/metrics"):
        assert guarded(config, path, "GET", {"host": "attacker.example"})[0] == 200
    open_ = GuardConfig()
    for host in ("localhost:3000", "LOCALHOST.", "127.0.0.1", "[::1]:3000", "10.1.2.3:3000"):
        assert guarded(open_, headers={"host": host}, server=("10.1.2.3", 3000))[0] == 200, host
    assert guarded(open_, headers={"host": "10.9.9.9"}, server=("10.1.2.3", 3000))[0] == 400
    assert guarded(open_, headers={"host": None})[0] == 400
    named = GuardConfig.from_env({"CUSTSEG_ALLOWED_HOSTS": "svc.example, [::1]:80"})
    assert named.allowed_hosts == {"svc.example", "::1"}
    assert guarded(named, headers={"host": "svc.example:3000"})[0] == 200
    assert guarded(named, headers={"host": "127.0.0.1:3000"})[0] == 400  # the list replaces
    star = GuardConfig.from_env({"CUSTSEG_ALLOWED_HOSTS": "*"})
    assert guarded(star, headers={"host": "anything.example"})[0] == 200
    assert host_name("Example.COM:8080") == "example.com" and host_name("::1") == "::1"


def test_guard_settings_from_the_environment():
    from serving.guard import DEFAULT_MAX_BODY_BYTES, GuardConfig

    config = GuardConfig.from_env({"CUSTSEG_API_KEY": "s3cret"})
    assert config.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 16 * 1024 * 1024
    assert config.allowed_hosts is None and "s3cret" not in repr(config)
    assert GuardConfig.from_env({"CUSTSEG_API_KEY": ""}).api_key is None
    assert GuardConfig.from_env({"CUSTSEG_MAX_BODY_BYTES": "1024"}).max_body_bytes == 1024
    for bad in ("0", "-5", "16MB"):
        with pytest.raises(ValueError, match="CUSTSEG_MAX_BODY_BYTES"):
            GuardConfig.from_env({"CUSTSEG_MAX_BODY_BYTES": bad})


def test_the_key_is_compared_in_constant_time(monkeypatch):
    """hmac.compare_digest on equal-length digests: no early exit on the first wrong byte nor
    on a wrong length."""
    import hmac

    from serving import guard

    seen, compare = [], hmac.compare_digest

    def spy(a, b):
        seen.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr(guard.hmac, "compare_digest", spy)
    assert guard.key_matches("s3cret", b"s3cret") and guard.key_matches("s3cret", "s3cret")
    assert not guard.key_matches("s3cret", b"s3cre") and not guard.key_matches("s3cret", b"")
    assert not guard.key_matches("s3cret", b"x" * 1000)
    assert not guard.key_matches("s3cret", None) and guard.key_matches(None, None)
    assert seen and all(a == b == 32 for a, b in seen)
    assert guard.key_matches("clé", "clé".encode())  # a non-ASCII key, as UTF-8 bytes
