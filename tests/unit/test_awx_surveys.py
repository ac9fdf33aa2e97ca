"""AWX job templates as code: the surveys in awx/surveys/ and playbooks/awx/configure.yml.

Every survey is checked by the rules AWX applies when a survey spec is saved
(awx/api/views JobTemplateSurveySpec._validate_spec_data) and when a job is
launched (integer bounds, choices); every survey variable must be one the
playbooks read, with a question type that gives the value the role expects.
"""

import glob
import json
import os
import re
import subprocess
import sys

import ansible
import pytest
import yaml
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.parsing.plugin_docs import read_docstring

from conftest import COLLECTIONS_PATH, REPO_ROOT

SURVEY_DIR = os.path.join(REPO_ROOT, "awx", "surveys")
SURVEYS = sorted(glob.glob(os.path.join(SURVEY_DIR, "*.json")))
CONFIGURE = os.path.join(REPO_ROOT, "playbooks", "awx", "configure.yml")
# AWX's question types and the Python type of their default (JobTemplateSurveySpec.ALLOWED_TYPES).
ALLOWED_TYPES = {
    "text": str,
    "textarea": str,
    "password": str,
    "multiplechoice": str,
    "multiselect": str,
    "integer": int,
    "float": (float, int),
}
CHOICE_TYPES = ("multiplechoice", "multiselect")
# Read by the example inventory's catalogue (inventory/example/group_vars/all/models.yml), not by a
# role: it turns into replicas 0 for the models left out (test_example_inventory.py renders it).
INVENTORY_VARIABLES = {"npu_fleet_models_selected"}
JINJA = re.compile(r"\{\{(.*?)\}\}", re.S)
NPU_FLEET_NAME = re.compile(r"\bnpu_fleet_[a-z0-9_]+\b")


def _load_yaml(path):
    class _Loader(yaml.SafeLoader):
        pass

    # configure.yml marks the credential injector templates !unsafe (AWX renders them, not Ansible).
    _Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def _choices(item):
    choices = item.get("choices")
    if isinstance(choices, str):
        return [choice for choice in choices.splitlines() if choice.strip()]
    return choices


def _defaults(item):
    default = item.get("default")
    if default in (None, ""):
        return []
    if isinstance(default, str):
        return [value for value in default.splitlines() if value.strip()]
    return list(default)


def survey_errors(survey):
    """AWX's save-time and launch-time rules for a survey spec; returns the list of what breaks them."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            errors.append("%s must be a %s" % (field, kind.__name__))
    if errors:
        return errors
    if not survey["spec"]:
        errors.append("spec has no questions")
    seen = set()
    for index, item in enumerate(survey["spec"]):
        where = "question %d" % index
        if not isinstance(item, dict):
            errors.append("%s is not an object" % where)
            continue
        for field in ("type", "question_name", "variable"):
            if not isinstance(item.get(field), str) or not item[field].strip():
                errors.append("%s: %s must be a non-empty string" % (where, field))
        if not isinstance(item.get("required"), bool):
            errors.append("%s: required must be a boolean" % where)
        variable, qtype = item.get("variable"), item.get("type")
        if not isinstance(variable, str) or not re.match(r"^[a-z_][a-z0-9_]*$", variable):
            errors.append("%s: variable %r is not an Ansible variable name" % (where, variable))
        elif variable in seen:
            errors.append("%s: variable %s duplicated" % (where, variable))
        seen.add(variable)
        if qtype not in ALLOWED_TYPES:
            errors.append("%s: type %r is not one of %s" % (where, qtype, ", ".join(ALLOWED_TYPES)))
            continue
        default = item.get("default")
        if default not in (None, "") and (isinstance(default, bool) or not isinstance(default, ALLOWED_TYPES[qtype])):
            errors.append("%s: default %r is not a %s" % (where, default, qtype))
        for key in ("min", "max"):
            if item.get(key) is not None and (isinstance(item[key], bool) or not isinstance(item[key], int)):
                errors.append("%s: %s must be an integer" % (where, key))
        low, high = item.get("min"), item.get("max")
        if qtype == "integer" and (not isinstance(low, int) or not isinstance(high, int)):
            errors.append("%s: an integer question needs min and max" % where)
        elif isinstance(low, int) and isinstance(high, int) and low > high:
            errors.append("%s: min %d exceeds max %d" % (where, low, high))
        if qtype in ("integer", "float") and isinstance(default, (int, float)) and not isinstance(default, bool):
            if (isinstance(low, int) and default < low) or (isinstance(high, int) and default > high):
                errors.append("%s: default %r is outside min..max" % (where, default))
        if qtype in ("text", "textarea", "password") and isinstance(default, str) and default:
            if (isinstance(low, int) and len(default) < low) or (isinstance(high, int) and len(default) > high):
                errors.append("%s: default is shorter than min or longer than max" % where)
        if qtype in CHOICE_TYPES:
            choices = _choices(item)
            if not isinstance(choices, list) or not choices or not all(isinstance(choice, str) for choice in choices):
                errors.append("%s: a %s question needs choices (text)" % (where, qtype))
                continue
            if len(set(choices)) != len(choices):
                errors.append("%s: choices repeat" % where)
            defaults = _defaults(item)
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append("%s: a multiplechoice question has one default" % where)
            if any(value not in choices for value in defaults):
                errors.append("%s: default %r is not among the choices" % (where, item.get("default")))
        elif "choices" in item and item["choices"] not in (None, "", []):
            errors.append("%s: choices on a %s question" % (where, qtype))
    return errors


def _role_options():
    """Role variable name -> its argument spec (type, ...), from every roles/*/meta/argument_specs.yml."""
    options = {}
    for path in glob.glob(os.path.join(REPO_ROOT, "roles", "*", "meta", "argument_specs.yml")):
        for entry in (_load_yaml(path).get("argument_specs") or {}).values():
            options.update(entry.get("options") or {})
    return options


def _jinja_names(value):
    """npu_fleet_* names used inside {{ }} anywhere in a loaded YAML value."""
    if isinstance(value, dict):
        return set().union(set(), *(_jinja_names(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(set(), *(_jinja_names(item) for item in value))
    if isinstance(value, str):
        return set(name for expression in JINJA.findall(value) for name in NPU_FLEET_NAME.findall(expression))
    return set()


def _names_read_by_roles_and_playbooks():
    """npu_fleet_* names the roles' defaults and the playbooks read (a role default such as
    ``report_dir: "{{ npu_fleet_report_dir | default(...) }}"``, a module argument of a play)."""
    names = set()
    paths = glob.glob(os.path.join(REPO_ROOT, "roles", "*", "defaults", "main.yml"))
    paths += glob.glob(os.path.join(REPO_ROOT, "playbooks", "*.yml"))
    for path in paths:
        names |= _jinja_names(_load_yaml(path))
    return names


def _names_read_by_example_inventory():
    """npu_fleet_* names the example inventory's own values read (in another variable's value)."""
    names = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "inventory", "example", "group_vars", "**", "*.yml"), recursive=True):
        for key, value in (_load_yaml(path) or {}).items():
            names |= _jinja_names(value) - {key}
    return names


def _names_read_by_plugins():
    """npu_fleet_* names the controller-side plugins read from the task's variables (the report_dir lookup)."""
    names = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "plugins", "lookup", "*.py")) + glob.glob(
        os.path.join(REPO_ROOT, "plugins", "action", "*.py")
    ):
        with open(path, encoding="utf-8") as handle:
            names |= set(re.findall(r"""(?:variables|task_vars)\.get\(["'](npu_fleet_[a-z0-9_]+)["']""", handle.read()))
    return names


def _aliases():
    """npu_fleet_* name -> the role variable whose default reads it (``fleet_status_timeout: "{{ npu_fleet_status_timeout | default(30) }}"``)."""
    aliases = {}
    for path in glob.glob(os.path.join(REPO_ROOT, "roles", "*", "defaults", "main.yml")):
        for key, value in (_load_yaml(path) or {}).items():
            match = re.match(r"^\{\{\s*(npu_fleet_[a-z0-9_]+)\b", value) if isinstance(value, str) else None
            if match:
                aliases[match.group(1)] = key
    return aliases


def _names_read_by_playbooks_only():
    names = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "playbooks", "*.yml")):
        names |= _jinja_names(_load_yaml(path))
    return names


ROLE_OPTIONS = _role_options()
ALIASES = _aliases()
ACCEPTED = set(ROLE_OPTIONS) | _names_read_by_roles_and_playbooks() | _names_read_by_plugins()


def _survey(name):
    with open(os.path.join(SURVEY_DIR, name), encoding="utf-8") as handle:
        return json.load(handle)


def _configure_tasks():
    (play,) = _load_yaml(CONFIGURE)
    return dict((task["name"], task) for task in play["tasks"])


def test_the_variable_lookup_is_not_empty():
    # The sources exist and are read: options of several roles, npu_fleet_ names from defaults and playbooks.
    assert {"preflight_strict", "serve_rollback", "serve_api_key", "health_probe_wait", "report_dir"} <= set(ROLE_OPTIONS)
    assert {"npu_fleet_report_dir", "npu_fleet_models", "npu_fleet_drain_timeout"} <= ACCEPTED
    assert "npu_fleet_no_such_setting" not in ACCEPTED
    assert "npu_fleet_report_dir" in _names_read_by_plugins()
    assert ALIASES["npu_fleet_status_timeout"] == "fleet_status_timeout"
    assert "npu_fleet_models_selected" not in _names_read_by_roles_and_playbooks()
    assert INVENTORY_VARIABLES <= _names_read_by_example_inventory()


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"type": "boolean"}, "is not one of"),
        ({"required": "yes"}, "required must be a boolean"),
        ({"type": "multiplechoice", "choices": ["a", "b"], "default": "c"}, "not among the choices"),
        ({"type": "multiplechoice", "choices": ["a", "b"], "default": "a\nb"}, "one default"),
        ({"type": "multiselect", "default": "a"}, "needs choices"),
        ({"type": "integer", "default": 5}, "needs min and max"),
        ({"type": "integer", "min": 10, "max": 20, "default": 5}, "outside min..max"),
        ({"type": "integer", "min": 1, "max": 20, "default": "5"}, "is not a integer"),
        ({"type": "text", "min": 1, "max": 3, "default": "four"}, "longer than max"),
        ({"variable": "npu-fleet"}, "not an Ansible variable name"),
    ],
)
def test_the_rules_reject_a_broken_question(broken, message):
    question = {"question_name": "Q", "variable": "npu_fleet_x", "type": "text", "required": True, "default": "a"}
    question.update(broken)
    errors = survey_errors({"name": "s", "description": "", "spec": [question]})
    assert any(message in error for error in errors), errors


def test_the_rules_reject_a_duplicate_variable_and_an_empty_spec():
    question = {"question_name": "Q", "variable": "npu_fleet_x", "type": "text", "required": True}
    assert any("duplicated" in error for error in survey_errors({"name": "s", "description": "", "spec": [question, question]}))
    assert survey_errors({"name": "s", "description": "", "spec": []}) == ["spec has no questions"]


def test_configure_applies_every_survey_file():
    assert [os.path.basename(path) for path in SURVEYS] == ["deploy.json", "plan.json", "status.json", "undeploy.json"]
    with open(CONFIGURE, encoding="utf-8") as handle:
        text = handle.read()
    used = set(re.findall(r"survey: (\w+\.json)", text)) | set(re.findall(r"'/(\w+\.json)'", text))
    assert used == set(os.path.basename(path) for path in SURVEYS)


@pytest.mark.parametrize("path", SURVEYS, ids=os.path.basename)
def test_survey_follows_awx_rules(path):
    with open(path, encoding="utf-8") as handle:
        survey = json.load(handle)
    assert survey_errors(survey) == []


@pytest.mark.parametrize("path", SURVEYS, ids=os.path.basename)
def test_survey_variables_are_read_by_the_playbooks(path):
    with open(path, encoding="utf-8") as handle:
        variables = [item["variable"] for item in json.load(handle)["spec"]]
    unknown = [name for name in variables if name not in ACCEPTED | INVENTORY_VARIABLES]
    assert unknown == []


@pytest.mark.parametrize("path", SURVEYS, ids=os.path.basename)
def test_survey_answers_have_the_type_the_roles_expect(path):
    with open(path, encoding="utf-8") as handle:
        questions = json.load(handle)["spec"]
    checked = 0
    for item in questions:
        spec = ROLE_OPTIONS.get(item["variable"]) or ROLE_OPTIONS.get(ALIASES.get(item["variable"]))
        if spec is None:
            # Only a variable the playbooks, a plugin or the inventory read (undeploy's selection, the report
            # directory, the model selection) may lack a role's argument spec.
            assert item["variable"] in _names_read_by_playbooks_only() | _names_read_by_plugins() | INVENTORY_VARIABLES, item["variable"]
            continue
        checked += 1
        if spec["type"] == "bool":
            # AWX has no boolean question: a choice of texts that Ansible's bool conversion reads.
            assert item["type"] == "multiplechoice"
            assert sorted(boolean(choice) for choice in _choices(item)) == [False, True]
        elif spec["type"] in ("int", "float"):
            assert item["type"] in ("integer", "float") if spec["type"] == "float" else item["type"] == "integer"
        else:
            assert spec["type"] in ("str", "path") and item["type"] in ("text", "textarea", "password", "multiplechoice")
    assert checked > 0 or os.path.basename(path) == "undeploy.json"


@pytest.mark.parametrize("path", [path for path in SURVEYS if os.path.basename(path) in ("deploy.json", "plan.json")], ids=os.path.basename)
def test_model_choices_are_the_example_catalogue(path):
    with open(path, encoding="utf-8") as handle:
        (question,) = [item for item in json.load(handle)["spec"] if item["variable"] == "npu_fleet_models_selected"]
    catalogue = _load_yaml(os.path.join(REPO_ROOT, "inventory", "example", "group_vars", "all", "models.yml"))
    names = [entry["name"] for entry in catalogue["npu_fleet_model_catalogue"]]
    assert question["type"] == "multiselect"
    assert _choices(question) == names
    assert _defaults(question) == names


def test_deploy_survey_asks_the_issue_questions():
    variables = [item["variable"] for item in _survey("deploy.json")["spec"]]
    assert {"npu_fleet_models_selected", "preflight_strict", "serve_rollback", "npu_fleet_report_dir"} <= set(variables)


def test_job_templates_run_the_root_playbooks_and_prompt_for_limit():
    task = _configure_tasks()["Create the job templates"]
    templates = dict((item["name"], item) for item in task["loop"])
    assert dict((name, item["playbook"]) for name, item in templates.items()) == {
        "deploy": "deploy-models.yml",
        "plan": "plan-models.yml",
        "status": "fleet-status.yml",
        "undeploy": "undeploy-models.yml",
    }
    # AWX can only select a playbook file of the project checkout (not one inside a collection).
    missing = [item["playbook"] for item in templates.values() if not os.path.isfile(os.path.join(REPO_ROOT, item["playbook"]))]
    assert missing == []
    assert task["awx.awx.job_template"]["ask_limit_on_launch"] is True
    assert dict((name, item["survey"]) for name, item in templates.items()) == {
        "deploy": "deploy.json",
        "plan": "plan.json",
        "status": "status.json",
        "undeploy": "undeploy.json",
    }


def test_serving_secrets_are_secret_and_never_logged():
    tasks = _configure_tasks()
    credential_type = tasks["Create the credential type of the serving secrets"]["awx.awx.credential_type"]
    fields = credential_type["inputs"]["fields"]
    assert [field["id"] for field in fields] == ["serve_api_key", "hub_token"]
    assert all(field["secret"] is True for field in fields)
    injected = credential_type["injectors"]["extra_vars"]
    assert injected["serve_api_key"] == "{{ serve_api_key }}"
    # The key reaches the roles under the name they read.
    assert "serve_api_key" in ROLE_OPTIONS
    assert tasks["Create the credential of the serving secrets"]["no_log"] is True
    # No other task passes the secrets.
    for name, task in tasks.items():
        if "npu_fleet_awx_serve_api_key" in json.dumps(task) and not name.startswith("Check"):
            assert task.get("no_log") is True, name


def test_workflow_is_plan_approval_deploy_status():
    workflow = _configure_tasks()["Create the workflow plan -> approval -> deploy -> status"]["awx.awx.workflow_job_template"]
    nodes = dict((node["identifier"], node) for node in workflow["workflow_nodes"])
    edges = [
        (name, kind, target["identifier"])
        for name, node in nodes.items()
        for kind, targets in (node.get("related") or {}).items()
        for target in targets
    ]
    assert sorted(edges) == [
        ("approve", "success_nodes", "deploy"),
        ("deploy", "always_nodes", "status"),
        ("plan", "success_nodes", "approve"),
    ]
    assert nodes["approve"]["unified_job_template"]["type"] == "workflow_approval"
    assert [nodes[name]["unified_job_template"]["type"] for name in ("plan", "deploy", "status")] == ["job_template"] * 3
    assert workflow["ask_limit_on_launch"] is True


def test_every_module_is_named_by_fqcn():
    (play,) = _load_yaml(CONFIGURE)
    keywords = {"name", "loop", "loop_control", "no_log", "when", "register", "vars"}
    modules = [key for task in play["tasks"] for key in task if key not in keywords]
    assert modules and all(module.startswith(("awx.awx.", "ansible.builtin.")) for module in modules)


def _options(spec):
    """Documented option names and their aliases -> the option's documentation."""
    names = {}
    for name, doc in (spec or {}).items():
        for key in [name] + list(doc.get("aliases") or []):
            names[key] = doc
    return names


def _unknown_keys(value, options, where):
    """Keys of ``value`` that the documented ``options`` (recursively, through suboptions) do not have."""
    unknown = []
    for key, item in value.items():
        if key not in options:
            unknown.append("%s.%s" % (where, key))
            continue
        suboptions = _options(options[key].get("suboptions"))
        if suboptions and isinstance(item, dict):
            unknown += _unknown_keys(item, suboptions, "%s.%s" % (where, key))
        elif suboptions and isinstance(item, list):
            for index, element in enumerate(item):
                if isinstance(element, dict):
                    unknown += _unknown_keys(element, suboptions, "%s.%s[%d]" % (where, key, index))
    return unknown


def test_awx_module_arguments_are_documented_options():
    """ansible-lint does not check these modules' arguments (templated values): compare with their DOCUMENTATION."""
    modules_dir = os.path.join(
        os.path.dirname(os.path.dirname(ansible.__file__)), "ansible_collections", "awx", "awx", "plugins", "modules"
    )
    checked = []
    for name, task in _configure_tasks().items():
        for module, args in task.items():
            if module.startswith("awx.awx."):
                doc = read_docstring(os.path.join(modules_dir, module.split(".")[-1] + ".py"))["doc"]
                assert _unknown_keys(args, _options(doc["options"]), module) == [], name
                checked.append(module)
    assert "awx.awx.workflow_job_template" in checked and "awx.awx.job_template" in checked
    # The comparison sees a misspelt argument, also inside a workflow node.
    assert _unknown_keys({"ask_limit_on_lunch": True}, _options({"ask_limit_on_launch": {}}), "m") == ["m.ask_limit_on_lunch"]


def test_configure_playbook_syntax(tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_HOME=str(tmp_path / "home"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "--syntax-check", CONFIGURE],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "playbook: %s" % CONFIGURE in result.stdout
