"""Entry point that runs INSIDE Designate's own venv (copied there as `tonle_designate_shim`).

`devcloud.dns` never imports Designate; it starts every Designate process as

    <dns-venv>/bin/python -m tonle_designate_shim <command> ...

so that these happen before Designate's own code runs:

1. The serial fix (see `_patch_serial`). Designate 23.0.0 sets a zone's new serial to the
   current Unix time. Two changes to one zone in the same second therefore leave the serial
   unchanged, BIND sees no newer SOA, never transfers the zone again, and the later record
   sets silently never appear in DNS. We make the serial `max(now, old + 1)`, the rule
   RFC 1982 serial arithmetic expects. The patch is applied in every process (cheap) and
   refuses to run against a Designate whose storage no longer has the method we replace.

2. oslo.service's threading backend is chosen before anything picks eventlet (`_use_threads`),
   and each service runs in this one process, without the forking launcher
   (`_run_service`).

3. The API is served by a small threaded WSGI server from the stdlib: Designate 23 deprecated
   its eventlet `designate-api` and expects uWSGI, which needs a C build we do not want here.
   oslo.config reads `sys.argv`, so our own arguments are cleared before the app is loaded.

Commands:
    run <service> <designate.conf>          central|worker|mdns|producer
    api <config dir> <host> <port>          serve the API (config dir holds designate.conf
                                            and api-paste.ini)
    consumers <transport url> <queue>       print the consumer count of a RabbitMQ queue
    sql <sqlalchemy url> <statement>...     run statements (used to create the DB user)

This file is deliberately standalone (stdlib + what the venv has); it is type-checked with the
rest of `devcloud.dns`, with Designate's modules untyped.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from typing import Any

EXPECTED_DESIGNATE = "23.0.0"
#: Seconds a stopping service gets to finish in-flight work before the process exits.
STOP_TIMEOUT = 3.0
LOG = logging.getLogger("tonle_designate_shim")


def _use_threads() -> None:
    """Select oslo.service's threading backend before anything touches oslo.service.

    Designate's own `designate.cmd` does this on import, but the serial fix imports Designate's
    storage first, and the first use of oslo.service then picks its default, eventlet. Without
    monkey-patching, a blocking accept() in mini-DNS then starves its UDP handler: BIND's
    SOA queries get no answer and zones never transfer.
    """
    from oslo_service import backend  # type: ignore[import-not-found,unused-ignore]

    backend.init_backend(backend.BackendType.THREADING)


def _patch_serial() -> None:
    from importlib.metadata import version

    from designate.storage import sql  # type: ignore[import-not-found,unused-ignore]
    from designate.storage import sqlalchemy as storage  # type: ignore[import-not-found,unused-ignore]
    from designate.storage.sqlalchemy import tables  # type: ignore[import-not-found,unused-ignore]
    from oslo_utils import timeutils  # type: ignore[import-not-found,import-untyped,unused-ignore]
    from sqlalchemy import case, select  # type: ignore[import-not-found,unused-ignore]

    found = version("designate")
    if found != EXPECTED_DESIGNATE:
        # The fix replaces a private method; on another release it may be wrong or needless.
        raise SystemExit(
            f"tonle shim: Designate {found} installed, the serial fix was written for "
            f"{EXPECTED_DESIGNATE}; check designate/storage/sqlalchemy increment_serial "
            "and update devcloud/dns/shim.py"
        )
    if not hasattr(storage.SQLAlchemyStorage, "increment_serial"):
        raise SystemExit("tonle shim: SQLAlchemyStorage.increment_serial is gone; update the shim")

    zones = tables.zones

    def increment_serial(self: Any, context: Any, zone_id: str) -> int:
        now = timeutils.utcnow_ts()
        # One UPDATE, so two writers can never both compute the same "old + 1"; central also
        # holds its per-zone lock around this call.
        bumped = case((zones.c.serial >= now, zones.c.serial + 1), else_=now)
        with sql.get_write_session() as session:
            session.execute(
                zones.update().where(zones.c.id == zone_id).values({"serial": bumped, "increment_serial": False})
            )
            new_serial = int(session.execute(select(zones.c.serial).where(zones.c.id == zone_id)).scalar_one())
        LOG.debug(
            "Incremented zone serial for %s to %d (max(now, old+1))",
            zone_id,
            new_serial,
        )
        return new_serial

    storage.SQLAlchemyStorage.increment_serial = increment_serial
    print(
        "tonle shim: zone serial fix active: serial = max(now, old + 1)",
        file=sys.stderr,
    )


def _run_service(service: str, conf: str) -> None:
    """Run one Designate service in this process, as `designate.cmd.<service>.main()` would,
    minus oslo.service's launcher: with the threading backend that launcher always forks a
    cotyledon master plus one worker, ~55 MiB of idle master per service. SIGTERM/SIGINT stop
    the service gracefully (devcloud's supervisor SIGKILLs after its timeout)."""
    if service not in {"central", "worker", "mdns", "producer"}:
        raise SystemExit(f"tonle shim: unknown service {service!r}")
    _use_threads()
    _patch_serial()
    # designate.cmd sets Designate's log-level defaults on import, as its own commands do.
    import designate.cmd  # type: ignore[import-not-found,unused-ignore]
    import designate.conf  # type: ignore[import-not-found,unused-ignore]
    from designate import rpc, utils, version  # type: ignore[import-not-found,unused-ignore]
    from oslo_log import log as oslo_logging  # type: ignore[import-not-found,unused-ignore]
    from oslo_reports import guru_meditation_report as gmr  # type: ignore[import-not-found,unused-ignore]
    from oslo_reports import opts as gmr_opts  # type: ignore[import-not-found,unused-ignore]

    conf_obj = designate.conf.CONF
    utils.read_config("designate", [f"designate-{service}", "--config-file", conf])
    oslo_logging.setup(conf_obj, "designate")
    gmr_opts.set_defaults(conf_obj)
    # `kill -USR2 <pid>` writes a thread dump to the log, as with Designate's own commands.
    gmr.TextGuruMeditation.setup_autorun(version, conf=conf_obj)

    server = importlib.import_module(f"designate.{service}.service").Service()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    stop.wait()

    def shutdown() -> None:
        server.stop()
        rpc.cleanup()

    # A graceful stop, but bounded: Designate's executor threads are not daemons and can
    # keep the interpreter alive long after the service stopped.
    stopper = threading.Thread(target=shutdown, daemon=True)
    stopper.start()
    stopper.join(STOP_TIMEOUT)
    print(f"tonle shim: designate-{service} stopped", file=sys.stderr, flush=True)
    os._exit(0)


def _serve_api(config_dir: str, host: str, port: int) -> None:
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    _use_threads()
    _patch_serial()
    os.environ["OS_DESIGNATE_CONFIG_DIR"] = config_dir
    # oslo.config would otherwise try to parse our own arguments as its options.
    sys.argv = ["designate-api"]
    from designate.api import wsgi  # type: ignore[import-not-found,unused-ignore]

    app = wsgi.init_application()

    class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        allow_reuse_address = True

    class Handler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"api {self.address_string()} {format % args}\n")

    server = make_server(host, port, app, server_class=ThreadingServer, handler_class=Handler)
    print(f"tonle shim: Designate API listening on http://{host}:{port}/", file=sys.stderr)
    server.serve_forever()


def _consumers(transport_url: str, queue: str) -> None:
    """Print how many consumers `queue` has (0 if it does not exist yet)."""
    import kombu  # type: ignore[import-not-found,unused-ignore]

    url = transport_url.replace("rabbit://", "amqp://", 1)
    with kombu.Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        try:
            # passive: only look, never create a queue the service would declare differently
            _, _, consumers = channel.queue_declare(queue=queue, passive=True)
        except Exception as exc:  # amqp raises NotFound (404) for a missing queue
            if "NOT_FOUND" in str(exc) or "404" in str(exc):
                print(0)
                return
            raise
        print(consumers)


def _sql(url: str, statements: list[str]) -> None:
    import sqlalchemy  # type: ignore[import-not-found,unused-ignore]

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sqlalchemy.text(statement))


def _quiet_deprecations() -> None:
    """Libraries' deprecation notices (eventlet's alone is ten lines) open every log with a
    screenful nobody running devcloud can act on; keep the logs for what matters."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def main(argv: list[str]) -> None:
    _quiet_deprecations()
    if not argv:
        raise SystemExit(__doc__)
    command, args = argv[0], argv[1:]
    if command == "run" and len(args) == 2:
        _run_service(args[0], args[1])
    elif command == "api" and len(args) == 3:
        _serve_api(args[0], args[1], int(args[2]))
    elif command == "consumers" and len(args) == 2:
        _consumers(args[0], args[1])
    elif command == "sql" and len(args) >= 2:
        _sql(args[0], args[1:])
    else:
        raise SystemExit(f"tonle shim: bad arguments {argv!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
