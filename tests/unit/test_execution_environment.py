"""The execution environment: what ``ansible-builder`` makes of execution-environment.yml and of npu.fleet's EE metadata.

Building the image needs the base image from a registry, which is not reachable
here; ``ansible-builder create`` writes the whole build context without one, and
``ansible-builder introspect`` is the step of the build that reads the installed
collections' metadata. Both run for real on the files of this checkout.
"""

import os
import shutil
import subprocess
import sys

import ansible
import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements
from bindep.depends import Depends

from conftest import REPO_ROOT

BIN = os.path.dirname(sys.executable)
BUILDER = os.path.join(BIN, "ansible-builder")
GALAXY = os.path.join(BIN, "ansible-galaxy")
# What execution-environment.yml reads from the project, relative to it.
PROJECT_FILES = ("execution-environment.yml", "collections/requirements.yml")
# community.docker as the `ansible` package installs it beside ansible-core.
COMMUNITY_DOCKER = os.path.join(os.path.dirname(os.path.dirname(ansible.__file__)), "ansible_collections", "community", "docker")


def _yaml(*path):
    with open(os.path.join(REPO_ROOT, *path), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _lines(path):
    """Requirement lines of a pip or bindep file, without comments and blanks."""
    with open(path, encoding="utf-8") as handle:
        return [line.split("#", 1)[0].strip() for line in handle if line.split("#", 1)[0].strip()]


def _run(command, tmp):
    """In ``tmp``: the checkout's ansible.cfg would show ansible-galaxy this checkout as npu.fleet, already installed."""
    env = dict(os.environ, ANSIBLE_HOME=str(tmp / "ansible-home"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    result = subprocess.run(command, cwd=str(tmp), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, "%s\n%s\n%s" % (" ".join(command), result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    """The collection tarball, built from this checkout as the EE build expects it (build/npu-fleet-<version>.tar.gz)."""
    tmp = tmp_path_factory.mktemp("ee-tarball")
    _run([GALAXY, "collection", "build", "--output-path", str(tmp / "build"), REPO_ROOT], tmp)
    (path,) = (tmp / "build").glob("npu-fleet-*.tar.gz")
    assert path.name == "npu-fleet-%s.tar.gz" % _yaml("galaxy.yml")["version"]
    return path


@pytest.fixture(scope="module")
def context(tmp_path_factory, tarball):
    """``ansible-builder create`` on a copy of the project files (the checkout itself stays untouched)."""
    tmp = tmp_path_factory.mktemp("ee-context")
    project = tmp / "project"
    for name in PROJECT_FILES:
        os.makedirs(os.path.dirname(str(project / name)), exist_ok=True)
        shutil.copy(os.path.join(REPO_ROOT, name), str(project / name))
    os.makedirs(str(project / "build"))
    shutil.copy(str(tarball), str(project / "build" / tarball.name))
    result = _run(
        [
            BUILDER,
            "create",
            "-f",
            str(project / "execution-environment.yml"),
            "-c",
            str(tmp / "context"),
            "--output-filename",
            "Containerfile",
        ],
        tmp,
    )
    assert "No matches" not in result.stdout + result.stderr
    return tmp / "context"


def test_containerfile_installs_core_runner_and_the_collections_in_order(context):
    definition = _yaml("execution-environment.yml")
    assert definition["version"] == 3
    text = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % definition["images"]["base_image"]["name"] in text
    assert 'ARG PYCMD="%s"' % definition["dependencies"]["python_interpreter"]["python_path"] in text
    refs = [line for line in text.splitlines() if line.startswith("ARG ANSIBLE_INSTALL_REFS=")]
    assert refs == [
        'ARG ANSIBLE_INSTALL_REFS="%s %s"'
        % (definition["dependencies"]["ansible_core"]["package_pip"], definition["dependencies"]["ansible_runner"]["package_pip"])
    ]
    assert "ansible-core>=2.19" in refs[0] and "ansible-runner>=" in refs[0]
    # community.docker from the requirements file first, then npu.fleet from its tarball, offline:
    # the tarball's own dependency must already be satisfied by then.
    from_requirements = text.index("ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml")
    from_tarball = text.index("ansible-galaxy collection install --offline --collections-path /usr/share/ansible/collections")
    assert from_requirements < from_tarball
    assert "/build/collections/npu-fleet-*.tar.gz" in text[from_tarball:].splitlines()[0]
    # The builder stage reads every installed collection's EE metadata, the final stage installs the result.
    assert text.index("introspect.py introspect") < text.index("install-from-bindep")
    assert text.rstrip().endswith('CMD ["bash"]')


def test_context_carries_the_galaxy_requirements_and_the_tarball(context, tarball):
    assert yaml.safe_load((context / "_build" / "requirements.yml").read_text()) == _yaml("collections", "requirements.yml")
    copied = context / "_build" / "collections" / tarball.name
    assert copied.read_bytes() == tarball.read_bytes()


def test_galaxy_requirements_match_the_collection_dependencies():
    declared = _yaml("galaxy.yml")["dependencies"]
    required = dict((item["name"], item["version"]) for item in _yaml("collections", "requirements.yml")["collections"])
    assert sorted(required) == sorted(declared)
    for name, bound in declared.items():
        # The same lower bound as galaxy.yml, and an upper bound: the major release tested here.
        assert required[name].split(",")[0] == bound
        assert "<" in required[name]
    # The community.docker of the `ansible` package these tests run with satisfies it; 3.x and 5.x do not.
    with open(os.path.join(COMMUNITY_DOCKER, "MANIFEST.json"), encoding="utf-8") as handle:
        installed = yaml.safe_load(handle)["collection_info"]["version"]
    assert meets_requirements(installed, required["community.docker"])
    assert not meets_requirements("3.13.0", required["community.docker"])
    assert not meets_requirements("5.0.0", required["community.docker"])


def test_installed_collection_declares_its_ee_dependencies(tmp_path, tarball):
    """Install the tarball as the EE build does, then run the build's introspection step over it."""
    collections = tmp_path / "collections"
    _run([GALAXY, "collection", "install", "--offline", "-p", str(collections), str(tarball)], tmp_path)
    installed = collections / "ansible_collections" / "npu" / "fleet"
    meta = yaml.safe_load((installed / "meta" / "execution-environment.yml").read_text())
    assert meta["version"] == 1
    assert (installed / meta["dependencies"]["python"]).is_file()
    assert (installed / meta["dependencies"]["system"]).is_file()
    # community.docker beside it, as in the image (it brings its own EE metadata).
    os.makedirs(str(collections / "ansible_collections" / "community"), exist_ok=True)
    os.symlink(COMMUNITY_DOCKER, str(collections / "ansible_collections" / "community" / "docker"))

    result = _run([BUILDER, "introspect", str(collections)], tmp_path)
    data = yaml.safe_load(result.stdout)
    ours = " # from collection npu.fleet"
    system = [line.split("#")[0].strip() for line in data["system"] if line.replace("  ", " ").endswith(ours)]
    python = [line.split("#")[0].strip() for line in data.get("python") or [] if line.replace("  ", " ").endswith(ours)]
    assert system == _lines(os.path.join(REPO_ROOT, "bindep.txt"))
    assert python == _lines(os.path.join(REPO_ROOT, "requirements.txt"))
    # Introspection read community.docker too: the image gets its Python client.
    assert "docker  # from collection community.docker" in data["python"]


def test_bindep_names_an_ssh_client_on_both_package_families():
    rules = Depends(open(os.path.join(REPO_ROOT, "bindep.txt"), encoding="utf-8").read())
    assert [rule[0] for rule in rules.active_rules(["default", "platform:rpm", "platform:centos"])] == ["openssh-clients"]
    assert [rule[0] for rule in rules.active_rules(["default", "platform:dpkg", "platform:debian"])] == ["openssh-client"]
