"""Synthetic WTC actions histories drawn from a known generative model, with their exact oracle.

The generator is a small, explicit world of 2018 CMS production: every workflow has a hidden
*cause* (transient site trouble, a site outage, memory, wall clock, input files, a software
bug, stage-out, merge trouble) and a *severity*; the cause decides which exit codes its tasks
throw at which sites (good or bad that week) and how often; the operator's recovery decision
is drawn from a noisy policy given the cause. Like real workflows, the tasks of one workflow
also look alike: they share a site whitelist, a signature code and a count scale, all given by
the workflow's name, so a random task split leaks and a workflow-grouped split does not. Because every step is a known distribution, the
posterior ``P(class | what the task shows)`` of every target is computed exactly: that oracle is
the best any per-task model can do, so every experiment on synthetic data can report how far
it is from the limit.

The package is split along those steps:

- :mod:`~wtc.data.synthetic.world`: the fixed world (causes, campaigns, code and site
  distributions, weekly site readiness, the operator's policy and its decision distributions);
- :mod:`~wtc.data.synthetic.traits`: what a workflow's tasks share, from its name;
- :mod:`~wtc.data.synthetic.sampling`: drawing workflows, tasks, decisions and error counts
  into a JSON-ready history (:func:`generate_history`);
- :mod:`~wtc.data.synthetic.posterior`: the exact likelihood, posterior and oracle table
  (:func:`oracle_of`), and the workflow oracle that also reads a task's siblings
  (:func:`workflow_oracle_of`);
- :mod:`~wtc.data.synthetic.blind`: the name-blind oracle, the traits marginalised over
  their prior (:func:`blind_oracle_of`): the limit of a model that cannot read the traits;
- :mod:`~wtc.data.synthetic.workflow_blind`: both at once, the siblings read and the traits
  marginalised jointly over them (:func:`workflow_blind_oracle_of`);
- :mod:`~wtc.data.synthetic.io`: benchmark files, their oracle sidecars and the default
  benchmark;
- :mod:`~wtc.data.synthetic.calibration`: the recipe on random vs grouped splits, with the oracle.
"""

from __future__ import annotations

from wtc.data.synthetic.blind import blind_oracle_of
from wtc.data.synthetic.io import (
    default_history_path,
    ensure_blind_oracle,
    ensure_default_history,
    ensure_workflow_blind_oracle,
    ensure_workflow_oracle,
    load_oracle_table,
    oracle_path,
    write_benchmark,
)
from wtc.data.synthetic.posterior import joint_oracle_of, oracle_of, workflow_oracle_of
from wtc.data.synthetic.sampling import generate_history
from wtc.data.synthetic.workflow_blind import workflow_blind_oracle_of
from wtc.data.synthetic.world import (
    CAUSES,
    DEFAULT_TASKS,
    GENERATOR_VERSION,
    N_WEEKS,
    SEVERITIES,
    STATUSES,
    TASK_CLASSES,
)

__all__ = [
    "CAUSES",
    "DEFAULT_TASKS",
    "GENERATOR_VERSION",
    "N_WEEKS",
    "SEVERITIES",
    "STATUSES",
    "TASK_CLASSES",
    "blind_oracle_of",
    "default_history_path",
    "ensure_blind_oracle",
    "ensure_default_history",
    "ensure_workflow_blind_oracle",
    "ensure_workflow_oracle",
    "generate_history",
    "joint_oracle_of",
    "load_oracle_table",
    "oracle_of",
    "oracle_path",
    "workflow_blind_oracle_of",
    "workflow_oracle_of",
    "write_benchmark",
]
