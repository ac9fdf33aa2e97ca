"""Fixtures for the Transformers server: a tiny checkpoint and the real server under gunicorn."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tiny_models import build_looping_model, build_vision_model  # this directory and SERVER_DIR are on pytest's pythonpath (pyproject.toml)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SERVER_DIR = os.path.join(REPO, "roles", "serve", "files", "transformers_server")

API_KEY = "test-key-9f8e7d"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningServer:
    """A gunicorn process serving one model on a loopback port, with its log file."""

    def __init__(self, env, log_path):
        self.port = free_port()
        self.base_url = "http://127.0.0.1:%d" % self.port
        self.log_path = log_path
        full_env = dict(os.environ)
        full_env.update({"NPU_SERVE_HOST": "127.0.0.1", "NPU_SERVE_PORT": str(self.port), "PYTHONUNBUFFERED": "1"})
        full_env.update(env)
        self._log = open(log_path, "wb")  # pylint: disable=consider-using-with
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        self.process = subprocess.Popen(
            [gunicorn, "-c", "gunicorn.conf.py"],
            cwd=SERVER_DIR,
            env=full_env,  # pylint: disable=consider-using-with
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def wait_ready(self, timeout=120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("server exited with %s:\n%s" % (self.process.returncode, self.log()))
            try:
                if requests.get(self.base_url + "/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet, or still importing torch
                pass
            time.sleep(0.2)
        raise AssertionError("server not healthy after %.0f s:\n%s" % (timeout, self.log()))

    def wait_exit(self, timeout=120.0) -> int:
        return self.process.wait(timeout)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()

    def metric(self, name, **labels) -> float:
        """One sample from /metrics, 0 when the series does not exist yet."""
        text = requests.get(self.base_url + "/metrics", timeout=10).text
        wanted = name + ("{%s}" % ",".join('%s="%s"' % item for item in sorted(labels.items())) if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0


@pytest.fixture(scope="session")
def looping_model(tmp_path_factory):
    return build_looping_model(str(tmp_path_factory.mktemp("looping-model")))


@pytest.fixture(scope="session")
def vision_model(tmp_path_factory):
    return build_vision_model(str(tmp_path_factory.mktemp("vision-model")))


@pytest.fixture(scope="session")
def start_server(tmp_path_factory):
    started = []

    def start(env, wait=True):
        log_path = str(tmp_path_factory.mktemp("server-log") / "server.log")
        server = RunningServer(env, log_path)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server, looping_model):
    """The server most tests use: API key on, 2 generation slots, a queue of 1."""
    return start_server(
        {
            "NPU_SERVE_MODEL": looping_model.path,
            "NPU_SERVE_SERVED_MODEL_NAME": "tiny-loop",
            "NPU_SERVE_API_KEY": API_KEY,
            "NPU_SERVE_THREADS": "6",
            "NPU_SERVE_MAX_CONCURRENT": "2",
            "NPU_SERVE_MAX_QUEUE": "1",
            "NPU_SERVE_QUEUE_TIMEOUT": "60",
            "NPU_SERVE_MAX_MODEL_LEN": "16384",
        }
    )


@pytest.fixture()
def auth():
    return {"Authorization": "Bearer " + API_KEY}
