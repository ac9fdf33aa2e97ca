# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""The sources stage: which weights each host needs, from where, in which download wave.

Runs between the plan and serving (roles/model_sources). Weights go only to
the hosts the plan puts replicas on: ``sources_here`` lists, for one host,
each planned model once with how its weights get there (already on the host,
copied from the controller, downloaded from a hub). ``download_waves`` spreads
the downloading hosts over waves of ``concurrency`` hosts, so a fleet does
not pull a model from a mirror on every host at once; every host takes part
in every wave (the role loops over them in lockstep) and downloads in its own.
``copies`` turns the comparison with the controller's copy into file copies,
``progress_line`` says how far a download is, ``source_records`` is what the
report shows per model and host.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import host_path_of, source_of

__all__ = ["PROGRESS_FILE", "copies", "download_jobs", "download_waves", "progress_line", "source_records", "sources_here"]

# Where npu.fleet.hub_fetch writes its progress, under the model directory (its default).
PROGRESS_FILE = ".cache/npu-fleet/progress.json"


def _planned_models(plan: Mapping[str, Any], host: Optional[str] = None) -> List[str]:
    names = []  # type: List[str]
    for placement in (plan or {}).get("placements") or []:
        if (host is None or placement.get("host") == host) and placement.get("model") not in names:
            names.append(placement["model"])
    return sorted(names)


def sources_here(plan: Mapping[str, Any], catalogue: Sequence[Mapping[str, Any]], host: Optional[str] = None) -> List[Dict[str, Any]]:
    """One record per model the plan puts on ``host`` (every host with None): ``name``, ``type``, ``host_path``, and
    per type ``controller_path`` (controller) or ``hub`` (``hub``, ``repo``, ``revision`` (the commit the profile
    resolved, else the catalogue's), ``endpoint``, ``allow_patterns``, ``token_var``, ``files``, ``bytes``)."""
    entries = dict((entry["name"], entry) for entry in catalogue or [])
    records = []
    for name in _planned_models(plan, host):
        entry = entries.get(name)
        if entry is None:
            continue
        source = source_of(dict(entry))
        record = {"name": name, "type": source["type"], "host_path": host_path_of(dict(entry))}
        if source["type"] == "controller":
            record["controller_path"] = source["path"]
        elif source["type"] == "hub":
            fetched = (entry.get("profile") or {}).get("hub") or {}
            record["hub"] = {
                "hub": source.get("hub", "huggingface"),
                "repo": source["repo"],
                "revision": fetched.get("commit") or source["revision"],
                "endpoint": source.get("endpoint"),
                "allow_patterns": source.get("allow_patterns"),
                "token_var": source.get("token_var"),
                "files": list(fetched.get("files") or []),
                "bytes": fetched.get("bytes"),
            }
        records.append(record)
    return records


def download_waves(
    plan: Mapping[str, Any], catalogue: Sequence[Mapping[str, Any]], hosts: Sequence[str], concurrency: Any
) -> Dict[str, Any]:
    """``{"waves": n, "wave": {host: index}}``: hosts with a hub model to fetch, ``concurrency`` per wave, in inventory
    order. ``concurrency`` 0 or less means all at once."""
    try:
        size = int(concurrency)
    except (TypeError, ValueError):
        raise ValueError("npu_fleet_download_concurrency must be a whole number of hosts, got %r" % (concurrency,)) from None
    downloading = [host for host in hosts if any(record["type"] == "hub" for record in sources_here(plan, catalogue, host))]
    if not downloading:
        return {"waves": 0, "wave": {}}
    size = len(downloading) if size <= 0 else size
    wave = dict((host, index // size) for index, host in enumerate(downloading))
    return {"waves": (len(downloading) + size - 1) // size, "wave": wave}


def copies(comparisons: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The file copies for the controller-source models of a host, from npu.fleet.model_files results run with
    ``expected_files`` (``item`` is the sources_here record): ``name``, ``src``, ``dest``, ``size``, ``reason``."""
    jobs = []
    for result in comparisons or []:
        record = result.get("item") or {}
        for item in (result.get("copy") or {}).get("files") or []:
            jobs.append(
                {
                    "name": record.get("name"),
                    "src": "%s/%s" % (str(record["controller_path"]).rstrip("/"), item["name"]),
                    "dest": "%s/%s" % (str(record["host_path"]).rstrip("/"), item["name"]),
                    "size": item.get("size"),
                    "reason": item.get("reason"),
                }
            )
    return jobs


def download_jobs(started: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The jobs to wait for, from the registered results of the async hub_fetch loop (``ansible_job_id``, ``item``
    a sources_here record) or from ready jobs (``jid``, ``name``, ``progress_file``); skipped entries are left out."""
    jobs = []
    for entry in started or []:
        if entry.get("jid"):
            jobs.append(
                {
                    "jid": str(entry["jid"]),
                    "name": entry.get("name"),
                    "progress_file": entry.get("progress_file"),
                    "item": entry.get("item"),
                }
            )
        elif entry.get("ansible_job_id"):
            item = entry.get("item") or {}
            progress = "%s/%s" % (str(item["host_path"]).rstrip("/"), PROGRESS_FILE) if item.get("host_path") else None
            jobs.append({"jid": str(entry["ansible_job_id"]), "name": item.get("name"), "progress_file": progress, "item": item})
    return jobs


def _gib(count: Any) -> str:
    return "%.2f GiB" % (float(count or 0) / 2**30)


def progress_line(host: str, name: str, progress: Optional[Mapping[str, Any]]) -> str:
    """``host model: 3.20 GiB of 16.40 GiB (20 %), file 2 of 5, model-00002-of-00005.safetensors``."""
    if not progress:
        return "%s %s: starting" % (host, name)
    done, total = progress.get("bytes_done") or 0, progress.get("bytes_total") or 0
    share = " (%d %%)" % (100 * done // total) if total else ""
    line = "%s %s: %s of %s%s" % (host, name, _gib(done), _gib(total), share)
    if progress.get("files_total"):
        line += ", file %s of %s" % (progress.get("files_done") or 0, progress["files_total"])
    current = progress.get("current")
    if current:
        line += ", %s" % (", ".join(str(name) for name in current) if isinstance(current, (list, tuple)) else current)
    if progress.get("state") and progress["state"] not in ("running", "downloading"):
        line += " [%s]" % progress["state"]
    return line


def source_records(
    records: Sequence[Mapping[str, Any]],
    verified: Sequence[Mapping[str, Any]] = (),
    fetched: Sequence[Mapping[str, Any]] = (),
    copied: Sequence[Mapping[str, Any]] = (),
) -> List[Dict[str, Any]]:
    """What the report says per model on a host: ``model``, ``source`` (host, controller, or the hub and repo),
    ``revision``, ``path``, ``bytes`` on disk, and what this run moved (``fetched_bytes``, ``copied_files``).

    ``verified`` are the ``directories`` of the final npu.fleet.model_files check (``directory``, ``bytes``), ``fetched``
    npu.fleet.hub_fetch results (``name`` or ``item``, ``bytes_fetched``, ``bytes_on_disk``), ``copied`` the copy
    tasks' results (``item`` a copies() job, ``changed``)."""
    by_directory = dict((result.get("directory"), result.get("bytes")) for result in verified or [])
    on_disk = dict((record["name"], by_directory.get(record["host_path"])) for record in records or [])
    moved = {}  # type: Dict[str, int]
    for result in fetched or []:
        name = result.get("name") or (result.get("item") or {}).get("name")
        moved[name] = moved.get(name, 0) + int(result.get("bytes_fetched") or 0)
        if result.get("bytes_on_disk") is not None and on_disk.get(name) is None:
            on_disk[name] = result["bytes_on_disk"]
    copies_done = {}  # type: Dict[str, int]
    for result in copied or []:
        if result.get("changed"):
            name = (result.get("item") or {}).get("name")
            copies_done[name] = copies_done.get(name, 0) + 1
    rows = []
    for record in records or []:
        hub = record.get("hub") or {}
        rows.append(
            {
                "model": record["name"],
                "source": "%s %s" % (hub.get("hub"), hub.get("repo")) if hub else record["type"],
                "revision": hub.get("revision"),
                "path": record["host_path"],
                "bytes": on_disk.get(record["name"]),
                "fetched_bytes": moved.get(record["name"], 0),
                "copied_files": copies_done.get(record["name"], 0),
            }
        )
    return rows
