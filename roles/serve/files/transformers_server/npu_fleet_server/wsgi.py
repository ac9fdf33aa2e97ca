"""gunicorn entry point: ``gunicorn -c gunicorn.conf.py npu_fleet_server.wsgi:app``.

The model loads in a background thread so /health can answer 503 "loading"
meanwhile. If loading fails the worker exits with gunicorn's boot-error code,
which stops the whole server: the container exits with the reason as its last
log lines instead of restarting a worker that can never load.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback

from .app import Server
from .engine import Engine
from .settings import SettingsError, from_env

WORKER_BOOT_ERROR = 3  # gunicorn's Arbiter.WORKER_BOOT_ERROR: the arbiter halts instead of respawning

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
LOG = logging.getLogger("npu_fleet_server")

for _patcher in ("gevent", "eventlet"):
    if _patcher in sys.modules:
        raise SettingsError(
            "%s is loaded: run this server with gunicorn's gthread worker (-k gthread); %s's monkey-patching "
            "breaks the subprocesses CANN's compiler starts" % (_patcher, _patcher)
        )


def _load(engine: Engine) -> None:
    try:
        engine.load()
    except BaseException as exc:  # pylint: disable=broad-except
        engine.state = "failed"
        engine.error = "%s: %s" % (type(exc).__name__, exc)
        LOG.error("model load failed, stopping the server: %s\n%s", engine.error, traceback.format_exc())
        logging.shutdown()
        os._exit(WORKER_BOOT_ERROR)  # pylint: disable=protected-access


settings = from_env()
if settings.debug:
    LOG.setLevel(logging.DEBUG)
engine = Engine(settings)
server = Server(settings, engine)
app = server.app
threading.Thread(target=_load, args=(engine,), name="load-model", daemon=True).start()
