"""Parse CMS request and task names: workflow, campaign, task type and request date."""

from __future__ import annotations

import re
from datetime import datetime

# pdmvserv_task_HIG-RunIIFall17DRStdmix-00451__v1_T_180412_131301_1234
# cmsunified_ACDC0_task_SUS-RunIIFall17wmLHEGS-00012__v1_T_180530_101010_5678
_CAMPAIGN_RE = re.compile(r"(?:^|_)(?:task_)?[A-Z0-9]{2,5}-([A-Za-z0-9]+)-\d{5}(?:__|_|$)")
# ReReco style: vlimant_Run2017F-v1-JetHT-17Nov2017_... -> campaign Run2017F
_RERECO_RE = re.compile(r"(?:^|_)(Run20\d\d[A-Z])")
_PRODUCTION_RE = re.compile(r"(GS|LHE|GEN|wmLHE)")
_DATE_RE = re.compile(r"_(\d{6})_(\d{6})(?:_\d+)?$")


def workflow_of(task: str) -> str:
    """Workflow of a task: the first component of ``/<workflow>/<task>[/<subtask>...]``."""
    return task.strip("/").split("/", 1)[0]


def campaign_of(workflow: str) -> str:
    """Campaign parsed from a workflow name (``...HIG-RunIIFall17DRStdmix-00451...`` ->
    ``RunIIFall17DRStdmix``); ``unknown`` when the name does not follow the conventions."""
    match = _CAMPAIGN_RE.search(workflow)
    if match:
        return match.group(1)
    match = _RERECO_RE.search(workflow)
    return match.group(1) if match else "unknown"


def task_type_of(task: str, campaign: str | None = None) -> str:
    """Task type from the last path component: Merge, Cleanup, LogCollect, Harvesting,
    Production (GEN/GEN-SIM/LHE first steps) or DataProcessing. ``campaign``: the workflow's
    :func:`campaign_of`, when the caller has it already."""
    parts = task.strip("/").split("/")
    last = parts[-1]
    for marker, kind in (
        ("Merge", "Merge"),
        ("Cleanup", "Cleanup"),
        ("LogCollect", "LogCollect"),
        ("Harvest", "Harvesting"),
        ("DQM", "Harvesting"),
    ):
        if marker in last:
            return kind
    campaign = campaign_of(parts[0]) if campaign is None else campaign
    if len(parts) <= 2 and _PRODUCTION_RE.search(campaign):
        return "Production"
    return "DataProcessing"


def request_date_of(workflow: str) -> datetime | None:
    """Submission date encoded in a workflow name (``..._180412_131301_1234``), or None."""
    match = _DATE_RE.search(workflow)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1) + match.group(2), "%y%m%d%H%M%S")
    except ValueError:
        return None
