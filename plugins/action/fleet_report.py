# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of npu.fleet.fleet_report: the end-of-run report, built once on the controller.

The report needs every host's probe results at once, which no module running
on one target has: this plugin reads ``hostvars`` (``health_probe_results``
from the health_probe role, ``serve_bind_address`` / ``ansible_host`` for the
address, and by default the plan and the validated catalogue of this run), calls plugins/module_utils/_report.py and returns the report. It
never connects to a host. Documentation: plugins/modules/fleet_report.py.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.npu.fleet.plugins.module_utils._fleet_status import status_totals
from ansible_collections.npu.fleet.plugins.module_utils._report import (
    build_report,
    collect_hosts,
    gateway_endpoints,
    host_states,
    judge,
    model_sources,
    open_hosts,
    profiles_by_model,
    report_stats,
)
from ansible_collections.npu.fleet.plugins.plugin_utils._hostvars import planned_here, read_hostvars
from ansible_collections.npu.fleet.plugins.plugin_utils._plain import plain

ARGUMENT_SPEC = {
    "plan": {"type": "dict"},
    "models": {"type": "list", "elements": "dict"},
    "hosts": {"type": "list", "elements": "str"},
    "check_mode": {"type": "bool"},
    "template": {"type": "str"},
    "dest": {"type": "path"},
    "kind": {"type": "str", "choices": ["deploy", "status"], "default": "deploy"},
    "unreachable": {"type": "list", "elements": "str", "default": []},
}


class ActionModule(ActionBase):
    """Builds the report on the controller; no connection, no module transfer."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        names = args["hosts"]
        if names is None:
            names = (task_vars.get("groups") or {}).get("npu_hosts") or []
        check_mode = args["check_mode"]
        if check_mode is None:
            check_mode = bool(self._play_context.check_mode)
        names = [str(name) for name in names]
        hostvars = task_vars.get("hostvars") or {}
        plan, models = planned_here(hostvars, names)
        if args["plan"] is not None:
            plan = plain(args["plan"])
        if args["models"] is not None:
            models = plain(args["models"])
        if plan is None:
            result.update(changed=False, report=None, msg="no plan in this run (no host planned): nothing to report")
            return result
        found = read_hostvars(hostvars, names)
        probes, addresses = collect_hosts(found, names)
        report = build_report(plan, probes, profiles_by_model(models), addresses, check_mode)
        # Gateways may run on hosts outside npu_hosts (the npu_gateways group).
        gateway_names = [str(name) for name in (task_vars.get("groups") or {}).get("npu_gateways") or [] if str(name) not in found]
        found.update(read_hostvars(hostvars, gateway_names))
        report["gateways"] = gateway_endpoints(found)
        report["open_hosts"] = open_hosts(found)
        report["hosts"] = host_states(found, names, plan, args["unreachable"])
        report["sources"] = model_sources(found)
        report["kind"] = args["kind"]
        if args["kind"] == "status":
            report["totals"]["statuses"] = status_totals(report["rows"])
        where = os.path.join(args["dest"], "report.md") if args["dest"] else "the report"
        result.update(changed=False, report=report, judgement=judge(report, args["kind"], where), stats=report_stats(report, args["dest"]))
        try:
            if args["template"]:
                result["markdown"] = self._render(args["template"], report, task_vars)
            if args["dest"] and not self._play_context.check_mode:
                result["written"] = write_report(args["dest"], report, result.get("markdown"))
        except (AnsibleError, OSError) as exc:
            result.update(failed=True, msg="report: %s" % exc)
        return result

    def _render(self, template, report, task_vars):
        """The Markdown from ``template`` through ansible.builtin.template (the role's and the play's templates dirs)."""
        lookup = self._shared_loader_obj.lookup_loader.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
        (text,) = lookup.run([template], variables=task_vars, template_vars={"report": report})
        return text


def _write(path, text):
    """Whole or not at all: a reader never sees half a report."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".report-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def write_report(directory, report, markdown=None):
    """report.json (and report.md) in ``directory`` on the controller, created when missing; returns the paths."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    written = [os.path.join(directory, "report.json")]
    _write(written[0], json.dumps(report, indent=4, sort_keys=True) + "\n")
    if markdown is not None:
        written.append(os.path.join(directory, "report.md"))
        _write(written[1], markdown)
    return written
