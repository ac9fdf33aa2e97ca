"""Make the working tree importable as ``ansible_collections.npu.fleet``.

Unit tests import product code exactly as Ansible does at run time, so a
module_utils import path that works here also works on a target.
"""

import hashlib
import os
import sys
import tempfile

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _collection_root():
    # One link directory per checkout: two clones tested at once must not
    # re-point each other's link.
    digest = hashlib.sha1(REPO_ROOT.encode("utf-8")).hexdigest()[:10]
    root = os.path.join(tempfile.gettempdir(), "npu-fleet-pytest-collections-" + digest)
    link_dir = os.path.join(root, "ansible_collections", "npu")
    link = os.path.join(link_dir, "fleet")
    os.makedirs(link_dir, exist_ok=True)
    if not os.path.islink(link) or os.path.realpath(link) != REPO_ROOT:
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(REPO_ROOT, link)
    return root


sys.path.insert(0, _collection_root())
