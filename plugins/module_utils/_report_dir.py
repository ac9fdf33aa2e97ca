# -*- coding: utf-8 -*-
# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a run's reports go on the controller when the user did not say.

``$PWD`` was the old answer and was wrong twice: under ansible-runner (the
engine AWX runs jobs with) the report landed in the caller's directory, and
with ``PWD`` unset at ``/npu-fleet-report``. The runner's job artifacts
(``AWX_ISOLATED_DATA_DIR``, which ansible-runner sets for every job) are where
AWX users look; from a checkout it is next to the playbook.
"""

from __future__ import annotations

import os

DIRECTORY = "npu-fleet-report"


def report_dir(explicit=None, runner_artifacts=None, playbook_dir=None, cwd=None, subdir=None):
    """The report directory: ``explicit`` (npu_fleet_report_dir), else under the runner's artifacts, else next to
    the playbook (unless the playbook is inside an installed collection: then the working directory)."""
    if explicit:
        base = str(explicit)
    elif runner_artifacts:
        base = os.path.join(str(runner_artifacts), DIRECTORY)
    elif playbook_dir and "%sansible_collections%s" % (os.sep, os.sep) not in str(playbook_dir) + os.sep:
        base = os.path.join(str(playbook_dir), DIRECTORY)
    else:
        base = os.path.join(str(cwd or os.getcwd()), DIRECTORY)
    return os.path.join(base, str(subdir)) if subdir else base
