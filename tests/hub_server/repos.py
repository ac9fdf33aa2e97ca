"""Repositories the local hub serves: a directory of files, one fixed commit, optional privacy.

TEST EQUIPMENT ONLY. Each repository is a directory on disk; its files are
hashed once when the repository is added (sha256 for everything, the git blob
sha1 that the Hugging Face Hub reports as ``blobId``/``oid``), and they are
classified as LFS the way a Hub repository's default ``.gitattributes``
classifies them (weights and large files), because the Hub answers LFS files
and regular files differently (``lfs`` block, ETag = sha256, redirect to a CDN).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

# Extensions the Hub's default .gitattributes stores in LFS (a subset of the real list), and its size rule.
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".msgpack",
    ".onnx",
    ".gguf",
    ".model",
    ".tiktoken",
    ".npz",
    ".zip",
)
LFS_MIN_SIZE = 10 * 1024 * 1024
# Size of an LFS pointer file ("version ...\noid sha256:...\nsize ...\n"), which the Hub reports as pointerSize.
POINTER_SIZE = 134
SKIPPED_DIRS = (".git", ".cache")


@dataclass
class RepoFile:
    """One file of a repository, with the digests the Hub reports for it."""

    path: str  # relative, '/'-separated
    local: str  # absolute path on disk
    size: int
    sha256: str
    git_sha1: str  # sha1 of "blob <size>\\0<content>", the Hub's blobId / oid of a regular file
    lfs: bool

    @property
    def etag(self) -> str:
        """What the Hub sends as the (linked) ETag: the sha256 for LFS files, the git blob sha1 otherwise."""
        return self.sha256 if self.lfs else self.git_sha1


@dataclass
class Repo:
    """A model repository at one commit.

    ``tokens``: bearer tokens that may read it; a private repository refuses
    every other caller. ``refs``: branch and tag names that resolve to the
    commit (``main`` and ``master`` always do: the first is the Hugging Face
    default branch, the second ModelScope's).
    """

    repo_id: str
    root: str
    commit: str = ""
    private: bool = False
    tokens: List[str] = field(default_factory=list)
    refs: List[str] = field(default_factory=list)
    files: Dict[str, RepoFile] = field(default_factory=dict)

    def __post_init__(self):
        if self.repo_id.count("/") != 1:
            raise ValueError("repo id %r: expected owner/name" % self.repo_id)
        self.rescan()

    def rescan(self) -> None:
        """Hash the directory again (after a test changed a file on purpose)."""
        self.files = {entry.path: entry for entry in _scan(self.root)}
        if not self.commit:
            digest = hashlib.sha1()
            for path in sorted(self.files):
                digest.update(("%s %s\n" % (path, self.files[path].sha256)).encode("utf-8"))
            self.commit = digest.hexdigest()
        self.refs = sorted(set(list(self.refs) + ["main", "master"]))

    def resolve(self, revision: Optional[str]) -> Optional[str]:
        """The commit a revision names, or None when the repository has no such revision."""
        if revision in (None, "", self.commit) or revision in self.refs:
            return self.commit
        return None

    def directories(self) -> List[str]:
        """Every directory that holds a file, '/'-separated, parents first."""
        seen = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                seen.add("/".join(parts[:depth]))
        return sorted(seen)

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files.values())


def _scan(root: str) -> Iterable[RepoFile]:
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS)
        for name in sorted(names):
            local = os.path.join(directory, name)
            rel = os.path.relpath(local, root).replace(os.sep, "/")
            yield hash_file(rel, local)


def hash_file(rel: str, local: str) -> RepoFile:
    """A RepoFile with both digests, read in one pass."""
    size = os.path.getsize(local)
    sha256 = hashlib.sha256()
    git = hashlib.sha1(b"blob %d\0" % size)
    with open(local, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(block)
            git.update(block)
    lfs = rel.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE
    return RepoFile(path=rel, local=local, size=size, sha256=sha256.hexdigest(), git_sha1=git.hexdigest(), lfs=lfs)
