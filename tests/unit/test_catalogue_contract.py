"""The catalogue contract: one schema, documented from itself, and every field accepted by every stage.

The first wave's defect was a catalogue field one stage documented and
another refused (``force: true`` made the planner fail). Here every field of
``_catalogue.FIELDS``, with its example value, goes through every stage's
real entry point on a real emulated host: the catalogue check, image
selection, the planner, the container spec. And every place that documents
catalogue fields names only fields the schema has.
"""

import importlib.util
import os
import re

import pytest
import yaml

from ansible_collections.npu.fleet.plugins.module_utils._catalogue import FIELDS, SOURCE_FIELDS, validate_catalogue
from ansible_collections.npu.fleet.plugins.module_utils._fleet_plan import plan
from ansible_collections.npu.fleet.plugins.module_utils._image_select import image_selection
from ansible_collections.npu.fleet.plugins.module_utils._model_profile import profile_model
from ansible_collections.npu.fleet.plugins.module_utils._replica import replica_specs
from conftest import REPO_ROOT
from emulated_host import emulated_host, profile_named, run
from model_checkpoints import fixture_dir

NAMES = [field.name for field in FIELDS]
# Values that make sense on the emulated 8 x 910B4 host (CANN 8.x): an image the rules accept there.
EXAMPLES = {"hosts": ["a2"], "labels": {}, "port": 18080}


@pytest.fixture()
def host(tmp_path, monkeypatch, capsys):
    """npu_facts of the emulated 8 x 910B4 host, discovered by the real module."""
    return run(capsys, emulated_host(tmp_path, monkeypatch, profile_named("a2-910b4-8x32g")))["ansible_facts"]["npu"]


@pytest.fixture(scope="module")
def qwen8():
    return profile_model(fixture_dir("Qwen__Qwen3-8B"))


def entry_with(field, qwen8):
    entry = {"name": "qwen3-8b", "profile": qwen8, "host_path": "/data/models/qwen3-8b"}
    entry[field.name] = EXAMPLES.get(field.name, field.example)
    if field.name == "profile":
        entry["profile"] = qwen8
    if field.name == "force":
        entry["image"] = dict((field.name, field) for field in FIELDS)["image"].example
    if field.name == "path":
        entry["path"] = fixture_dir("Qwen__Qwen3-8B")
    return entry


@pytest.mark.parametrize("name", NAMES)
def test_every_field_is_accepted_by_every_stage(name, host, qwen8):
    field = dict((field.name, field) for field in FIELDS)[name]
    (entry,) = validate_catalogue([entry_with(field, qwen8)])
    selection = image_selection([entry], host, {"backend": "auto"}, host_name="a2")
    assert selection["qwen3-8b"]["backend"] in ("vllm", "transformers")
    planned = plan(
        {"a2": {"chips": host["chips"], "preflight_ok": True}},
        [entry],
        image_selector=lambda model, _host: {"backend": selection[model["name"]]["backend"], "image": selection[model["name"]]["image"]},
    )
    assert planned["placements"] or entry.get("replicas") == 0, planned["unplaced"]
    specs = replica_specs(planned["placements"], "a2", [entry], host["driver_mounts"], {})
    assert len(specs) == len(planned["placements"])


def _argspec_fields(role, option):
    with open(os.path.join(REPO_ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    return spec["argument_specs"]["main"]["options"][option]["options"]


@pytest.mark.parametrize("role, option", [("image_select", "image_select_models"), ("serve", "serve_models")])
def test_role_argument_specs_list_exactly_the_schema(role, option):
    options = _argspec_fields(role, option)
    assert list(options) == NAMES
    for field in FIELDS:
        assert options[field.name]["type"] == field.kind
        assert options[field.name].get("choices") == (list(field.choices) if field.choices else None)
        assert options[field.name].get("elements") == field.elements


def test_documents_name_only_fields_the_schema_has():
    with open(os.path.join(REPO_ROOT, "docs", "catalogue.md"), encoding="utf-8") as handle:
        documented = re.findall(r"^\| `([a-z_]+)` \| ", handle.read(), re.M)
    serve_fields = ["extra_args", "env", "dtype", "shm_size"]
    assert documented == NAMES + serve_fields + [field.name for field in SOURCE_FIELDS]
    with open(os.path.join(REPO_ROOT, "plugins", "modules", "fleet_plan.py"), encoding="utf-8") as handle:
        doc = handle.read().split("  current:", 1)[0].split("  models:", 1)[1]
    named = set(re.findall(r"C\(([a-z_]+)\)", doc)) - {"npu_fleet_catalogue"}
    assert named and named <= set(NAMES), named - set(NAMES)


def test_generated_documents_are_current():
    spec = importlib.util.spec_from_file_location("gen_catalogue_doc", os.path.join(REPO_ROOT, "scripts", "gen_catalogue_doc.py"))
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.main(["--check"]) == 0, "run `%s`" % generator.COMMAND
