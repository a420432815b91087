"""The model registry: registered versions, the ``champion`` alias and the version tags wtc writes."""

from __future__ import annotations

from collections.abc import Mapping

import mlflow
import mlflow.exceptions

from wtc.store.query import store_client

__all__ = ["CHAMPION", "TAG_ALPHA", "TAG_CONFIDENCE", "TAG_DELTA", "TAG_METHOD", "TAG_TEST_COVERAGE",
           "TAG_TEST_PRECISION", "TAG_COVERAGE", "TAG_METRIC", "TAG_PRECISION", "TAG_REPLACED_BY",
           "TAG_REPLACES", "TAG_SOURCE", "TAG_THRESHOLD", "TAG_VALUE", "alias_version", "champion_tags",
           "create_version", "registered", "tag_float", "version_tags"]

CHAMPION = "champion"
#: Version tags written at promotion.
TAG_REPLACES, TAG_REPLACED_BY = "wtc.replaces", "wtc.replaced_by"
TAG_THRESHOLD, TAG_PRECISION, TAG_COVERAGE = "wtc.auto_threshold", "wtc.auto_precision", "wtc.auto_coverage"
TAG_CONFIDENCE = "wtc.auto_confidence"
#: The AUTO gate's guarantee (precision >= 1 - alpha with probability >= 1 - delta), its method, and the
#: champion's held-out rows at that threshold (reported, never used to choose it).
TAG_ALPHA, TAG_DELTA, TAG_METHOD = "wtc.auto_alpha", "wtc.auto_delta", "wtc.auto_method"
TAG_TEST_PRECISION, TAG_TEST_COVERAGE = "wtc.test_auto_precision", "wtc.test_auto_coverage"
TAG_METRIC, TAG_VALUE, TAG_SOURCE = "wtc.metric", "wtc.metric_value", "wtc.source_run"


def champion_tags(tracking_uri: str, name: str, alias: str = CHAMPION) -> dict[str, str]:
    """The tags of the version ``name@alias`` (empty when the alias does not exist)."""
    return version_tags(tracking_uri, f"models:/{name}@{alias}")


def version_tags(tracking_uri: str, model_uri: str) -> dict[str, str]:
    """The tags of the registered version a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI names.

    Empty for any other URI (a logged model id, ``runs:/``, a path) or an unknown version.
    """
    if not model_uri.startswith("models:/"):
        return {}
    ref = model_uri[len("models:/"):].strip("/")
    client = store_client(tracking_uri)
    try:
        if "@" in ref:
            name, alias = ref.rsplit("@", 1)
            return dict(client.get_model_version_by_alias(name, alias).tags)
        if "/" in ref:
            name, version = ref.rsplit("/", 1)
            return dict(client.get_model_version(name, version).tags)
    except mlflow.exceptions.MlflowException:
        return {}
    return {}


def version_label(tracking_uri: str | None, model_uri: str) -> str:
    """What a panel shows as the source of its recommendations: ``NAME version N`` for a registered
    version (an alias resolved), else the URI itself."""
    if tracking_uri is None or not model_uri.startswith("models:/"):
        return model_uri
    ref = model_uri[len("models:/"):].strip("/")
    try:
        client = store_client(tracking_uri)
        if "@" in ref:
            name, alias = ref.rsplit("@", 1)
            return f"{name} version {client.get_model_version_by_alias(name, alias).version}"
        if "/" in ref:
            name, version = ref.rsplit("/", 1)
            return f"{name} version {client.get_model_version(name, version).version}"
    except mlflow.exceptions.MlflowException:
        return model_uri
    return model_uri


def create_version(client, name: str, model_uri: str, run_id: str, model_id: str | None):
    """A new version of ``name`` (the registered model is created on first use)."""
    if not registered(client, name):
        client.create_registered_model(name, description="wtc champion models: promoted by `wtc promote`")
    return client.create_model_version(name, source=model_uri, run_id=run_id, model_id=model_id)


def registered(client, name: str) -> bool:
    """Whether ``name`` is a registered model of the store."""
    try:
        client.get_registered_model(name)
        return True
    except mlflow.exceptions.MlflowException:
        return False


def alias_version(client, name: str):
    """The version ``name@champion`` points at, or None."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None


def tag_float(tags: Mapping[str, str], key: str) -> float | None:
    """A number wtc wrote as a version tag (``repr`` of a float), or None when missing or unreadable."""
    try:
        return float(tags[key])
    except (KeyError, TypeError, ValueError):
        return None
