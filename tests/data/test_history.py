"""History: the parsed model and what it derives (workflows, campaigns, labels, parameters)."""

from __future__ import annotations

from tests.factories import SMALL_HISTORY, WF, WF2
from wtc.data import History, load_history

T0 = f"/{WF}/HIG-RunIIFall17DRStdmix-00451_0"


def test_tasks_vocabularies_and_names(small_history_path):
    h = load_history(small_history_path)
    assert h.tasks == list(SMALL_HISTORY)
    assert h.statuses == ["good", "bad", "drain"]
    assert h.codes == ["-1", "85", "139", "8001", "50660", "71304"]  # numeric order
    assert h.sites == sorted(["T1_US_FNAL", "T2_CH_CERNBOX", "T1_DE_KIT", "T2_DE_DESY", "T2_US_MIT",
                              "T3_US_Rice", "Unknown"])
    assert h.workflows == [WF, WF, WF2, WF2, WF2]
    assert h.campaigns == ["RunIIFall17DRStdmix"] * 2 + ["RunIIFall17wmLHEGS"] * 3
    assert h.task_types == ["DataProcessing", "Merge", "Production", "Merge", "Production"]
    assert h.request_dates.iloc[0].strftime("%Y-%m-%d %H:%M") == "2018-04-12 13:13"
    assert h.labelled.tolist() == [True, True, True, True, False]
    assert h.parameters.loc[T0, "splitting"] == "2x"
    assert h.parameters["action"].tolist()[:4] == ["acdc", "recovery", "by-pass", "clone"]
    # 4 + 2 dense non-zeros (zeros dropped) + 1 drain + 2 + 1 + 2 + 1
    assert h.nnz == 4 + 2 + 1 + 2 + 2 + 1
    assert int(h.entry_count.sum()) == 6 + 63 + 1 + 102 + 2 + 3 + 4 + 5 + 1 + 2 + 7 + 1


def test_entries_are_exact(small_history_path):
    h = load_history(small_history_path)
    rows = {
        (h.tasks[t], h.statuses[s], h.codes[c], h.sites[x]): int(n)
        for t, s, c, x, n in zip(h.entry_task, h.entry_status, h.entry_code, h.entry_site, h.entry_count)
    }
    assert rows[(T0, "good", "50660", "T2_CH_CERNBOX")] == 63
    assert rows[(T0, "good", "-1", "T1_DE_KIT")] == 1
    merge = list(SMALL_HISTORY)[1]
    assert rows[(merge, "good", "85", "T2_US_MIT")] == 2  # from the dense form
    assert rows[(merge, "good", "50660", "T1_US_FNAL")] == 3
    assert (merge, "good", "85", "T1_US_FNAL") not in rows  # dense zeros are not entries
    assert rows[(merge, "drain", "85", "T2_US_MIT")] == 4


def test_history_is_the_model_and_the_loader_reads_it():
    from wtc.data import history

    assert not hasattr(history, "load_history")  # the loader imports History, never the reverse
    assert load_history.__module__ == "wtc.data.loader" and History.__module__ == "wtc.data.history"
