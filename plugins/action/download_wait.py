# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of npu.fleet.download_wait: wait for async downloads on a host, showing their progress.

A download of hundreds of gigabytes started with ``async``/``poll: 0`` would
otherwise be one silent task; ``async_status`` says only started/finished.
This plugin polls each job's status and reads the progress file
npu.fleet.hub_fetch writes, and prints one line per download at each round
(bytes done of total, the file), until every job finished or the time is up.
Decisions (the line's wording) live in module_utils/_model_sources.py.
Documentation: plugins/modules/download_wait.py.
"""

from __future__ import annotations

import base64
import json
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.npu.fleet.plugins.module_utils._model_sources import download_jobs, progress_line

display = Display()

ARGUMENT_SPEC = {
    "jobs": {"type": "list", "elements": "dict", "required": True},
    "interval": {"type": "int", "default": 10},
    "timeout": {"type": "int", "default": 21600},
}


class ActionModule(ActionBase):
    """Polls on the target through async_status and slurp; changes nothing."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = task_vars.get("inventory_hostname") or "?"
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        pending = dict((job["jid"], job) for job in download_jobs(args["jobs"]))
        finished = {}
        deadline = time.monotonic() + max(1, args["timeout"])
        while pending:
            for jid, job in list(pending.items()):
                status = self._execute_module(
                    module_name="ansible.legacy.async_status",
                    module_args={"jid": jid, "mode": "status", "_async_dir": async_dir},
                    task_vars=task_vars,
                )
                if status.get("finished"):
                    finished[jid] = dict(status, item=job.get("item"), name=job.get("name"))
                    pending.pop(jid)
                    continue
                display.display(progress_line(host, job.get("name") or jid, self._progress(job.get("progress_file"), task_vars)))
            if not pending:
                break
            if time.monotonic() > deadline:
                names = ", ".join(str(job.get("name") or jid) for jid, job in pending.items())
                result.update(
                    failed=True,
                    msg="%s: still downloading after %d s: %s; raise npu_fleet_download_timeout" % (host, args["timeout"], names),
                )
                break
            time.sleep(max(1, args["interval"]))
        results = [finished[jid] for jid in sorted(finished)]
        failed = [item for item in results if item.get("failed")]
        result.update(changed=any(item.get("changed") for item in results), results=results)
        if failed and not result.get("failed"):
            result.update(failed=True, msg="; ".join(str(item.get("msg") or "download failed") for item in failed))
        return result

    def _progress(self, path, task_vars):
        """The job's progress JSON, or None while it has written none."""
        if not path:
            return None
        read = self._execute_module(module_name="ansible.legacy.slurp", module_args={"src": path}, task_vars=task_vars)
        if read.get("failed") or not read.get("content"):
            return None
        try:
            return json.loads(base64.b64decode(read["content"]).decode("utf-8"))
        except ValueError:
            return None
