"""Run the local hub as a process: ``cd tests && python -m hub_server --port 18080 --tiny tiny/qwen3=/tmp/tiny``.

TEST EQUIPMENT ONLY. Options:

  --repo OWNER/NAME=DIR[,private][,token=T][,ref=R][,commit=SHA]   serve DIR (repeatable)
  --tiny OWNER/NAME=DIR[,...same flags]   first write a tiny Qwen3 repository into DIR, then serve it
  --host / --port / --cdn-host / --no-lfs-redirect
  --ready-file PATH   written with the base URL once the server listens

The knobs are reachable over HTTP while it runs:
  POST /_hub/faults {"cut": [{"file": "model-00001-of-00002.safetensors", "after": 4096, "then_stop": true}],
                     "rate_limit": 65536}
  GET /_hub/log, POST /_hub/log/clear, POST /_hub/reset, GET /_hub/repos
A cut with ``then_stop`` stops the server and this process exits (status 0): the "hub died
mid-download" case; start the process again on the same port to resume.
"""

from __future__ import annotations

import argparse
import signal
import sys

from .checkpoints import write_tiny_repo
from .server import HubServer


def _spec(text: str):
    name, _sep, rest = text.partition("=")
    parts = rest.split(",")
    directory, options = parts[0], {"private": False, "tokens": [], "refs": [], "commit": ""}
    for flag in parts[1:]:
        key, _sep, value = flag.partition("=")
        if key == "private":
            options["private"] = True
        elif key == "token":
            options["tokens"].append(value)
        elif key == "ref":
            options["refs"].append(value)
        elif key == "commit":
            options["commit"] = value
        else:
            raise SystemExit("unknown repository flag %r in %r" % (key, text))
    if not name or not directory:
        raise SystemExit("expected OWNER/NAME=DIR, got %r" % text)
    return name, directory, options


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_server", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--cdn-host", default=None, help="host name the LFS redirects point at (default: the request's, 127.0.0.1 and localhost swapped)"
    )
    parser.add_argument("--no-lfs-redirect", action="store_true", help="serve LFS files at /resolve directly")
    parser.add_argument("--repo", action="append", default=[])
    parser.add_argument("--tiny", action="append", default=[])
    parser.add_argument("--ready-file")
    args = parser.parse_args(argv)

    hub = HubServer(host=args.host, port=args.port, cdn_host=args.cdn_host, lfs_redirect=not args.no_lfs_redirect)
    for text in args.tiny:
        name, directory, options = _spec(text)
        write_tiny_repo(directory)
        hub.add_repo(name, directory, **options)
    for text in args.repo:
        name, directory, options = _spec(text)
        hub.add_repo(name, directory, **options)
    hub.start()
    signal.signal(signal.SIGTERM, lambda *_: hub.stop())
    for repo in hub.repos.values():
        print("serving %s at commit %s (%d files)" % (repo.repo_id, repo.commit, len(repo.files)), flush=True)
    print("listening on %s" % hub.url, flush=True)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as handle:
            handle.write(hub.url + "\n")
    try:
        hub.stopped.wait()
    except KeyboardInterrupt:
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
