"""The model set: what the service answers with, promoted as one.

A run registers its models first (no alias moves), then `publish` writes one version of the
registered model `<project>-model-set` listing every member (registered name -> version) and
moves that model's champion alias: a single step, so a service never serves half of a run's
promotions and a killed run promotes nothing. Each member's own champion alias is moved after
it, for people browsing the registry; readers (`served`) trust the set.
"""

from __future__ import annotations

from core import catalog

MEMBER = "member/"  # tag prefix of a member on a set version: member/<registered name> = version
HASH_TAG = "custseg.definition_hash"


def served(client) -> dict[str, str]:
    """Registered name -> version of what is served in this project. A store from before model
    sets: each model's own champion alias."""
    return _members(client, _current(client))


def publish(
    client, promotions: dict[str, str], run_id: str, definition_hash: str | None
) -> tuple[str | None, list[str]]:
    """Serve `promotions` (registered name -> version) together with the members they do not
    replace, in one step; returns (the set's new version or None when nothing changed, the
    members dropped). Members fitted on other feature definitions (another data set or
    configuration) are dropped rather than mixed with these."""
    from mlflow.exceptions import MlflowException

    current = _current(client)
    members = before = _members(client, current)
    dropped: list[str] = []
    if definition_hash and current is not None and current.tags.get(HASH_TAG) != definition_hash:
        dropped = sorted(set(members) - set(promotions))
        members = {}
    new = members | promotions
    if not promotions or (new == members and not dropped):
        return None, dropped
    name = catalog.model_set_name()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="what the custseg service answers with: one version per promotion"
        )
    client.log_dict(
        run_id, {"members": new, "definition_hash": definition_hash}, "model_set/set.json"
    )
    tags = {MEMBER + k: str(v) for k, v in new.items()} | {HASH_TAG: str(definition_hash)}
    version = client.create_model_version(
        name, source=f"runs:/{run_id}/model_set", run_id=run_id, tags=tags
    ).version
    client.set_registered_model_alias(name, catalog.CHAMPION, str(version))  # the switch
    for member, v in promotions.items():
        if before.get(member) != str(v):  # members served already keep their alias as it is
            client.set_registered_model_alias(member, catalog.CHAMPION, str(v))
    return str(version), dropped


def _members(client, version) -> dict[str, str]:
    """The members listed by a set version; without one, each model's own alias."""
    if version is None:
        return _aliases(client)
    return {k.removeprefix(MEMBER): v for k, v in version.tags.items() if k.startswith(MEMBER)}


def _current(client):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(catalog.model_set_name(), catalog.CHAMPION)
    except MlflowException:
        return None


def _aliases(client) -> dict[str, str]:
    """Each of this project's models with its own champion alias (stores before model sets)."""
    from mlflow.exceptions import MlflowException

    from core.catalog import next_best_name, predictor_name, scheme_of

    targets = {predictor_name(t) for t in catalog.PREDICTION_TARGETS} | {next_best_name()}
    out = {}
    for rm in client.search_registered_models():
        if not (scheme_of(rm.name) or rm.name in targets):
            continue
        try:
            out[rm.name] = str(client.get_model_version_by_alias(rm.name, catalog.CHAMPION).version)
        except MlflowException:
            continue  # registered, never promoted
    return out
