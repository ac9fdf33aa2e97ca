# -*- coding: utf-8 -*-
# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which containers an undeploy removes: only npu.fleet's, only of the models asked for.

A container is npu.fleet's when it carries ``io.npu-fleet.managed=true`` and a
model label (the serve role sets both); anything else on the host - another
team's vLLM, the gateway, a container someone started by hand - is never
selected, whatever its name.
"""

from __future__ import annotations

from ansible_collections.npu.fleet.plugins.module_utils._gateway_fleet import gateway_servers
from ansible_collections.npu.fleet.plugins.module_utils._replica import LABELS, _container_labels, _container_name, _is_previous


class UndeployError(ValueError):
    """Bad undeploy variables: the message names the variable and the fix."""


def check_request(models, remove_all):
    """The model names asked for, or None for all; an error unless exactly one of the two is given."""
    if isinstance(remove_all, str) and remove_all.strip().lower() in ("true", "yes", "1", "false", "no", "0", ""):
        remove_all = remove_all.strip().lower() in ("true", "yes", "1")
    if not isinstance(remove_all, bool):
        raise UndeployError("undeploy_all must be true or false, got %r" % (remove_all,))
    if models is None:
        models = []
    if isinstance(models, str):
        # -e undeploy_models=a,b or -e "undeploy_models=[a, b]": key=value extra vars arrive as one string.
        models = [part.strip().strip("'\"") for part in models.strip().strip("[]").split(",") if part.strip().strip("'\"")]
    if not isinstance(models, (list, tuple)):
        raise UndeployError(
            'undeploy_models must be a list of model names (e.g. -e \'{"undeploy_models": ["qwen3-8b"]}\'), got %r' % (models,)
        )
    bad = [name for name in models if not isinstance(name, str) or not name.strip()]
    if bad:
        raise UndeployError("undeploy_models must hold model names (non-empty strings); %r is not one" % (bad[0],))
    if remove_all and models:
        raise UndeployError("give undeploy_models or undeploy_all=true, not both")
    if not remove_all and not models:
        raise UndeployError(
            'nothing to undeploy: give the models (-e \'{"undeploy_models": ["qwen3-8b"]}\') or every npu.fleet model (-e undeploy_all=true)'
        )
    return None if remove_all else sorted(set(models))


def undeploy_selection(containers, models=None, remove_all=False):
    """The npu.fleet containers of the selected models on one host, with the gateway servers to drain first.

    ``containers`` as docker_host_info lists them (verbose). Returns ``remove``
    (``name``, ``model``, ``replica``, ``port``, ``state``; ``-previous``
    copies too), ``servers`` (``backend``, ``server``: the replicas the
    gateways route to) and ``models`` (the selected models found here).
    """
    wanted = check_request(models, remove_all)
    remove = []
    for container in containers or []:
        labels = _container_labels(container)
        model = labels.get(LABELS["model"])
        if labels.get(LABELS["managed"]) != "true" or not model:
            continue
        if wanted is not None and model not in wanted:
            continue
        remove.append(
            {
                "name": _container_name(container),
                "model": model,
                "replica": labels.get(LABELS["replica"]),
                "port": labels.get(LABELS["port"]),
                "state": container.get("State"),
            }
        )
    remove.sort(key=lambda item: item["name"])
    found = sorted(set(item["model"] for item in remove))
    replicas = [item for item in remove if not _is_previous(item["name"])]
    return {"remove": remove, "servers": gateway_servers(replicas, [{"name": name} for name in found]), "models": found}


def undeploy_summary(found_by_host, models=None, remove_all=False):
    """The fleet-wide result: what went where, and the asked-for models that run nowhere (a typo, or already gone)."""
    wanted = check_request(models, remove_all)
    removed = dict(
        (host, [item["name"] for item in (found or {}).get("remove") or []]) for host, found in sorted((found_by_host or {}).items())
    )
    seen = set(model for found in (found_by_host or {}).values() for model in (found or {}).get("models") or [])
    return {
        "removed": removed,
        "containers": sum(len(names) for names in removed.values()),
        "models": sorted(seen),
        "not_found": [] if wanted is None else [name for name in wanted if name not in seen],
    }
