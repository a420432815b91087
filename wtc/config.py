"""How wtc reads its configs: the OmegaConf resolvers conf/ relies on (registered when wtc is
imported), and the object a config group's option builds."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from wtc.errors import ConfigError, one_line

__all__ = ["HOME_ENV", "build_option", "project_home", "register_resolvers"]

#: The folder that holds the project's store, data and cache, whatever the current directory.
HOME_ENV = "WTC_HOME"


def _xgb_device(device: str) -> str:
    """XGBoost's name for the configured device (``gpu`` -> ``cuda``)."""
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    return "cuda" if device == "gpu" else "cpu"


def project_home() -> Path:
    """Where wtc keeps its store, data and cache: ``$WTC_HOME``; else the checkout wtc runs from (the
    folder above the package, holding ``conf/config.yaml``); else the current directory (an installed
    package with no checkout)."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "conf" / "config.yaml").is_file() else Path.cwd().resolve()


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("xgb_device", _xgb_device, replace=True)
    OmegaConf.register_new_resolver("wtc_home", lambda: str(project_home()), replace=True)


def build_option(node: Mapping | None, name: str = "kind", skip: Iterable[str] = (), **kwargs: Any) -> Any:
    """The object a config group's option builds: its ``_target_`` class called with its keys.

    An option of ``search``, ``cv``, ``ensemble`` or ``calibration`` names the class that does
    the work (``_target_``) with the class's arguments, beside the option's own ``name`` (its
    logged value, e.g. ``cv.kind`` or ``calibration.method``, which the class declares as a class
    attribute of that name: :func:`wtc.run.config_checks.check_config` checks they agree) and the
    keys in ``skip`` (read by the caller, e.g. where a search keeps its trials). Neither is passed on.

    Parameters
    ----------
    node : mapping or DictConfig or None
        The group's node (interpolations are resolved).
    name : str
        The key of the option's logged name.
    skip : iterable of str
        Other keys that are not arguments of the class.
    **kwargs
        Arguments added to (or overriding) the node's, e.g. a searcher's space and seed.

    Returns
    -------
    object or None
        The instance; None when the node is missing or has no ``_target_`` (``calibration=none``:
        nothing to build).

    Raises
    ------
    ConfigError
        One line naming the class, when it cannot be imported or refuses its arguments.
    """
    from hydra.utils import instantiate

    if node is None:
        return None
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    if "_target_" not in plain:
        return None
    skipped = {name, *skip}
    try:
        # A partial, called with kwargs: those (a searcher's space...) reach the class as they
        # are, never converted by OmegaConf.
        build = instantiate({**{k: v for k, v in plain.items() if k not in skipped}, "_partial_": True},
                            _convert_="all")
        return build(**kwargs)
    except Exception as exc:  # an argument the class does not take, or a value it refuses
        raise ConfigError(f"cannot build {plain['_target_']} from the config: {one_line(exc, limit=300)}") from exc
