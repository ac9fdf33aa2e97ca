"""gunicorn settings for the npu.fleet Transformers server.

One worker (one model per process), gunicorn's gthread worker with a read
stage that buffers each request whole before a thread sees it
(``npu_fleet_server/worker.py``): threads serve concurrent requests, and a
slow or half-open client never holds one. gevent/eventlet must not be used on
Ascend (their monkey-patching breaks CANN's compiler subprocesses). Values
come from the same NPU_SERVE_* variables the app reads.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from npu_fleet_server.worker import WholeRequestThreadWorker  # noqa: E402  (after the path above)

worker_class = WholeRequestThreadWorker
workers = 1
threads = int(os.environ.get("NPU_SERVE_THREADS") or 4)
timeout = int(os.environ.get("NPU_SERVE_TIMEOUT") or 600)
graceful_timeout = 30
keepalive = 5
bind = ["%s:%s" % (os.environ.get("NPU_SERVE_HOST") or "0.0.0.0", os.environ.get("NPU_SERVE_PORT") or "8000")]
accesslog = None
errorlog = "-"
loglevel = "info"
wsgi_app = "npu_fleet_server.wsgi:app"
# gunicorn 25+ opens a control socket under ~/.gunicorn; one server per
# container does not need it (older releases ignore this name).
control_socket_disable = True
