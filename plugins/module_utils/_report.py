# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""The end-of-run report: one row per replica, per host, as Markdown and as data.

A row joins what was decided (plan: host, chips, port, max_model_len; image
selection: backend, image; profile: parameters, architecture) with what was
proven (probe: healthy, time to first token), so one table answers "what runs
where, and does it work".
"""

__all__ = ["build_report", "render_markdown"]

COLUMNS = ("model", "params", "architecture", "backend", "image", "host", "chips", "port", "max_model_len", "status", "ttft_ms")


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
    if probe is None:
        return "planned (check mode)" if check_mode else "not probed"
    if probe.get("healthy"):
        return "healthy"
    status = "failed at %s" % (probe.get("stage") or "?")
    if probe.get("rolled_back"):
        status += ", rolled back"
    return status


def build_report(plan, probes, profiles, check_mode=False):
    """Rows, unplaced replicas and totals. ``probes`` is a list of probe results (any host); ``profiles`` model -> profile."""
    by_replica = dict(((probe.get("model"), int(probe.get("replica") or 0)), probe) for probe in probes or [])
    rows = []
    for placement in (plan or {}).get("placements") or []:
        probe = by_replica.get((placement["model"], int(placement["replica"])))
        profile = (profiles or {}).get(placement["model"]) or {}
        rows.append({
            "model": placement["model"],
            "replica": placement["replica"],
            "params": _params(profile),
            "architecture": profile.get("architecture") or "?",
            "backend": placement.get("backend") or "?",
            # The image the container runs (a built Transformers image carries its content hash), else the plan's.
            "image": (probe or {}).get("image") or placement.get("image") or "?",
            "host": placement["host"],
            "chips": ",".join(device.replace("/dev/davinci", "") for device in placement.get("devices") or []),
            "port": placement["port"],
            "max_model_len": placement.get("max_model_len"),
            "status": _status(probe, check_mode),
            "healthy": bool(probe and probe.get("healthy")),
            "ttft_ms": (probe or {}).get("ttft_ms"),
            "diagnosis": (probe or {}).get("diagnosis"),
            "message": (probe or {}).get("message"),
        })
    rows.sort(key=lambda row: (row["host"], row["model"], row["replica"]))
    unplaced = [{"model": item.get("model"), "replica": item.get("replica"), "reason": item.get("reason")}
                for item in (plan or {}).get("unplaced") or []]
    totals = {"replicas": len(rows), "healthy": sum(1 for row in rows if row["healthy"]),
              "failed": sum(1 for row in rows if row["status"].startswith("failed")), "unplaced": len(unplaced)}
    return {"rows": rows, "unplaced": unplaced, "totals": totals}


def _cell(value):
    text = "-" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report):
    lines = ["# npu.fleet deployment report", "",
             "%(replicas)d replica(s): %(healthy)d healthy, %(failed)d failed, %(unplaced)d unplaced." % report["totals"], ""]
    hosts = sorted(set(row["host"] for row in report["rows"]))
    for host in hosts:
        lines += ["## %s" % host, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for row in (row for row in report["rows"] if row["host"] == host):
            lines.append("| " + " | ".join(_cell(row[column]) for column in COLUMNS) + " |")
        lines.append("")
    failures = [row for row in report["rows"] if row["diagnosis"]]
    if failures:
        lines += ["## Failures", ""]
        for row in failures:
            diagnosis = row["diagnosis"]
            lines.append("- **%s** replica %s on %s: %s. Cause: %s. Fix: %s. Log: `%s`"
                         % (row["model"], row["replica"], row["host"], row["message"], diagnosis["cause"], diagnosis["fix"],
                            diagnosis["evidence"].replace("`", "'")))
        lines.append("")
    if report["unplaced"]:
        lines += ["## Not placed", ""]
        lines += ["- **%s** replica %s: %s" % (item["model"], item["replica"], item["reason"]) for item in report["unplaced"]]
        lines.append("")
    return "\n".join(lines)
