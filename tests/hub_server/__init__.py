"""A local model hub for tests: the HTTP API of the Hugging Face Hub and of ModelScope, on loopback.

TEST EQUIPMENT ONLY (never shipped in the collection). See ``server.py`` for
the exact API, ``checkpoints.py`` for the tiny repositories it serves and
``__main__.py`` for running it as a process (Molecule, the demo).
"""

from .checkpoints import NOT_FETCHED_BY_DEFAULT, SERVING_FILES, write_tiny_repo
from .repos import Repo, RepoFile
from .server import HubServer

__all__ = ["HubServer", "NOT_FETCHED_BY_DEFAULT", "Repo", "RepoFile", "SERVING_FILES", "write_tiny_repo"]
