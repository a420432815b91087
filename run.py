"""Hydra entry point: ``python run.py [overrides]`` runs one experiment, ``-m`` a sweep."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import wtc  # noqa: F401  (registers the config resolvers)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one job and return its search objective (CV mean, minimised) for Hydra sweepers."""
    from wtc.errors import WtcError
    from wtc.experiment import run

    try:
        result = run(cfg)
    except WtcError as exc:
        raise SystemExit(f"error: {exc}") from None
    return result.metrics["objective"]


if __name__ == "__main__":
    main()
