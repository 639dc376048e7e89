"""``duraflow builds list | promote | drain`` and ``duraflow instances move ID --build B``: a
rollout by hand (docs/rollouts.md).

``builds list`` answers "which code is live, and what still needs the old one": each build's
state, its live workers and the running executions pinned to it. ``promote`` makes a build
current (the previous one drains; promoting the old build again is a rollback), ``drain``
stops a build from taking new work, ``instances move`` re-pins one running instance (an
operator's override, e.g. to rescue instances from a bad build). A build no runtime ever
registered is exit 3, like an unknown instance.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from duraflow import UnknownBuildError
from duraflow.cli import output
from duraflow.cli.admin import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    common_options,
    done,
    fail,
    require_instance,
    run_admin,
)

if TYPE_CHECKING:
    from duraflow import AsyncClient, BuildInfo


def add_parser(sub: Any) -> None:
    common = common_options()
    builds = sub.add_parser("builds", help="builds of the code: list, promote, drain")
    verbs = builds.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", parents=[common],
                               help="builds with their state, live workers and pinned work")
    listing.set_defaults(func=lambda args: run_admin(list_builds, args))
    promote = verbs.add_parser("promote", parents=[common],
                               help="make a build current (the current one drains)")
    promote.add_argument("build_id", metavar="BUILD")
    promote.set_defaults(func=lambda args: run_admin(promote_build, args))
    drain = verbs.add_parser("drain", parents=[common],
                             help="a build takes nothing new and finishes what it has")
    drain.add_argument("build_id", metavar="BUILD")
    drain.set_defaults(func=lambda args: run_admin(drain_build, args))


def add_move_parser(verbs: Any, common: argparse.ArgumentParser) -> None:
    """``instances move``: added to the ``instances`` command by ``instances.add_parser``."""
    move = verbs.add_parser("move", parents=[common],
                            help="pin a running instance to another build (no replay check)")
    move.add_argument("instance_id", metavar="ID")
    move.add_argument("--build", required=True, metavar="BUILD", dest="build_id",
                      help="the build that runs it from now on")
    move.set_defaults(func=lambda args: run_admin(move_instance, args))


def build_dict(build: BuildInfo) -> dict[str, Any]:
    return build.to_dict()


def _row(build: BuildInfo) -> tuple[str, ...]:
    return (build.build_id, build.state, str(build.live_workers), str(build.pinned_running),
            output.when(build.first_seen_at))


async def list_builds(client: AsyncClient, args: argparse.Namespace) -> int:
    builds = await client.list_builds()
    if args.json:
        output.print_json([build_dict(b) for b in builds])
    elif not builds:
        print("no builds: no runtime with a build id has started on this store")
    else:
        output.print_table(("BUILD", "STATE", "LIVE WORKERS", "PINNED RUNNING",
                            "FIRST SEEN (UTC)"), (_row(b) for b in builds))
        waiting = [b for b in builds if b.pinned_running and not b.live_workers]
        for build in waiting:
            print(f"build {build.build_id}: {build.pinned_running} running execution(s) wait "
                  "for a live worker of this build")
    return EXIT_OK


async def _known(client: AsyncClient, call: Any) -> None:
    """Run a build operation; an unknown build is exit 3."""
    try:
        await call
    except UnknownBuildError as exc:
        fail(EXIT_NOT_FOUND, exc.message)


async def _states(client: AsyncClient) -> dict[str, str]:
    return {b.build_id: b.state for b in await client.list_builds()}


async def promote_build(client: AsyncClient, args: argparse.Namespace) -> int:
    before = await _states(client)
    await _known(client, client.set_current_build(args.build_id))
    drained = [b for b, state in before.items() if state == "current" and b != args.build_id]
    message = f"build {args.build_id} is current" + (
        f"; {', '.join(drained)} draining" if drained else "")
    return done(args, {"build_id": args.build_id, "action": "promote", "state": "current",
                        "draining": drained}, message)


async def drain_build(client: AsyncClient, args: argparse.Namespace) -> int:
    await _known(client, client.drain_build(args.build_id))
    state = (await _states(client)).get(args.build_id, "draining")
    return done(args, {"build_id": args.build_id, "action": "drain", "state": state},
                 f"build {args.build_id} is {state}")


async def move_instance(client: AsyncClient, args: argparse.Namespace) -> int:
    await require_instance(client, args.instance_id)
    before = (await client.get_instance_info(args.instance_id)).build_id
    await _known(client, client.move_instance(args.instance_id, args.build_id))
    return done(args, {"instance_id": args.instance_id, "action": "move",
                        "from_build": before, "build_id": args.build_id},
                 f"{args.instance_id} moved from build {before or '(none)'} to "
                 f"{args.build_id}")
