"""The ``wtc`` command line: inspect, check and generate actions histories."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path

from wtc.data.history import HistoryError


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

    try:
        history = load_history(args.path, strict=False, use_cache=False)
    except HistoryError as exc:
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
    reasons = Counter(reason.split(":", 1)[0] for _, reason in history.skipped)
    for task, reason in history.skipped[: args.max_problems]:
        print(f"  ERROR {args.path}: task {task!r}: {reason}")
    if len(history.skipped) > args.max_problems:
        print(f"  ... and {len(history.skipped) - args.max_problems} more; by field: {dict(reasons)}")
    return 1 if history.skipped else 0


def _generate(args) -> int:
    import time

    from wtc.data.synthetic import write_benchmark

    start = time.perf_counter()
    path = write_benchmark(args.out, n_tasks=args.tasks, seed=args.seed)
    print(f"wrote {args.tasks} tasks to {path} (oracle beside it) in {time.perf_counter() - start:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wtc", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="actions-history files").add_subparsers(dest="data_command", required=True)

    describe = data.add_parser("describe", help="tasks, workflows, campaigns, codes, sites, classes")
    describe.add_argument("path", type=Path)
    describe.add_argument("--json", action="store_true", help="machine-readable output")
    describe.set_defaults(func=_describe)

    check = data.add_parser("check", help="validation report; exit 1 on problems")
    check.add_argument("path", type=Path)
    check.add_argument("--max-problems", type=int, default=20)
    check.set_defaults(func=_check)

    generate = data.add_parser("generate", help="write a synthetic history and its exact oracle")
    generate.add_argument("--tasks", type=int, default=7582)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out", type=Path, required=True)
    generate.set_defaults(func=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wtc`` console script; errors are one line, never a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
