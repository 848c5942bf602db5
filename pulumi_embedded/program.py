"""Runs an unmodified Pulumi program in-process against our monitor, isolated from other runs.

The SDK keeps its settings, config and root resource in ContextVars. Each run gets its own
thread, a fresh `contextvars.Context()` and its own event loop and executor, so several stacks
can run at once in one process without seeing each other's SDK state (the sequence follows
`pulumi.automation._server.LanguageServer.Run`).
"""

import asyncio
import contextlib
import contextvars
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pulumi.runtime import run_in_stack, set_all_config
from pulumi.runtime.settings import Settings, configure

# The SDK's own language host silences this: failed registrations are reported through the
# program's error, and asyncio would log each one again as "exception was never retrieved".
logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def config_strings(config: dict[str, Any]) -> dict[str, str]:
    """Stack config as the SDK wants it: strings, objects and lists as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def run(
    program: Callable[[], None],
    *,
    monitor: Any,
    engine: Any,
    project: str,
    stack: str,
    config: dict[str, Any],
    secret_keys: list[str],
    preview: bool,
    parallel: int,
) -> None:
    """Run `program` to completion in its own thread; re-raise what it raised."""
    failure: list[BaseException] = []

    def body() -> None:
        configure(
            Settings(
                project=project,
                stack=stack,
                monitor=monitor,
                engine=engine,
                parallel=parallel,
                dry_run=preview,
                organization="organization",
                root_directory=None,
            )
        )
        set_all_config(config_strings(config), secret_keys)
        loop = asyncio.new_event_loop()
        # As the SDK's own language host: 4 threads per allowed step, so registrations waiting for a
        # step slot never starve the SDK's other calls (invokes, outputs) of threads.
        executor = ThreadPoolExecutor(max_workers=max(parallel, 1) * 4, thread_name_prefix=f"tonle-{stack}")
        loop.set_default_executor(executor)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(run_in_stack(program))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            failure.append(exc)
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(task)
            loop.close()
            # Registrations already in a cloud call finish and record their step before we return.
            executor.shutdown(wait=True)

    def thread_main() -> None:
        contextvars.Context().run(body)

    thread = threading.Thread(target=thread_main, name=f"tonle-program-{stack}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
