"""build_features: exact entries of every view, extras, vocabulary reuse; always sparse."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tests.conftest import SMALL_HISTORY, write_json
from wtc.data import EXTRAS, VIEWS, build_features, load_history

TASKS = list(SMALL_HISTORY)


def dense_by_name(X, names):
    """{task index: {name: value}} of the non-zeros, for exact comparisons."""
    X = X.tocoo()
    out: dict[int, dict[str, float]] = {}
    for r, c, v in zip(X.row, X.col, X.data):
        out.setdefault(int(r), {})[names[c]] = float(v)
    return out


@pytest.fixture
def history(small_history_path):
    return load_history(small_history_path)


@pytest.mark.parametrize("view", list(VIEWS))
def test_every_view_is_sparse_float32_one_row_per_task(history, view):
    X, names = build_features(history, view)
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.float32
    assert X.shape == (len(TASKS), len(names))
    assert len(set(names)) == len(names)


EXPECTED = {
    "good": {
        0: {"good:-1:T1_DE_KIT": 1, "good:50660:T1_US_FNAL": 6, "good:50660:T2_CH_CERNBOX": 63},
        1: {"good:85:T2_US_MIT": 2, "good:50660:T1_US_FNAL": 3},
        2: {"good:8001:T2_US_MIT": 5, "good:8001:T3_US_Rice": 1},
        4: {"good:8001:T2_US_MIT": 1},
    },
    "bad": {
        0: {"bad:71304:T2_DE_DESY": 102},
        3: {"bad:139:Unknown": 7, "bad:8001:T2_US_MIT": 2},
    },
    "combined": {
        0: {"good:-1:T1_DE_KIT": 1, "good:50660:T1_US_FNAL": 6, "good:50660:T2_CH_CERNBOX": 63,
            "bad:71304:T2_DE_DESY": 102},
        1: {"good:85:T2_US_MIT": 2, "good:50660:T1_US_FNAL": 3, "drain:85:T2_US_MIT": 4},
        2: {"good:8001:T2_US_MIT": 5, "good:8001:T3_US_Rice": 1},
        3: {"bad:139:Unknown": 7, "bad:8001:T2_US_MIT": 2},
        4: {"good:8001:T2_US_MIT": 1},
    },
    "tiers": {
        0: {"good:-1:T1": 1, "good:50660:T1": 6, "good:50660:T2": 63, "bad:71304:T2": 102},
        1: {"good:85:T2": 2, "good:50660:T1": 3, "drain:85:T2": 4},
        2: {"good:8001:T2": 5, "good:8001:T3": 1},
        3: {"bad:139:unknown": 7, "bad:8001:T2": 2},
        4: {"good:8001:T2": 1},
    },
    "codes": {
        0: {"good:-1:*": 1, "good:50660:*": 69, "bad:71304:*": 102},
        1: {"good:85:*": 2, "good:50660:*": 3, "drain:85:*": 4},
        2: {"good:8001:*": 6},
        3: {"bad:139:*": 7, "bad:8001:*": 2},
        4: {"good:8001:*": 1},
    },
}


@pytest.mark.parametrize("view", list(EXPECTED))
def test_exact_entries(history, view):
    X, names = build_features(history, view)
    assert dense_by_name(X, names) == EXPECTED[view]


def test_columns_are_ordered_status_code_site(history):
    _, names = build_features(history, "combined")
    assert names == [
        "good:-1:T1_DE_KIT", "good:85:T2_US_MIT", "good:8001:T2_US_MIT", "good:8001:T3_US_Rice",
        "good:50660:T1_US_FNAL", "good:50660:T2_CH_CERNBOX",
        "bad:139:Unknown", "bad:8001:T2_US_MIT", "bad:71304:T2_DE_DESY",
        "drain:85:T2_US_MIT",
    ]


def test_extras(history):
    X, names = build_features(history, "good", extras=EXTRAS)
    rows = dense_by_name(X, names)
    assert rows[0]["campaign:RunIIFall17DRStdmix"] == 1 and "campaign:RunIIFall17wmLHEGS" not in rows[0]
    assert rows[3]["campaign:RunIIFall17wmLHEGS"] == 1 and rows[3]["tasktype:Merge"] == 1
    assert rows[0]["total:errors"] == 70  # good view: only good-site counts
    assert rows[0]["n:sites"] == 3 and rows[0]["n:codes"] == 2
    assert "total:errors" not in rows[3]  # task 3 has no good-site errors
    Xc, namesc = build_features(history, "combined", extras=("total",))
    assert dense_by_name(Xc, namesc)[0]["total:errors"] == 172


def test_vocabulary_reuse_drops_unseen_and_counts(history, tmp_path):
    X, names = build_features(history, "combined", extras=("campaign",))
    new = {
        "/pdmvserv_task_EXO-RunIIAutumn18DRPremix-00001__v1_T_181001_000000_0001/EXO-x_0": {
            "errors": {"good_sites": {"50660": {"T1_US_FNAL": 4, "T2_XX_New": 9}, "99999": {"T1_US_FNAL": 2}}},
        },
        "/pdmvserv_task_HIG-RunIIFall17DRStdmix-00009__v1_T_180101_000000_0001/HIG-x_0": {
            "errors": {"bad_sites": {"71304": {"T2_DE_DESY": 5}}},
        },
    }
    other = load_history(write_json(tmp_path / "new.json", new))
    X2, names2 = build_features(other, "combined", vocabulary=names, extras=("campaign",))
    assert list(names2) == list(names) and X2.shape == (2, len(names))
    assert dense_by_name(X2, names2) == {
        0: {"good:50660:T1_US_FNAL": 4},
        1: {"bad:71304:T2_DE_DESY": 5, "campaign:RunIIFall17DRStdmix": 1},
    }
    assert names2.dropped["error_entries"] == 2 and names2.dropped["error_counts"] == 11
    assert names2.dropped["campaign:RunIIAutumn18DRPremix"] == 1


def test_training_vocabulary_reproduces_itself(history):
    X, names = build_features(history, "tiers", extras=("task_type", "n_codes"))
    X2, names2 = build_features(history, "tiers", vocabulary=names, extras=("task_type", "n_codes"))
    assert (X != X2).nnz == 0 and not names2.dropped


def test_unknown_view_and_extra(history):
    with pytest.raises(ValueError, match="unknown view 'sites'"):
        build_features(history, "sites")
    with pytest.raises(ValueError, match="unknown extra"):
        build_features(history, "good", extras=("weather",))
