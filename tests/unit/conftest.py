"""Make the working tree importable as ``ansible_collections.npu.fleet``.

Unit tests import product code exactly as Ansible does at run time, so a
module_utils import path that works here also works on a target.
"""

import os
import sys

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts"))

from collection_link import link_collection  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS_PATH = link_collection(REPO_ROOT)
