"""``wtc data``: describe, check and generate actions-history files."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from wtc.cli.options import non_negative, positive
from wtc.errors import WtcError


def _describe(args) -> int:
    from wtc.data import load_history
    from wtc.data.describe import describe_history

    summary = describe_history(load_history(args.path))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['path']}")
    print(f"  tasks       {summary['tasks']:>8}  ({summary['labelled']} labelled, {summary['unlabelled']} unlabelled)")
    print(f"  workflows   {summary['workflows']:>8}")
    print(f"  campaigns   {len(summary['campaigns']):>8}  " + ", ".join(list(summary["campaigns"])[:5])
          + (" ..." if len(summary["campaigns"]) > 5 else ""))
    print(f"  task types  {len(summary['task_types']):>8}  "
          + ", ".join(f"{k} {v}" for k, v in summary["task_types"].items()))
    print(f"  statuses    {len(summary['statuses']):>8}  " + ", ".join(summary["statuses"]))
    print(f"  exit codes  {summary['codes']:>8}")
    print(f"  sites       {summary['sites']:>8}")
    print(f"  non-zeros   {summary['nonzeros']:>8}  "
          + ", ".join(f"{k} {v}" for k, v in summary["nonzeros_by_status"].items()))
    print(f"  errors      {summary['total_errors']:>8}")
    for target, counts in summary["classes"].items():
        print(f"  {target}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _check(args) -> int:
    from wtc.data import load_history
    from wtc.data.vocabulary import cms_vocabulary

    # The loader also logs a one-line warning about skipped tasks; this report lists them all.
    logging.getLogger("wtc.data.loader").setLevel(logging.ERROR)
    try:
        history = load_history(args.path, strict=False, use_cache=False)
    except WtcError as exc:
        print(f"FATAL {exc}")
        return 1
    known_codes = set(cms_vocabulary()["exit_codes"])
    unknown_codes = [c for c in history.codes if c not in known_codes]
    extra_statuses = [s for s in history.statuses if s not in ("good", "bad")]
    print(f"{args.path}: {history.n_tasks} valid task(s), {len(history.skipped)} malformed, "
          f"{int((~history.labelled).sum())} unlabelled")
    if extra_statuses:
        print(f"  note: statuses beyond good/bad kept as their own: {', '.join(extra_statuses)}")
    if unknown_codes:
        print(f"  note: {len(unknown_codes)} exit code(s) not in the CMS vocabulary: {', '.join(unknown_codes[:10])}")
    for task, problem in history.skipped[: args.max_problems]:
        field, _, reason = problem.partition(": ")
        print(f"  ERROR {args.path}: task {task!r}: field {field}: {reason or 'invalid'}")
    if len(history.skipped) > args.max_problems:
        # The reasons, without the values that differ from task to task ("got -4", "got -7").
        reasons = Counter(problem.partition(": ")[2].split(", got ", 1)[0] for _, problem in history.skipped)
        print(f"  ... and {len(history.skipped) - args.max_problems} more; every problem by kind:")
        for reason, count in reasons.most_common():
            print(f"    {count:>6}  {reason}")
    return 1 if history.skipped else 0


def _generate(args) -> int:
    import time

    from wtc.data.synthetic import (
        ensure_blind_oracle,
        ensure_workflow_blind_oracle,
        ensure_workflow_oracle,
        oracle_path,
        write_benchmark,
    )
    from wtc.outputs import check_output

    for output in (args.out, oracle_path(args.out), oracle_path(args.out, workflow=True),
                   *([oracle_path(args.out, blind=True), oracle_path(args.out, blind=True, workflow=True)]
                     if args.blind_samples else [])):
        check_output(output, args.force, option="--out" if output == args.out else "--out's oracle")
    start = time.perf_counter()
    path = write_benchmark(args.out, n_tasks=args.tasks, seed=args.seed)
    ensure_workflow_oracle(path)
    print(f"wrote {args.tasks} tasks to {path}, the exact and workflow oracles beside it, in "
          f"{time.perf_counter() - start:.1f} s")
    if args.blind_samples:
        start = time.perf_counter()
        ensure_blind_oracle(path, samples=args.blind_samples)
        print(f"wrote the name-blind oracle ({args.blind_samples} whitelist samples per task) to "
              f"{oracle_path(path, blind=True)} in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        ensure_workflow_blind_oracle(path, samples=args.blind_samples)
        print(f"wrote the name-blind workflow oracle ({args.blind_samples} whitelist samples per workflow) to "
              f"{oracle_path(path, blind=True, workflow=True)} in {time.perf_counter() - start:.1f} s")
    return 0


def add_data(commands) -> None:
    """The ``data`` command and its actions."""
    data = commands.add_parser("data", help="actions-history files", description="Inspect, check and generate "
                               "actions-history files.").add_subparsers(dest="data_command", required=True,
                                                                        metavar="ACTION",
                                                                        help="describe, check or generate")

    describe = data.add_parser(
        "describe", help="tasks, workflows, campaigns, codes, sites, classes",
        description="Summarise an actions-history file: its tasks (labelled or not), workflows, campaigns, task "
                    "types, statuses, exit codes, sites, non-zero counts and the classes of every target. A "
                    "malformed file is one line naming the file, task and field.")
    describe.add_argument("path", type=Path, help="the actions-history JSON file")
    describe.add_argument("--json", action="store_true", help="machine-readable output")
    describe.set_defaults(func=_describe)

    check = data.add_parser(
        "check", help="validation report; exit 1 on problems",
        description="Validate every task of an actions-history file by the loader's rules and report each bad "
                    "task (file, task, field, reason); exit 0 when the file is clean, 1 when any task is refused.")
    check.add_argument("path", type=Path, help="the actions-history JSON file")
    check.add_argument("--max-problems", type=positive, default=20, metavar="N",
                       help="list at most N bad tasks one by one, then count the rest by kind (default: 20)")
    check.set_defaults(func=_check)

    generate = data.add_parser(
        "generate", help="write a synthetic history and its oracles",
        description="Write a synthetic actions history in the WTC console's JSON format (the benchmark every "
                    "run can be scored on), with its oracles beside it: the exact posterior of every label, the "
                    "workflow oracle and, with --blind-samples, the name-blind oracles (per task and per workflow).")
    generate.add_argument("--tasks", type=positive, default=7582, metavar="N",
                          help="number of tasks (default: 7582, the seed study's size)")
    generate.add_argument("--seed", type=int, default=0, help="random seed of the generator (default: 0)")
    generate.add_argument("--out", type=Path, required=True, metavar="PATH",
                          help="the history JSON to write; the oracles are written beside it")
    generate.add_argument("--force", action="store_true", help="write over an existing history and its oracles")
    generate.add_argument("--blind-samples", type=non_negative, default=0, metavar="N",
                          help="also write the name-blind oracle with N whitelist samples per task (32 is the "
                               "bench's; minutes per 10,000 tasks; default 0: leave it out)")
    generate.set_defaults(func=_generate)
