"""The browser tier's worker: a real worker process with the no-op adapters, except that the
configuration step (a test double at the Ansible boundary) fails the first run of each operation
on a site whose name starts with `broken`, so an operator has a failed operation to retry in
the console; the retry succeeds.

    python -m tests.browser.worker      (TONLE_DATABASE_URL and TONLE_NOOP_STEP_SECONDS set)
"""

import os

from orchestrator import logs
from orchestrator.bootstrap import bootstrap, noop_adapters
from orchestrator.config import get_settings
from orchestrator.jobs import queue
from orchestrator.jobs.worker import run_worker
from orchestrator.noop import NoopConfigRunner
from orchestrator.ports import EventSink, PlaybookResult, PlaybookRun, ProgressEvent

BROKEN_SITE_PREFIX = "broken"


class FailsOnceForBrokenSites(NoopConfigRunner):
    """Fails the first configuration run of each operation on a `broken*` site; runs nothing."""

    def __init__(self) -> None:
        self.failed_once: set[str] = set()

    def run(self, run: PlaybookRun, on_event: EventSink) -> PlaybookResult:
        name = str(run.extra_vars.get("parameters", {}).get("name", ""))
        if name.startswith(BROKEN_SITE_PREFIX) and run.label not in self.failed_once:
            self.failed_once.add(run.label)
            on_event(
                ProgressEvent(
                    type="ansible.task",
                    message="TASK [web : install nginx] FAILED: the package mirror did not answer",
                    level="error",
                )
            )
            return PlaybookResult(ok=False, failures=["web : install nginx"])
        return super().run(run, on_event)


def main() -> None:
    settings = get_settings()
    logs.configure(settings.log_level)
    app = bootstrap(settings)
    queue.set_adapters(noop_adapters(settings, config=FailsOnceForBrokenSites()))
    run_worker(app, concurrency=4, name=f"browser-tests-worker-{os.getpid()}")


if __name__ == "__main__":
    main()
