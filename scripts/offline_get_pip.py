"""Offline stand-in for the get-pip.py that ansible-test downloads.

ansible-test runs it as ``python get_pip.py <pip install args>``. Here pip
comes from ensurepip, then the requested install runs through pip itself.
"""

import ensurepip
import os
import runpy
import sys

DROPPED = {"--no-setuptools", "--no-wheel"}


def main():
    saved = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    # ensurepip sets PIP_CONFIG_FILE=/dev/null, which hides the machine's pip
    # configuration (and its CA bundle); restore the environment first.
    os.environ.clear()
    os.environ.update(saved)
    args = [arg for arg in sys.argv[1:] if arg not in DROPPED]
    if args:
        sys.argv = ["pip", "install"] + args
        runpy.run_module("pip", run_name="__main__")


if __name__ == "__main__":
    main()
