# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make a checkout importable as ``ansible_collections.npu.fleet``.

Unit tests, benchmarks and doc generators import product code exactly as
Ansible does at run time. The link lives in the temp directory, one per
checkout (two clones tested at once must not re-point each other's link).
"""

import hashlib
import os
import sys
import tempfile

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def link_collection(root=REPO_ROOT):
    """Create (or re-point) the link and put its base first on sys.path; return the base."""
    digest = hashlib.sha1(root.encode("utf-8")).hexdigest()[:10]
    base = os.path.join(tempfile.gettempdir(), "npu-fleet-collections-" + digest)
    link_dir = os.path.join(base, "ansible_collections", "npu")
    link = os.path.join(link_dir, "fleet")
    os.makedirs(link_dir, exist_ok=True)
    if not os.path.islink(link) or os.path.realpath(link) != root:
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(root, link)
    if base not in sys.path:
        sys.path.insert(0, base)
    return base


def import_module_util(name, root=REPO_ROOT):
    """``plugins/module_utils/<name>.py`` imported under its FQCN, as Ansible imports it (for scripts)."""
    import importlib  # pylint: disable=import-outside-toplevel

    link_collection(root)
    return importlib.import_module("ansible_collections.npu.fleet.plugins.module_utils." + name)
