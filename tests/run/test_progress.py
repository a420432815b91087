"""A run says how its search goes: one line per finished trial (k/N, its CV objective, the best so far)."""

from __future__ import annotations

import logging
import re

import pytest

from tests.factories import make_cfg
from wtc.run.experiment import run


@pytest.mark.parametrize("search", ["gp", "tpe"])
def test_one_line_per_trial_with_the_best_so_far(history_400, tracking_uri, caplog, search):
    cfg = make_cfg(history_400, tracking_uri, ["model=logreg", f"search={search}", "search.n_trials=3",
                                               "diagnostics=none"])
    with caplog.at_level(logging.INFO, logger="wtc.run.experiment"):
        result = run(cfg)
    lines = [r.getMessage() for r in caplog.records if " trial " in r.getMessage()]
    assert len(lines) == 3
    found = [re.fullmatch(r"logreg-\S+ trial (\d)/3: (?:cv roc_auc ([0-9.]+)|pruned)(?: \(best ([0-9.]+)\))?", line)
             for line in lines]
    assert all(found), lines
    assert [int(m.group(1)) for m in found] == [1, 2, 3]
    values = [float(m.group(2)) for m in found if m.group(2)]
    bests = [float(m.group(3)) for m in found if m.group(3)]
    assert bests == sorted(bests) and bests[-1] == pytest.approx(max(values), abs=5e-4)  # greater is better
    assert bests[-1] == pytest.approx(result.metrics["cv/roc_auc_mean"], abs=5e-4)


def test_quiet_says_nothing_per_trial(history_400, tracking_uri, caplog):
    cfg = make_cfg(history_400, tracking_uri, ["model=logreg", "search.n_trials=2", "diagnostics=none", "quiet=true"])
    with caplog.at_level(logging.INFO, logger="wtc.run.experiment"):
        run(cfg)
    assert not [r for r in caplog.records if " trial " in r.getMessage()]
    assert any("test roc_auc" in r.getMessage() for r in caplog.records)  # the job's own line stays
