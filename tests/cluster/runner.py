"""A worker process for the multi-process tests, with any ``RuntimeOptions``.

``python -m tests.cluster.runner URL SCHEMA OPTIONS_JSON`` registers ``tests.cluster.app``'s
handlers, prints ``ready`` once started and runs until SIGTERM (graceful) or SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from duraflow.providers.factory import open_provider
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.runtime import AsyncRuntime
from tests.cluster.app import register, register_sessions


async def main(url: str, schema: str, options: str) -> None:
    provider = await open_provider(url, schema or None)
    runtime = AsyncRuntime(provider, RuntimeOptions(**json.loads(options)))
    register(runtime)
    register_sessions(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    print(f"worker {runtime.worker_node_id} ready", flush=True)
    await stop.wait()
    await runtime.shutdown(5_000)
    await provider.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
