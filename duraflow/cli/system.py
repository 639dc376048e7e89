"""``duraflow metrics``, ``duraflow queues`` and ``duraflow workers list``: the state of the
whole system rather than of one instance (how much is running, how much waits, who works).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from duraflow.cli import output
from duraflow.cli.admin import EXIT_OK, common_options, run_admin

if TYPE_CHECKING:
    from duraflow import AsyncClient, WorkerInfo


def add_parser(sub: Any) -> None:
    common = common_options()
    metrics = sub.add_parser("metrics", parents=[common],
                             help="instance, execution and event counts")
    metrics.set_defaults(func=lambda args: run_admin(show_metrics, args))

    queues = sub.add_parser("queues", parents=[common],
                            help="queue depths, and waiting activities per tag")
    queues.set_defaults(func=lambda args: run_admin(show_queues, args))

    workers = sub.add_parser("workers", help="the worker registry")
    verbs = workers.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", parents=[common], help="runtimes that heartbeat")
    listing.add_argument("--all", action="store_true",
                         help="include runtimes gone for more than three heartbeats")
    listing.set_defaults(func=lambda args: run_admin(list_workers, args))


async def show_metrics(client: AsyncClient, args: argparse.Namespace) -> int:
    m = await client.get_system_metrics()
    data = {
        "total_instances": m.total_instances,
        "running_instances": m.running_instances,
        "completed_instances": m.completed_instances,
        "failed_instances": m.failed_instances,
        "total_executions": m.total_executions,
        "total_events": m.total_events,
    }
    if args.json:
        output.print_json(data)
    else:
        output.print_table(("METRIC", "VALUE"), ((k, str(v)) for k, v in data.items()))
    return EXIT_OK


def _tag_name(tag: str | None) -> str:
    return "(untagged)" if tag is None else tag


async def show_queues(client: AsyncClient, args: argparse.Namespace) -> int:
    depths = await client.get_queue_depths()
    backlog = await client.get_activity_backlog()
    data: dict[str, Any] = {
        "orchestrator_queue": depths.orchestrator_queue,
        "worker_queue": depths.worker_queue,
        "timer_queue": depths.timer_queue,
        # JSON keys are strings: untagged activities appear under "" (no tag).
        "activity_backlog": {"" if tag is None else tag: n
                             for tag, n in sorted(backlog.items(), key=lambda kv: kv[0] or "")},
    }
    if args.json:
        output.print_json(data)
        return EXIT_OK
    output.print_table(("QUEUE", "DEPTH"), [
        ("orchestrator", str(depths.orchestrator_queue)),
        ("worker", str(depths.worker_queue)),
        ("timer", str(depths.timer_queue)),
    ])
    if backlog:
        print()
        output.print_table(
            ("TAG", "ACTIVITIES WAITING"),
            ((_tag_name(tag), str(n))
             for tag, n in sorted(backlog.items(), key=lambda kv: kv[0] or "")),
            title="Activity backlog",
        )
    return EXIT_OK


def _tags(worker: WorkerInfo) -> str:
    if worker.tag_filter in ("tags", "default_and"):
        tags = ",".join(worker.tags)
        return tags + ("+untagged" if worker.tag_filter == "default_and" else "")
    return {"default_only": "(untagged)", "any": "(any)", "none": "(none)"}.get(
        worker.tag_filter, worker.tag_filter)


def _orchestrations(worker: WorkerInfo) -> str:
    return ", ".join(f"{name}@{'/'.join(versions)}" if versions else name
                     for name, versions in sorted(worker.orchestrations.items()))


async def list_workers(client: AsyncClient, args: argparse.Namespace) -> int:
    workers = await client.list_workers(include_gone=args.all)
    if args.json:
        output.print_json([w.to_dict() for w in workers])
        return EXIT_OK
    if not workers:
        print("no live workers" if not args.all else "no workers recorded")
        return EXIT_OK
    output.print_table(
        ("WORKER NODE", "ALIVE", "BUILD", "HOST", "PID", "TAGS", "SESSIONS", "CONCURRENCY (O/A)",
         "LAST SEEN (UTC)", "ORCHESTRATIONS", "ACTIVITIES"),
        ((w.worker_node_id, "yes" if w.alive else "no", w.build_id or "-", w.host, str(w.pid),
          _tags(w),
          f"{w.sessions_held}/{w.max_sessions}",
          f"{w.orchestration_concurrency}/{w.worker_concurrency}",
          output.when(w.last_seen_at_ms), output.clip(_orchestrations(w)),
          output.clip(", ".join(w.activities)))
         for w in workers),
    )
    return EXIT_OK
