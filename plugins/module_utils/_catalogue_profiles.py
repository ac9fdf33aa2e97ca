# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Where each catalogue entry is profiled, and its profile once it is known.

A model is profiled before it is planned, from wherever its configuration and
safetensors headers can be read without moving the weights: the controller
(a controller source, or a host source whose ``path`` the controller holds),
a host that holds it (``profile_host``, else the first host that may run the
model), or the hub itself with range requests (a hub source: the plan is made
before any weight is downloaded). ``profile_catalogue`` profiles what the
controller can and returns jobs for the rest; ``merge_profiles`` takes those
jobs' results back. The npu.fleet.model_catalogue action plugin is the only
caller; it reads hosts and labels from the inventory.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import CatalogueError, host_path_of, profile_location, source_of
from ansible_collections.npu.fleet.plugins.module_utils._safetensors import ModelProfileError

__all__ = ["HUB_JOB_FIELDS", "merge_profiles", "missing_profiles", "pick_profile_host", "profile_catalogue"]

# The source fields a hub profile job passes to npu.fleet.hub_profile (the token is read by the play, by name).
HUB_JOB_FIELDS = ("hub", "repo", "revision", "endpoint", "allow_patterns")


def pick_profile_host(entry: Dict[str, Any], hosts: Sequence[str], labels_by_host: Mapping[str, Any]) -> str:
    """The first inventory host, in inventory order, that may run the entry (its ``hosts`` and ``labels``).

    That host will hold the weights (source host) or download them (source hub) if the plan puts a replica there,
    so it is the one whose view of the model counts; the entry names ``profile_host`` to choose another.
    """
    wanted = entry.get("labels") or {}
    for host in hosts:
        if entry.get("hosts") is not None and host not in entry["hosts"]:
            continue
        labels = labels_by_host.get(host) or {}
        if isinstance(labels, Mapping) and all(str(labels.get(key)) == str(value) for key, value in wanted.items()):
            return host
    raise CatalogueError(
        "model %s: no host of npu_hosts may run it (its hosts %s, labels %s), so none can profile it; fix hosts/labels, "
        "or set profile_host" % (entry["name"], entry.get("hosts"), wanted or {})
    )


def profile_catalogue(
    catalogue: List[Dict[str, Any]],
    hosts: Sequence[str],
    labels_by_host: Mapping[str, Any],
    profile_dir: Callable[[str], Dict[str, Any]],
    on_controller: Callable[[str], bool],
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Profile here what the controller holds; return (catalogue, directory jobs, hub jobs).

    A directory job is ``{name, host, path}`` for npu.fleet.model_profile on ``host``; a hub job is
    ``{name, host, token_var, source: {hub, repo, revision, endpoint, allow_patterns}}`` for npu.fleet.hub_profile.
    ``profile_dir`` (npu.fleet's profile_model) raises ModelProfileError for a checkpoint it cannot read.
    """
    directory_jobs, hub_jobs = [], []
    for entry in catalogue:
        where = profile_location(entry, on_controller)
        if where["where"] == "given":
            continue
        if where["where"] == "controller":
            try:
                entry["profile"] = profile_dir(where["path"])
            except ModelProfileError as exc:
                raise CatalogueError(
                    "model %s: cannot profile %s on the controller: %s; fix the checkpoint there%s"
                    % (
                        entry["name"],
                        where["path"],
                        exc,
                        "" if source_of(entry)["type"] == "controller" else ", or set profile_host to a host that holds it",
                    )
                ) from None
            continue
        host = where.get("host") or pick_profile_host(entry, hosts, labels_by_host)
        if where["where"] == "hub":
            source = where["source"]
            hub_jobs.append(
                {
                    "name": entry["name"],
                    "host": host,
                    "token_var": source.get("token_var"),
                    "source": dict((key, source[key]) for key in HUB_JOB_FIELDS if source.get(key) is not None),
                }
            )
        else:
            directory_jobs.append({"name": entry["name"], "host": host, "path": where["path"] or host_path_of(entry)})
    return catalogue, directory_jobs, hub_jobs


def merge_profiles(catalogue: List[Dict[str, Any]], results: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Each entry's profile from the registered results of the profile jobs (``item`` is the job).

    A hub profile keeps what the download needs - the commit the revision resolved to and the files with their sizes
    and sha256 - under ``profile.hub``, so the sources stage fetches exactly what was planned.
    """
    found = {}  # type: Dict[str, Dict[str, Any]]
    for result in results or []:
        item = result.get("item") or {}
        if not isinstance(item, Mapping) or not item.get("name") or not isinstance(result.get("profile"), Mapping):
            continue
        profile = dict(result["profile"])
        if "source" in item:
            profile["hub"] = {
                "commit": result.get("commit"),
                "revision": result.get("revision"),
                "files": list(result.get("files") or []),
                "bytes": result.get("bytes"),
            }
        found[str(item["name"])] = profile
    for entry in catalogue:
        if entry.get("profile") is None and entry["name"] in found:
            entry["profile"] = found[entry["name"]]
    return catalogue


def missing_profiles(catalogue: List[Dict[str, Any]]) -> Optional[str]:
    """The models still without a profile after the jobs ran (a job that was skipped), as one message, or None."""
    names = [entry["name"] for entry in catalogue if entry.get("profile") is None]
    if not names:
        return None
    return "no profile for %s: its profile job did not run (check the task output above for the host it ran on)" % ", ".join(names)
