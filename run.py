"""Hydra entry point: ``python run.py [overrides]`` runs one experiment, ``-m`` a sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

import wtc  # noqa: F401  (registers the config resolvers)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one job and return its search objective (CV mean, minimised) for Hydra sweepers.

    Errors and interruptions (Ctrl-C, SIGTERM) end in one line on stderr, never a traceback.
    """
    from wtc.errors import WtcError
    from wtc.interrupt import interrupt_report, interrupts_unwind
    from wtc.run.experiment import run

    try:
        with interrupts_unwind():
            result = run(cfg)
    except WtcError as exc:
        raise SystemExit(f"error: {exc}") from None
    except KeyboardInterrupt as exc:
        line, status = interrupt_report(exc)
        print(f"error: {line}", file=sys.stderr)
        raise SystemExit(status) from None
    return result.metrics["objective"]


if __name__ == "__main__":
    from wtc.run.provenance import canonical_overrides

    # The class names the outputs show are choices too: resample=SMOTE is resample=smote.
    sys.argv[1:] = canonical_overrides(sys.argv[1:], Path(__file__).resolve().parent / "conf")
    main()
