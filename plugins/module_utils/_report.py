# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""The end-of-run report: one row per replica, per host, as data.

A row joins what was decided (plan: host, chips, port, max_model_len; image
selection: backend, image; profile: parameters, architecture) with what was
proven (probe: healthy, time to first token) and where to reach it (url), so
one table answers "what runs where, and does it work". The Markdown is
rendered from this data by the npu.fleet.report role's template
(roles/report/templates/report.md.j2); the action plugin
npu.fleet.fleet_report only gathers the inputs from hostvars.
"""

__all__ = [
    "COLUMNS",
    "build_report",
    "collect_hosts",
    "endpoint_url",
    "gateway_endpoints",
    "host_states",
    "model_sources",
    "profiles_by_model",
    "reach_address",
]

# The columns of the per-host table, in order (the template lists them too).
COLUMNS = ("model", "params", "architecture", "backend", "image", "host", "chips", "port", "url", "max_model_len", "status", "ttft_ms")
# Bind addresses that mean "every interface": not an address a client can use.
UNSPECIFIED_ADDRESSES = ("", "0.0.0.0", "::", "[::]")


def _params(profile):
    count = (profile or {}).get("parameters")
    if not count:
        return "?"
    if count >= 1e9:
        return "%.1fB" % (count / 1e9)
    if count >= 1e6:
        return "%.0fM" % (count / 1e6)
    return "%.0fK" % (count / 1e3)


def _status(probe, check_mode):
    if probe is not None and probe.get("status"):
        # Judged by npu.fleet.fleet_status (healthy, slow, hung, crashed, drifted, missing...).
        return probe["status"]
    if probe is None:
        return "planned (check mode)" if check_mode else "not probed"
    if probe.get("healthy"):
        return "healthy"
    status = "failed at %s" % (probe.get("stage") or "?")
    if probe.get("rolled_back"):
        status += ", rolled back"
    return status


def reach_address(name, host_vars):
    """Where clients and gateways reach a host's published ports: ``npu_fleet_advertise_address`` when set, else
    ``serve_bind_address`` when it names one address (not 0.0.0.0 / ::), else the host's default IPv4 address
    (gathered facts), else ``ansible_host``, else the inventory name."""
    host_vars = host_vars or {}
    advertised = str(host_vars.get("npu_fleet_advertise_address") or "").strip()
    if advertised:
        return advertised
    bind = str(host_vars.get("serve_bind_address") or "").strip()
    if bind not in UNSPECIFIED_ADDRESSES:
        return bind
    default_ipv4 = host_vars.get("ansible_default_ipv4")
    if isinstance(default_ipv4, dict) and default_ipv4.get("address"):
        return str(default_ipv4["address"])
    return str(host_vars.get("ansible_host") or "").strip() or str(name)


def gateway_endpoints(host_vars_by_name):
    """Every gateway's URLs: the router (all models, by the request's ``model``) and each model's own port,
    from the ``gateway_endpoint`` the gateway role records on each gateway host."""
    router, models = [], {}
    for name in sorted(host_vars_by_name or {}):
        endpoint = (host_vars_by_name[name] or {}).get("gateway_endpoint")
        if not isinstance(endpoint, dict) or not endpoint.get("address"):
            continue
        router.append(endpoint_url(endpoint["address"], endpoint["router_port"]))
        for model, port in sorted((endpoint.get("ports") or {}).items()):
            models.setdefault(model, []).append(endpoint_url(endpoint["address"], port))
    return {"router": router, "models": models}


def model_sources(host_vars_by_name):
    """Per host and model, where its weights came from and what is on disk (``model_sources_results``, set by the
    npu.fleet.model_sources role): ``host``, ``model``, ``source``, ``revision``, ``path``, ``bytes``,
    ``fetched_bytes``, ``copied_files``; sorted by model, then host."""
    rows = []
    for name in sorted(host_vars_by_name or {}):
        for row in (host_vars_by_name[name] or {}).get("model_sources_results") or []:
            if isinstance(row, dict):
                rows.append(dict(row, host=name))
    return sorted(rows, key=lambda row: (str(row.get("model")), row["host"]))


def open_hosts(host_vars_by_name):
    """Hosts whose replicas serve without an API key (``serve_anonymous``, set by the serve role when it was asked
    for with npu_fleet_allow_anonymous): the report names their endpoints as open to anyone."""
    return sorted(name for name, host_vars in (host_vars_by_name or {}).items() if (host_vars or {}).get("serve_anonymous") is True)


def endpoint_url(address, port):
    """``http://<address>:<port>``, an IPv6 address in brackets."""
    address = str(address)
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "http://%s:%s" % (address, port)


def profiles_by_model(models):
    """Model name -> profile, from catalogue entries (``name``, ``profile``)."""
    return dict((entry["name"], entry.get("profile") or {}) for entry in models or [] if isinstance(entry, dict) and entry.get("name"))


def collect_hosts(hostvars, names):
    """Probe results of all ``names`` (concatenated) and host -> address, from each host's variables.

    ``hostvars`` maps a host name to its variables; a host without ``health_probe_results`` (unreachable, failed
    earlier, not probed) contributes no results, so its replicas show as not probed.
    """
    probes, addresses = [], {}
    for name in names or []:
        host_vars = hostvars.get(name) or {}
        addresses[str(name)] = reach_address(name, host_vars)
        probes.extend(host_vars.get("health_probe_results") or [])
    return probes, addresses


def _outage(probe, replicas):
    """Seconds a one-replica model could not answer while a rolling update replaced it: the load time of its
    successor (the probe's ``ready_after_s``); its drain only waited for requests already running."""
    if not probe or not probe.get("rolling") or probe.get("surge") or replicas != 1:
        return None
    return round(float(probe.get("ready_after_s") or 0.0), 1)


def _unplanned_row(probe, addresses):
    """A container fleet_status found running outside the plan (a model dropped from the catalogue, a moved replica)."""
    port = probe.get("port")
    return {
        "model": probe.get("model"),
        "replica": int(probe.get("replica") or 0),
        "params": "?",
        "architecture": "?",
        "backend": "?",
        "image": probe.get("image") or "?",
        "host": probe.get("host") or "?",
        "chips": ",".join(device.replace("/dev/davinci", "") for device in probe.get("devices") or []),
        "port": port,
        "url": endpoint_url((addresses or {}).get(probe.get("host")) or probe.get("host") or "?", port) if port else "?",
        "max_model_len": None,
        "status": probe.get("status") or "drifted",
        "healthy": False,
        "ttft_ms": probe.get("ttft_ms"),
        "diagnosis": probe.get("diagnosis"),
        "message": probe.get("message"),
        "replaced": False,
        "surge": False,
        "outage_s": None,
    }


def build_report(plan, probes, profiles, addresses=None, check_mode=False):
    """Rows, unplaced replicas and totals.

    ``probes`` is a list of probe results (any host); ``profiles`` model -> profile; ``addresses`` host -> address at
    which its ports are reached (default: the host name).
    """
    by_replica = dict(((probe.get("model"), int(probe.get("replica") or 0)), probe) for probe in probes or [])
    replica_count = {}
    for placement in (plan or {}).get("placements") or []:
        replica_count[placement["model"]] = replica_count.get(placement["model"], 0) + 1
    rows = []
    for placement in (plan or {}).get("placements") or []:
        probe = by_replica.get((placement["model"], int(placement["replica"])))
        profile = (profiles or {}).get(placement["model"]) or {}
        port = (probe or {}).get("port") or placement["port"]
        rows.append(
            {
                "model": placement["model"],
                "replica": placement["replica"],
                "params": _params(profile),
                "architecture": profile.get("architecture") or "?",
                "backend": placement.get("backend") or "?",
                # The image the container runs (a built Transformers image carries its content hash), else the plan's.
                "image": (probe or {}).get("image") or placement.get("image") or "?",
                "host": placement["host"],
                # Where it runs: a surge successor runs in the plan's room, not on the placement's chips and port.
                "chips": ",".join(
                    device.replace("/dev/davinci", "") for device in (probe or {}).get("devices") or placement.get("devices") or []
                ),
                "port": port,
                "url": endpoint_url((addresses or {}).get(placement["host"]) or placement["host"], port),
                "max_model_len": placement.get("max_model_len"),
                "status": _status(probe, check_mode),
                "healthy": bool(probe and probe.get("healthy")),
                "ttft_ms": (probe or {}).get("ttft_ms"),
                "diagnosis": (probe or {}).get("diagnosis"),
                "message": (probe or {}).get("message"),
                # Replaced by a rolling update in this run; a model's only replica was out for its load time.
                "replaced": bool((probe or {}).get("rolling")),
                # Replaced beside its previous container (surge): no outage.
                "surge": bool((probe or {}).get("surge")),
                "outage_s": _outage(probe, replica_count.get(placement["model"], 0)),
            }
        )
    rows += [_unplanned_row(probe, addresses) for probe in probes or [] if probe.get("unplanned")]
    rows.sort(key=lambda row: (row["host"], row["model"] or "", row["replica"]))
    unplaced = [
        {"model": item.get("model"), "replica": item.get("replica"), "reason": item.get("reason")}
        for item in (plan or {}).get("unplaced") or []
    ]
    totals = {
        "replicas": len(rows),
        "healthy": sum(1 for row in rows if row["healthy"]),
        "failed": sum(1 for row in rows if row["status"].startswith("failed")),
        # Every row that is not healthy (fleet_status fails the run on any).
        "unhealthy": sum(1 for row in rows if not row["healthy"]),
        "unplaced": len(unplaced),
    }
    return {"rows": rows, "unplaced": unplaced, "totals": totals, "notes": plan_notes(plan)}


# The stage a playbook records on a host (npu_fleet_stage) when it finished every step there.
STAGE_DONE = "done"


def _planned_here(plan, name):
    """The plan's changes that touch host ``name``, as short phrases ("move llama/1 from here")."""
    phrases = []
    for change in (plan or {}).get("changes") or []:
        if change.get("action") == "keep":
            continue
        ends = [end for end in (change.get("from"), change.get("to")) if isinstance(end, dict) and end.get("host") == name]
        if ends:
            phrases.append("%s %s/%s" % (change["action"], change.get("model"), change.get("replica")))
    return phrases


def host_states(host_vars_by_name, names, plan=None, unreachable=()):
    """One record per host that did not finish the run: ``host``, ``state``, ``detail``.

    A host finished when its playbook recorded ``npu_fleet_stage: done``. One that did not either failed preflight
    (``npu_preflight.ok`` false: it received nothing, what it ran runs on), or stopped in the stage it last
    recorded, unreachable (``unreachable``: a connection check after the run failed) or failed there. The detail
    says what the plan meant to change on it, so the operator knows what may be half-done, and what to do.
    """
    states = []
    lost = set(str(name) for name in unreachable or ())
    for name in names or []:
        host_vars = (host_vars_by_name or {}).get(name) or {}
        stage = str(host_vars.get("npu_fleet_stage") or "")
        if stage == STAGE_DONE:
            continue
        preflight = host_vars.get("npu_preflight") if isinstance(host_vars.get("npu_preflight"), dict) else {}
        planned = _planned_here(plan, name)
        if preflight and preflight.get("ok") is False:
            errors = [
                str(item.get("code"))
                for item in preflight.get("problems") or []
                if isinstance(item, dict) and item.get("severity") == "error"
            ]
            states.append(
                {
                    "host": name,
                    "state": "failed preflight",
                    "detail": "%s: it received nothing and what it ran runs on as it was; fix it (see the preflight report) "
                    "and run again" % (", ".join(errors) or "errors"),
                }
            )
            continue
        where = ("during %s" % stage) if stage else "before discovery"
        state = ("unreachable, stopped %s" if name in lost else "failed %s") % where
        if not stage:
            detail = "it received nothing"
        elif planned:
            detail = "the plan changed here: %s; any of these may be half-done" % ", ".join(planned)
        else:
            detail = "the plan changed nothing here; its replicas run on as they were"
        fix = (
            "bring it back and run the deploy again: it converges"
            if name in lost
            else "see the failed task in the run's output, fix it and run again"
        )
        states.append({"host": name, "state": state, "detail": "%s; %s" % (detail, fix)})
    return states


# Placement reasons that only restate the routine (a kept replica, the chosen TP size): not worth a note.
ROUTINE_REASONS = ("kept: still fits", "tensor_parallel_size auto")


def plan_notes(plan):
    """Why the plan did what an operator would not guess: a replica moved or removed (a chip in alarm, a host that
    left), a port other than the chip's, a context capped, a replica left on a host that failed preflight. One
    record per note: ``model``, ``replica``, ``host``, ``note``."""
    notes = []
    for change in (plan or {}).get("changes") or []:
        if change.get("action") in ("move", "remove") and change.get("reason"):
            where = (change.get("from") or {}).get("host")
            notes.append(
                {
                    "model": change.get("model"),
                    "replica": change.get("replica"),
                    "host": where,
                    "note": "%s: %s" % (change["action"], change["reason"]),
                }
            )
    for placement in (plan or {}).get("placements") or []:
        for reason in placement.get("reasons") or []:
            if not str(reason).startswith(ROUTINE_REASONS):
                notes.append(
                    {
                        "model": placement.get("model"),
                        "replica": placement.get("replica"),
                        "host": placement.get("host"),
                        "note": str(reason),
                    }
                )
    return notes


def judge(report, kind="deploy", where="the report"):
    """Whether the run must fail, and the one line that says why: a deploy on a replica that failed its probe, a
    status run on any replica that is not healthy (a scheduled job alerts on it)."""
    rows = report.get("rows") or []
    if kind == "status":
        bad = [row for row in rows if not row.get("healthy")]
        what = "not healthy"
    else:
        bad = [row for row in rows if str(row.get("status") or "").startswith("failed")]
        what = "failed their health probe"
    if not bad:
        return {"failed": False, "msg": "%d replica(s), none %s" % (len(rows), what)}
    named = ", ".join("%s/%s on %s (%s)" % (row.get("model"), row.get("replica"), row.get("host"), row.get("status")) for row in bad)
    return {"failed": True, "msg": "%d replica(s) %s: %s; see %s for the cause and fix of each" % (len(bad), what, named, where)}


def report_stats(report, where=None):
    """The summary a job publishes with set_stats (AWX shows it, a workflow branches on it): no secrets, no logs."""
    return {
        "kind": report.get("kind") or "deploy",
        "totals": report.get("totals") or {},
        "report_dir": where,
        "replicas": [
            dict((key, row.get(key)) for key in ("model", "replica", "host", "status", "url", "healthy"))
            for row in report.get("rows") or []
        ],
        "gateways": report.get("gateways") or {},
    }
