"""Fixtures and helpers for the hub-source tests: tiny repositories and the local hub (tests/hub_server) serving them.

Every test gets its own HubServer on a free loopback port, with three repositories:

* ``tiny/qwen3``: public, two ~108 KB shards (fast; most tests);
* ``tiny/private``: the same files, private, readable with TOKEN only;
* ``tiny/big``: two ~18 MiB shards, larger than huggingface_hub's 10 MiB read
  chunk, so that an interruption leaves bytes to resume from.

The real clients are pointed at it; their caches are redirected into the test's
temporary directory so nothing outside it is read or written.

Not a conftest.py: tests elsewhere import names from the top conftest
(``from conftest import REPO_ROOT``), which a second conftest module would
shadow. Each test module imports the fixtures from here; they are defined as
``*_fixture`` with ``name=`` so that a test's argument does not shadow the import.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from hub_server import HubServer, write_tiny_repo  # tests/ is on pytest's pythonpath (pyproject.toml)

# A token shaped like a real one, so a leak would be found by the grep in the tests.
TOKEN = "hf_TestTokenDoNotLeak0123456789abcdef"
WRONG_TOKEN = "hf_WrongTokenMustNotAppear98765432"
# huggingface_hub reads a body in 10 MiB chunks (constants.DOWNLOAD_CHUNK_SIZE): a cut after 12 MiB leaves 10 MiB written.
HF_CHUNK = 10 * 1024 * 1024
BIG_SHARD = "model-00001-of-00002.safetensors"


@pytest.fixture(scope="session", name="repos")
def repos_fixture(tmp_path_factory):
    """Directories of the three repositories, written once per session: {"small": path, "big": path}."""
    base = tmp_path_factory.mktemp("hub-repos")
    small = str(base / "tiny-qwen3")
    big = str(base / "tiny-big")
    write_tiny_repo(small, seed=1)
    write_tiny_repo(big, seed=2, hidden=1024, extras=False)
    return {"small": small, "big": big}


@pytest.fixture(autouse=True, name="isolated_clients")
def isolated_clients_fixture(tmp_path, monkeypatch):
    """The clients' caches and token files under the test's tmp_path; no progress bars; no proxies."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
    monkeypatch.setenv("MODELSCOPE_CREDENTIALS_PATH", str(tmp_path / "ms-credentials"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "MODELSCOPE_API_TOKEN", "MODELSCOPE_ENDPOINT", "MODELSCOPE_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(name="hub")
def hub_fixture(repos):
    """A running local hub with tiny/qwen3, tiny/private (TOKEN) and tiny/big."""
    server = HubServer()
    server.add_repo("tiny/qwen3", repos["small"], refs=["v1.0"])
    server.add_repo("tiny/private", repos["small"], private=True, tokens=[TOKEN])
    server.add_repo("tiny/big", repos["big"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree(path):
    """Relative paths of the files under ``path``, hidden directories (the clients' state) left out."""
    out = []
    for root, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.extend(os.path.relpath(os.path.join(root, n), path).replace(os.sep, "/") for n in names)
    return sorted(out)


def all_text(path):
    """Every byte under ``path`` as text (to grep for a token)."""
    chunks = []
    for root, _dirs, names in os.walk(path):
        for name in names:
            with open(os.path.join(root, name), "rb") as handle:
                chunks.append(handle.read().decode("utf-8", "replace"))
    return "\n".join(chunks)
