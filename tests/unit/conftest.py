"""Make the working tree importable as ``ansible_collections.npu.fleet``.

Unit tests import product code exactly as Ansible does at run time, so a
module_utils import path that works here also works on a target.
"""

import os

from collection_link import link_collection  # scripts/ is on pytest's pythonpath (pyproject.toml)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS_PATH = link_collection(REPO_ROOT)


def _import_torch_before_ansible():
    """torch._dynamo refuses to load once ansible-core has replaced ``sys.intern``.

    At import, dynamo registers a polyfill for ``sys.intern`` and fails with
    "substitute_in_graph expects a function" when it finds ansible-core's
    patch object there instead. The Transformers server tests load models in
    this interpreter after plugin tests imported ansible, so torch goes first.
    """
    try:
        import torch._dynamo  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        pass


_import_torch_before_ansible()
