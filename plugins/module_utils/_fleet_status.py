# -*- coding: utf-8 -*-
# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The status of every replica of a host, from what runs, what the catalogue wants and a timed generation.

fleet_status reads, changes nothing and judges: a replica is ``healthy``,
``slow`` (its first token took longer than the threshold), ``hung`` (its
``/health`` answers but a one-token generation does not finish in time, or
nothing answers while the container runs), ``error`` (the generation
returned an error), ``crashed`` (the container is restarting, exited or
gone), ``chip_alarm`` (a chip under it is not healthy in ``npu-smi``),
``drifted`` (it runs something other than the catalogue says now) or
``missing`` (planned, no container). The worst one names the replica; every
one found is kept in ``conditions``.
"""

from __future__ import annotations

from ansible_collections.npu.fleet.plugins.module_utils._replica import (
    LABELS,
    _container_labels,
    _container_name,
    _is_previous,
)

# Worst first: the status a replica gets when several hold.
STATUSES = ("missing", "crashed", "hung", "error", "chip_alarm", "drifted", "slow", "healthy")
HEALTHY_CHIP = ("OK",)
# Probe stages (npu.fleet.openai_probe) that mean nothing answers at all.
_NO_ANSWER_STAGES = ("health",)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _devices(labels):
    return [device for device in str(labels.get(LABELS["devices"]) or "").split(",") if device]


def status_targets(containers):
    """The replicas to probe: every running npu.fleet container (not ``-previous`` copies), at its own port.

    The port and max_model_len come from the container's labels, not the plan:
    a drifted replica is probed where it really serves.
    """
    targets = []
    for container in containers or []:
        name = _container_name(container)
        labels = _container_labels(container)
        port = _int(labels.get(LABELS["port"]))
        if _is_previous(name) or container.get("State") != "running" or port is None or not labels.get(LABELS["model"]):
            continue
        targets.append(
            {
                "name": name,
                "model": labels[LABELS["model"]],
                "port": port,
                "max_model_len": _int(labels.get(LABELS["max_model_len"])) or 0,
            }
        )
    return sorted(targets, key=lambda target: target["name"])


def _drift(spec, labels, container, replace):
    """What differs between the running container and the spec the catalogue gives now (human words)."""
    differences = []
    if replace.get("from_image") and replace["from_image"] != spec.get("image"):
        differences.append("image %s, catalogue %s" % (replace["from_image"], spec.get("image")))
    wanted_labels = spec.get("labels") or {}
    for key, word in (("max_model_len", "max_model_len"), ("port", "port"), ("devices", "chips")):
        have, want = labels.get(LABELS[key]), wanted_labels.get(LABELS[key])
        if have != want:
            differences.append("%s %s, catalogue %s" % (word, have, want))
    if labels.get(LABELS["auth_digest"]) != wanted_labels.get(LABELS["auth_digest"]):
        differences.append("another API key")
    if not differences:
        differences.append("other serving options (flags, environment, dtype)")
    return "runs %s" % "; ".join(differences)


def _probe_conditions(probe, slow_ttft_ms):
    """Conditions named by the timed generation."""
    if probe is None:
        return [("hung", "not probed")]
    if probe.get("healthy"):
        ttft = probe.get("ttft_ms")
        if slow_ttft_ms and ttft is not None and float(ttft) > float(slow_ttft_ms):
            return [("slow", "first token after %.0f ms (threshold %d ms)" % (float(ttft), int(slow_ttft_ms)))]
        return []
    stage = probe.get("stage") or "?"
    message = probe.get("message") or "no answer"
    if stage == "container":
        return [("crashed", message)]
    if stage in _NO_ANSWER_STAGES:
        return [("hung", "/health does not answer while the container runs: %s" % message)]
    if stage == "models":
        return [("drifted", message)]
    if "timed out" in message or "timeout" in message.lower():
        return [("hung", "/health answers but a one-token generation did not finish: %s" % message)]
    return [("error", message)]


def replica_statuses(host, specs, changes, containers, probes, chips, slow_ttft_ms=0):
    """One record per replica the plan puts on ``host`` and per npu.fleet container it runs outside the plan.

    ``specs`` are replica_specs of the plan (without surge), ``changes`` their
    replica_changes against ``containers`` (docker_host_info, verbose),
    ``probes`` the openai_probe results of ``status_targets``, ``chips`` the
    host's ``npu`` facts chips (``device``, ``health``). Records have the keys
    of a health_probe result (``name``, ``model``, ``replica``, ``port``,
    ``devices``, ``healthy``, ``stage``, ``message``, ``ttft_ms``,
    ``diagnosis``) plus ``status``, ``conditions`` and ``host``, so the report
    renders them as it renders a deploy.
    """
    existing = dict((_container_name(container), container) for container in containers or [])
    by_probe = dict((probe.get("name"), probe) for probe in probes or [])
    replacing = dict((item["name"], item) for item in (changes or {}).get("replace") or [])
    alarms = dict(
        (str(chip.get("device")), str(chip.get("health") or "unknown"))
        for chip in chips or []
        if str(chip.get("health") or "unknown") not in HEALTHY_CHIP
    )
    records = []
    for spec in specs or []:
        name = spec["name"]
        wanted = spec.get("labels") or {}
        container = existing.get(name)
        record = {
            "host": host,
            "name": name,
            "model": wanted.get(LABELS["model"]),
            "replica": _int(wanted.get(LABELS["replica"])) or 0,
            "port": _int(wanted.get(LABELS["port"])),
            "devices": _devices(wanted),
            "image": spec.get("image"),
        }
        conditions = []
        if container is None:
            conditions.append(("missing", "planned on %s, no container %s" % (host, name)))
        else:
            labels = _container_labels(container)
            record.update(port=_int(labels.get(LABELS["port"])), devices=_devices(labels), image=container.get("Image") or record["image"])
            if container.get("State") != "running":
                conditions.append(("crashed", "container %s is %s" % (name, container.get("Status") or container.get("State") or "?")))
            else:
                conditions += _probe_conditions(by_probe.get(name), slow_ttft_ms)
            alarmed = ["%s (%s)" % (device, alarms[device]) for device in record["devices"] if device in alarms]
            if alarmed:
                conditions.append(("chip_alarm", "chip %s not healthy in npu-smi" % ", ".join(alarmed)))
            if name in replacing:
                conditions.append(("drifted", _drift(spec, labels, container, replacing[name])))
        records.append(_judged(record, conditions, by_probe.get(name)))
    planned = set(spec["name"] for spec in specs or [])
    for name in (changes or {}).get("remove") or []:
        container = existing.get(name) or {}
        labels = _container_labels(container)
        record = {
            "host": host,
            "name": name,
            "model": labels.get(LABELS["model"]),
            "replica": _int(labels.get(LABELS["replica"])) or 0,
            "port": _int(labels.get(LABELS["port"])),
            "devices": _devices(labels),
            "image": container.get("Image"),
            "unplanned": True,
        }
        if name not in planned:
            records.append(_judged(record, [("drifted", "runs here but the plan puts no such replica on %s" % host)], by_probe.get(name)))
    return records


def _judged(record, conditions, probe):
    """The record with its worst condition as status; probe details kept for the report."""
    status = min((condition for condition, unused in conditions), key=STATUSES.index, default="healthy")
    reasons = [reason for condition, reason in conditions if condition == status]
    probe = probe or {}
    record.update(
        status=status,
        healthy=status == "healthy",
        conditions=[{"status": condition, "reason": reason} for condition, reason in conditions],
        message="; ".join(reasons) if reasons else probe.get("message"),
        stage=probe.get("stage"),
        ttft_ms=probe.get("ttft_ms"),
        diagnosis=probe.get("diagnosis"),
        state=probe.get("state"),
    )
    return record


def status_totals(records):
    """How many replicas are in each status (every status listed, zero or not)."""
    totals = dict((status, 0) for status in STATUSES)
    for record in records or []:
        totals[record["status"]] = totals.get(record["status"], 0) + 1
    return totals
