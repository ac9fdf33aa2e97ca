# TEST EQUIPMENT ONLY (molecule/faults): makes a fault happen at an exact point of a run.
"""Runs a command on the controller when a named task starts, before any host runs it.

A callback runs in the controller's main process as each task is queued, so
the fault (``docker kill`` of an emulated host) lands between two stages of
the run every time, which a test watching the output from outside could not
promise. Enabled with ANSIBLE_CALLBACKS_ENABLED=fault_injector; configured by
NPU_FLEET_FAULT_TASK (the task's exact name) and NPU_FLEET_FAULT_COMMAND (a
JSON argv), and fires once.
"""

from __future__ import annotations

import json
import os
import subprocess

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: fault_injector
type: aggregate
short_description: Test equipment - run a command when a named task starts
description:
  - Test equipment of the faults Molecule scenario; never shipped in a playbook run.
requirements: []
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fault_injector"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._task = os.environ.get("NPU_FLEET_FAULT_TASK")
        self._argv = json.loads(os.environ.get("NPU_FLEET_FAULT_COMMAND") or "null")
        self._fired = False

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self._fired or not self._task or not self._argv or task.get_name() != self._task:
            return
        self._fired = True
        done = subprocess.run(self._argv, capture_output=True, text=True, check=False)
        self._display.display("fault_injector: ran %s before task %r: rc %d" % (" ".join(self._argv), self._task, done.returncode))
