"""build_features: exact entries of every view and block, composition, log scaling, vocabulary reuse; always sparse."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.sparse as sp

from tests.factories import SMALL_HISTORY, write_json
from wtc.data import EXTRAS, build_features, load_history
from wtc.data.features import BLOCKS

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


@pytest.mark.parametrize("view", list(BLOCKS))
def test_every_entry_is_sparse_float32_one_row_per_task(history, view):
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
    assert rows[3]["campaign:RunIIFall17wmLHEGS"] == 1 and rows[3]["task_type:Merge"] == 1
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
    with pytest.raises(ValueError, match="unknown extra"):
        build_features(history, "good", extras=("weather",))


# Every derived block on SMALL_HISTORY, worked out by hand (task 1 is the dense-form one).
EXPECTED_BLOCKS = {
    "status_code_totals": {
        0: {"status_code_totals:good/-1": 1, "status_code_totals:good/50660": 69, "status_code_totals:bad/71304": 102},
        1: {"status_code_totals:good/85": 2, "status_code_totals:good/50660": 3, "status_code_totals:drain/85": 4},
        2: {"status_code_totals:good/8001": 6},
        3: {"status_code_totals:bad/139": 7, "status_code_totals:bad/8001": 2},
        4: {"status_code_totals:good/8001": 1},
    },
    "status_code_sites": {
        0: {"status_code_sites:good/-1": 1, "status_code_sites:good/50660": 2, "status_code_sites:bad/71304": 1},
        1: {"status_code_sites:good/85": 1, "status_code_sites:good/50660": 1, "status_code_sites:drain/85": 1},
        2: {"status_code_sites:good/8001": 2},
        3: {"status_code_sites:bad/139": 1, "status_code_sites:bad/8001": 1},
        4: {"status_code_sites:good/8001": 1},
    },
    "code_totals": {
        0: {"code_totals:-1": 1, "code_totals:50660": 69, "code_totals:71304": 102},
        1: {"code_totals:85": 6, "code_totals:50660": 3},
        2: {"code_totals:8001": 6},
        3: {"code_totals:139": 7, "code_totals:8001": 2},
        4: {"code_totals:8001": 1},
    },
    "site_totals": {
        0: {"site_totals:T1_DE_KIT": 1, "site_totals:T1_US_FNAL": 6, "site_totals:T2_CH_CERNBOX": 63,
            "site_totals:T2_DE_DESY": 102},
        1: {"site_totals:T2_US_MIT": 6, "site_totals:T1_US_FNAL": 3},
        2: {"site_totals:T2_US_MIT": 5, "site_totals:T3_US_Rice": 1},
        3: {"site_totals:T2_US_MIT": 2, "site_totals:Unknown": 7},
        4: {"site_totals:T2_US_MIT": 1},
    },
    "row_summary": {
        0: {"row_summary:total": 172, "row_summary:max": 102, "row_summary:codes": 3, "row_summary:sites": 4,
            "row_summary:bad_share_counts": pytest.approx(102 / 172), "row_summary:bad_share_cells": 0.25},
        1: {"row_summary:total": 9, "row_summary:max": 4, "row_summary:codes": 2, "row_summary:sites": 2},
        2: {"row_summary:total": 6, "row_summary:max": 5, "row_summary:codes": 1, "row_summary:sites": 2},
        3: {"row_summary:total": 9, "row_summary:max": 7, "row_summary:codes": 2, "row_summary:sites": 2,
            "row_summary:bad_share_counts": 1, "row_summary:bad_share_cells": 1},
        4: {"row_summary:total": 1, "row_summary:max": 1, "row_summary:codes": 1, "row_summary:sites": 1},
    },
    # shares of each task's total: 172, 9, 6, 9 and 1 (row_summary:total)
    "status_code_shares": {
        0: {"status_code_shares:good/-1": pytest.approx(1 / 172), "status_code_shares:good/50660": pytest.approx(69 / 172),
            "status_code_shares:bad/71304": pytest.approx(102 / 172)},
        1: {"status_code_shares:good/85": pytest.approx(2 / 9), "status_code_shares:good/50660": pytest.approx(3 / 9),
            "status_code_shares:drain/85": pytest.approx(4 / 9)},
        2: {"status_code_shares:good/8001": 1},
        3: {"status_code_shares:bad/139": pytest.approx(7 / 9), "status_code_shares:bad/8001": pytest.approx(2 / 9)},
        4: {"status_code_shares:good/8001": 1},
    },
    "site_shares": {
        0: {"site_shares:T1_DE_KIT": pytest.approx(1 / 172), "site_shares:T1_US_FNAL": pytest.approx(6 / 172),
            "site_shares:T2_CH_CERNBOX": pytest.approx(63 / 172), "site_shares:T2_DE_DESY": pytest.approx(102 / 172)},
        1: {"site_shares:T2_US_MIT": pytest.approx(6 / 9), "site_shares:T1_US_FNAL": pytest.approx(3 / 9)},
        2: {"site_shares:T2_US_MIT": pytest.approx(5 / 6), "site_shares:T3_US_Rice": pytest.approx(1 / 6)},
        3: {"site_shares:T2_US_MIT": pytest.approx(2 / 9), "site_shares:Unknown": pytest.approx(7 / 9)},
        4: {"site_shares:T2_US_MIT": 1},
    },
    # workflow context: tasks 0-1 are one workflow (172 + 9 = 181 counts), tasks 2-4 another (6 + 9 + 1 = 16)
    "workflow_code_totals": {0: {"workflow_code_totals:good/-1": 1, "workflow_code_totals:good/85": 2, "workflow_code_totals:good/50660": 72, "workflow_code_totals:bad/71304": 102, "workflow_code_totals:drain/85": 4}, 1: {"workflow_code_totals:good/-1": 1, "workflow_code_totals:good/85": 2, "workflow_code_totals:good/50660": 72, "workflow_code_totals:bad/71304": 102, "workflow_code_totals:drain/85": 4}, 2: {"workflow_code_totals:good/8001": 7, "workflow_code_totals:bad/139": 7, "workflow_code_totals:bad/8001": 2}, 3: {"workflow_code_totals:good/8001": 7, "workflow_code_totals:bad/139": 7, "workflow_code_totals:bad/8001": 2}, 4: {"workflow_code_totals:good/8001": 7, "workflow_code_totals:bad/139": 7, "workflow_code_totals:bad/8001": 2}},
    "workflow_site_totals": {0: {"workflow_site_totals:T1_DE_KIT": 1, "workflow_site_totals:T1_US_FNAL": 9, "workflow_site_totals:T2_CH_CERNBOX": 63, "workflow_site_totals:T2_DE_DESY": 102, "workflow_site_totals:T2_US_MIT": 6}, 1: {"workflow_site_totals:T1_DE_KIT": 1, "workflow_site_totals:T1_US_FNAL": 9, "workflow_site_totals:T2_CH_CERNBOX": 63, "workflow_site_totals:T2_DE_DESY": 102, "workflow_site_totals:T2_US_MIT": 6}, 2: {"workflow_site_totals:T2_US_MIT": 8, "workflow_site_totals:T3_US_Rice": 1, "workflow_site_totals:Unknown": 7}, 3: {"workflow_site_totals:T2_US_MIT": 8, "workflow_site_totals:T3_US_Rice": 1, "workflow_site_totals:Unknown": 7}, 4: {"workflow_site_totals:T2_US_MIT": 8, "workflow_site_totals:T3_US_Rice": 1, "workflow_site_totals:Unknown": 7}},
    "workflow_summary": {
        0: {"workflow_summary:tasks": 2, "workflow_summary:total": 181, "workflow_summary:task_share": pytest.approx(172 / 181)},
        1: {"workflow_summary:tasks": 2, "workflow_summary:total": 181, "workflow_summary:task_share": pytest.approx(9 / 181)},
        2: {"workflow_summary:tasks": 3, "workflow_summary:total": 16, "workflow_summary:task_share": pytest.approx(6 / 16)},
        3: {"workflow_summary:tasks": 3, "workflow_summary:total": 16, "workflow_summary:task_share": pytest.approx(9 / 16)},
        4: {"workflow_summary:tasks": 3, "workflow_summary:total": 16, "workflow_summary:task_share": pytest.approx(1 / 16)},
    },
    # by cells: workflow A (tasks 0-1) has 7 cells, 4 codes, 5 sites; B (tasks 2-4) 5 cells, 2 codes, 3 sites
    "workflow_code_cells": {
        r: ({"workflow_code_cells:good/-1": 1, "workflow_code_cells:good/85": 1, "workflow_code_cells:good/50660": 3,
             "workflow_code_cells:bad/71304": 1, "workflow_code_cells:drain/85": 1} if r < 2 else
            {"workflow_code_cells:good/8001": 3, "workflow_code_cells:bad/139": 1, "workflow_code_cells:bad/8001": 1})
        for r in range(5)},
    "workflow_shape": {
        r: {"workflow_shape:cells_per_task": pytest.approx(cells / tasks), "workflow_shape:codes": codes,
            "workflow_shape:sites": sites, "workflow_shape:bad_share_cells": pytest.approx(bad / cells),
            "workflow_shape:log_count": pytest.approx(np.log(wf_counts).mean()),
            "workflow_shape:task_log_count": pytest.approx(np.log(own).mean() - np.log(wf_counts).mean()),
            "workflow_shape:top_code_cells": pytest.approx(top_code / cells),
            "workflow_shape:top_site_cells": pytest.approx(top_site / cells)}
        for r, (tasks, cells, codes, sites, bad, wf_counts, own, top_code, top_site) in enumerate([
            (2, 7, 4, 5, 1, [1, 6, 63, 102, 2, 4, 3], [1, 6, 63, 102], 3, 2),
            (2, 7, 4, 5, 1, [1, 6, 63, 102, 2, 4, 3], [2, 4, 3], 3, 2),
            (3, 5, 2, 3, 2, [5, 1, 7, 2, 1], [5, 1], 4, 3),
            (3, 5, 2, 3, 2, [5, 1, 7, 2, 1], [7, 2], 4, 3),
            (3, 5, 2, 3, 2, [5, 1, 7, 2, 1], [1], 4, 3)])},
    # the workflow's (status, code) totals above over its total count: 181 (tasks 0-1) and 16 (tasks 2-4)
    "workflow_code_shares": {
        r: ({"workflow_code_shares:good/-1": pytest.approx(1 / 181), "workflow_code_shares:good/85": pytest.approx(2 / 181),
             "workflow_code_shares:good/50660": pytest.approx(72 / 181),
             "workflow_code_shares:bad/71304": pytest.approx(102 / 181),
             "workflow_code_shares:drain/85": pytest.approx(4 / 181)} if r < 2 else
            {"workflow_code_shares:good/8001": pytest.approx(7 / 16), "workflow_code_shares:bad/139": pytest.approx(7 / 16),
             "workflow_code_shares:bad/8001": pytest.approx(2 / 16)})
        for r in range(5)},
    # by the vocabulary's code category (-1 unknown, 50660 memory, 71304 time, 85 input, 8001 software,
    # 139 crash): shares of the task's count and of its cells (4, 3, 2, 2 and 1 cells)
    "category_shares": {
        0: {"category_shares:good/unknown/counts": pytest.approx(1 / 172), "category_shares:good/memory/counts": pytest.approx(69 / 172),
            "category_shares:bad/time/counts": pytest.approx(102 / 172), "category_shares:good/unknown/cells": 0.25,
            "category_shares:good/memory/cells": 0.5, "category_shares:bad/time/cells": 0.25},
        1: {"category_shares:good/input/counts": pytest.approx(2 / 9), "category_shares:good/memory/counts": pytest.approx(3 / 9),
            "category_shares:drain/input/counts": pytest.approx(4 / 9), "category_shares:good/input/cells": pytest.approx(1 / 3),
            "category_shares:good/memory/cells": pytest.approx(1 / 3), "category_shares:drain/input/cells": pytest.approx(1 / 3)},
        2: {"category_shares:good/software/counts": 1, "category_shares:good/software/cells": 1},
        3: {"category_shares:bad/crash/counts": pytest.approx(7 / 9), "category_shares:bad/software/counts": pytest.approx(2 / 9),
            "category_shares:bad/crash/cells": 0.5, "category_shares:bad/software/cells": 0.5},
        4: {"category_shares:good/software/counts": 1, "category_shares:good/software/cells": 1},
    },
    # pooled over the workflow: A (tasks 0-1) 181 counts in 7 cells, B (tasks 2-4) 16 counts in 5 cells
    "workflow_categories": {
        r: {f"workflow_categories:{key}/{stat}": pytest.approx(value) for key, (count, cells) in (
            {"good/unknown": (1, 1), "good/memory": (72, 3), "bad/time": (102, 1), "good/input": (2, 1),
             "drain/input": (4, 1)} if r < 2 else {"good/software": (7, 3), "bad/crash": (7, 1), "bad/software": (2, 1)}).items()
            for stat, value in (("share", count / (181 if r < 2 else 16)), ("cell_share", cells / (7 if r < 2 else 5)),
                                ("cells", cells))}
        for r in range(5)},
    "task_type": {0: {"task_type:DataProcessing": 1}, 1: {"task_type:Merge": 1}, 2: {"task_type:Production": 1},
                  3: {"task_type:Merge": 1}, 4: {"task_type:Production": 1}},
    "campaign": {0: {"campaign:RunIIFall17DRStdmix": 1}, 1: {"campaign:RunIIFall17DRStdmix": 1},
                 2: {"campaign:RunIIFall17wmLHEGS": 1}, 3: {"campaign:RunIIFall17wmLHEGS": 1},
                 4: {"campaign:RunIIFall17wmLHEGS": 1}},
}


@pytest.mark.parametrize("block", list(EXPECTED_BLOCKS))
def test_exact_entries_of_each_block(history, block):
    # a block as the only entry, and as an extra after a view: the same columns either way
    X, names = build_features(history, block)
    assert dense_by_name(X, names) == EXPECTED_BLOCKS[block]
    Xv, namesv = build_features(history, "codes", extras=[block])
    rows = dense_by_name(Xv, namesv)
    assert {r: {k: v for k, v in row.items() if k.startswith(block)} for r, row in rows.items()
            if any(k.startswith(block) for k in row)} == EXPECTED_BLOCKS[block]


def test_every_expected_table_covers_every_entry():
    assert set(EXPECTED) | set(EXPECTED_BLOCKS) | {"total", "n_sites", "n_codes"} == set(BLOCKS)


def test_block_names_never_look_like_error_cells(history):
    # the rules baseline and importance grouping read 3-part names as <status>:<code>:<site>
    _, names = build_features(history, "codes", extras=[e for e in EXPECTED_BLOCKS])
    assert all(len(n.split(":")) == 2 for n in names if not n.endswith(":*"))


EVIDENCE = ["status_code_totals", "status_code_sites", "code_totals", "site_totals", "row_summary", "status_code_shares",
            "site_shares", "workflow_code_totals", "workflow_site_totals", "workflow_summary",
            "task_type", "campaign"]


def test_shares_do_not_move_when_every_count_of_a_task_scales(history, tmp_path):
    """The point of the share blocks: a workflow's job count multiplies its tasks' counts."""
    scaled = copy.deepcopy(SMALL_HISTORY)
    errors = scaled[TASKS[0]]["errors"]
    for status in ("good_sites", "bad_sites"):
        for code, sites in errors[status].items():
            errors[status][code] = {site: 10 * n for site, n in sites.items()}
    other = load_history(write_json(tmp_path / "scaled.json", scaled))
    for block in ("status_code_shares", "site_shares", "category_shares"):
        X, names = build_features(history, block)
        X10, names10 = build_features(other, block, vocabulary=names)
        assert np.allclose(X.toarray(), X10.toarray())
    X, names = build_features(history, "status_code_totals")
    assert not np.allclose(X.toarray(), build_features(other, "status_code_totals", vocabulary=names)[0].toarray())


def test_composition_keeps_entry_order_and_unique_names(history):
    X, names = build_features(history, "combined", extras=EVIDENCE)
    blocks = [n.split(":")[0] for n in names]
    assert blocks[:10] == ["good"] * 6 + ["bad"] * 3 + ["drain"]
    firsts = list(dict.fromkeys(blocks[10:]))
    assert firsts == EVIDENCE and len(set(names)) == len(names)
    assert X.shape == (5, len(names))


def test_log1p_scales_one_entry_only(history):
    X, names = build_features(history, "combined.log1p", extras=["code_totals"])
    rows = dense_by_name(X, names)
    assert rows[0]["bad:71304:T2_DE_DESY"] == pytest.approx(np.log1p(102))
    assert rows[0]["code_totals:50660"] == 69  # not scaled
    Xl, namesl = build_features(history, "codes", extras=["code_totals.log1p"])
    # log of the summed count, not the sum of logs: 6 + 63 at two sites -> log1p(69)
    assert dense_by_name(Xl, namesl)[0]["code_totals:50660"] == pytest.approx(np.log1p(69), rel=1e-6)


def test_entries_may_not_repeat_nor_log_a_one_hot(history):
    with pytest.raises(ValueError, match="appears twice"):
        build_features(history, "combined", extras=["code_totals", "code_totals.log1p"])
    with pytest.raises(ValueError, match="nothing to log-scale"):
        build_features(history, "combined", extras=["campaign.log1p"])


def test_values_never_depend_on_labels(history, tmp_path):
    relabelled = copy.deepcopy(SMALL_HISTORY)
    for i, task in enumerate(relabelled.values()):
        task["parameters"] = {"action": ["clone", "acdc"][i % 2]} if i % 3 else None
        if task["parameters"] is None:
            del task["parameters"]
    other = load_history(write_json(tmp_path / "relabelled.json", relabelled))
    X, names = build_features(history, "combined", extras=EVIDENCE)
    X2, names2 = build_features(other, "combined", extras=EVIDENCE)
    assert names2 == names and (X != X2).nnz == 0


NEW_TASKS = {
    "/pdmvserv_task_EXO-RunIIAutumn18DRPremix-00001__v1_T_181001_000000_0001/EXO-x_0": {
        "errors": {"good_sites": {"50660": {"T1_US_FNAL": 4, "T2_XX_New": 9}, "99999": {"T1_US_FNAL": 2}}},
    },
    "/pdmvserv_task_HIG-RunIIFall17DRStdmix-00009__v1_T_180101_000000_0001/HIG-x_0": {
        "errors": {"bad_sites": {"71304": {"T2_DE_DESY": 5}}},
    },
}
# block -> (expected non-zeros of the two new tasks under the training vocabulary, expected drops)
REUSED = {
    "status_code_totals": ({0: {"status_code_totals:good/50660": 13}, 1: {"status_code_totals:bad/71304": 5}},
                           {"status_code_totals:entries": 1, "status_code_totals:counts": 2}),
    "status_code_sites": ({0: {"status_code_sites:good/50660": 2}, 1: {"status_code_sites:bad/71304": 1}},
                          {"status_code_sites:entries": 1, "status_code_sites:counts": 1}),
    "code_totals": ({0: {"code_totals:50660": 13}, 1: {"code_totals:71304": 5}},
                    {"code_totals:entries": 1, "code_totals:counts": 2}),
    "site_totals": ({0: {"site_totals:T1_US_FNAL": 6}, 1: {"site_totals:T2_DE_DESY": 5}},
                    {"site_totals:entries": 1, "site_totals:counts": 9}),
    "row_summary": ({0: {"row_summary:total": 15, "row_summary:max": 9, "row_summary:codes": 2, "row_summary:sites": 2},
                     1: {"row_summary:total": 5, "row_summary:max": 5, "row_summary:codes": 1, "row_summary:sites": 1,
                         "row_summary:bad_share_counts": 1, "row_summary:bad_share_cells": 1}}, {}),
    "task_type": ({0: {"task_type:DataProcessing": 1}, 1: {"task_type:DataProcessing": 1}}, {}),
    "campaign": ({1: {"campaign:RunIIFall17DRStdmix": 1}}, {"campaign:RunIIAutumn18DRPremix": 1}),
}


@pytest.mark.parametrize("block", list(REUSED))
def test_vocabulary_reuse_per_block(history, tmp_path, block):
    _, names = build_features(history, block)
    other = load_history(write_json(tmp_path / "new.json", NEW_TASKS))
    X2, names2 = build_features(other, block, vocabulary=names)
    expected, drops = REUSED[block]
    assert list(names2) == list(names) and dense_by_name(X2, names2) == expected
    assert names2.dropped == drops


def test_vocabulary_rows_learns_names_from_training_rows_only(history):
    X, names = build_features(history, "combined", extras=["code_totals", "campaign"], vocabulary_rows=[0, 1])
    assert "code_totals:8001" not in names and "campaign:RunIIFall17wmLHEGS" not in names
    assert "code_totals:50660" in names and "drain:85:T2_US_MIT" in names
    assert X.shape == (5, len(names)) and X[2:].nnz == 0  # tasks 2-4 share nothing with tasks 0-1
    assert names.dropped["code_totals:entries"] == 5 and names.dropped["campaign:RunIIFall17wmLHEGS"] == 3


@pytest.mark.parametrize("seed", range(5))
def test_distinct_pairs_are_those_of_a_unique_over_pairs(seed):
    from wtc.data.blocks import distinct_pairs

    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, 30, 400), rng.integers(0, 1 + seed * 40, 400)
    pairs, counts = np.unique(np.stack([first, second]), axis=1, return_counts=True)
    assert distinct_pairs(first, second).tolist() == pairs[0].tolist()
    got, got_counts = distinct_pairs(first, second, return_counts=True)
    assert got.tolist() == pairs[0].tolist() and got_counts.tolist() == counts.tolist()
    assert distinct_pairs(np.zeros(0, np.int64), np.zeros(0, np.int32)).size == 0


@pytest.mark.parametrize("view", ["combined", "tiers", "codes"])
def test_a_reused_vocabulary_gives_the_same_csr_to_the_bit(history, view):
    # The blocks of a reused vocabulary are put side by side in one CSR: the very matrix the training
    # build gave (same row order of columns, same float32 values), not just equal values.
    extras = [e for e in EXTRAS if BLOCKS[e].kind != "view"]
    X, names = build_features(history, view, extras=extras)
    X2, _ = build_features(history, view, vocabulary=names, extras=extras)
    assert X2.has_sorted_indices and X2.dtype == X.dtype == np.float32
    assert X2.indptr.tolist() == X.indptr.tolist() and X2.indices.tolist() == X.indices.tolist()
    assert X2.data.tobytes() == X.data.tobytes()


def test_workflow_ids_and_task_types_are_what_the_names_say(history):
    from wtc.data.names import task_type_of

    _, inverse = np.unique(np.asarray(history.workflows, dtype=object), return_inverse=True)
    assert history.workflow_ids.tolist() == inverse.reshape(-1).tolist()
    assert history.task_types == [task_type_of(t) for t in history.tasks]


@pytest.mark.parametrize("block", ["workflow_code_totals", "workflow_site_totals", "workflow_code_cells"])
def test_a_workflow_block_is_its_block_summed_over_the_workflow(history, block):
    # Against the definition, written as sparse algebra: member @ member.T @ block.
    inner = {"workflow_code_totals": "status_code_totals", "workflow_site_totals": "site_totals",
             "workflow_code_cells": "status_code_sites"}[block]
    X, names = build_features(history, "codes", extras=[inner, block])
    own = np.array([n.startswith(f"{inner}:") for n in names])
    n = history.n_tasks
    member = sp.csr_matrix((np.ones(n), (np.arange(n), history.workflow_ids)))
    expected = (member @ (member.T @ X[:, own])).toarray()
    got = X[:, np.array([n.startswith(f"{block}:") for n in names])].toarray()
    assert got.shape == expected.shape and (got == expected).all() and got.any()


@pytest.mark.parametrize("high", [1, 50, 10**7])  # a table of the range, or a sort when the range is wide
def test_unique_inverse_is_numpys(high):
    from wtc.data.blocks import unique_inverse

    keys = np.random.default_rng(high).integers(0, high, 3000)
    uniques, inverse = unique_inverse(keys)
    expected, expected_inverse = np.unique(keys, return_inverse=True)
    assert uniques.tolist() == expected.tolist() and inverse.tolist() == expected_inverse.tolist()
    assert uniques.dtype == keys.dtype and unique_inverse(keys[:0])[0].size == 0
