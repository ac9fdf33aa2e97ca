# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Extract the options that `vllm serve` accepts from vLLM source, without importing vLLM.

The stand-in `vllm` of tests/standin_vllm must reject every flag the real `vllm serve` rejects.
Running the real parser needs torch and the whole vLLM stack, so this script reads the three
files that build the serve parser with `ast` instead:

* vllm/entrypoints/cli/serve.py         -- the `serve` subparser (argparse adds -h/--help)
* vllm/entrypoints/openai/cli_args.py   -- make_arg_parser(): model_tag, --headless, --config, FrontendArgs
* vllm/engine/arg_utils.py              -- EngineArgs/AsyncEngineArgs.add_cli_args()

Flag names in arg_utils.py are string literals; FrontendArgs flags are `--<field-name-with-dashes>`.
Whether a flag takes a value follows vLLM's `_compute_kwargs` rules on the config dataclass
field annotation (dataclass -> JSON value, bool -> BooleanOptionalAction with a `--no-` twin,
Literal -> choices, list/tuple/set -> nargs "+", int/float -> typed value, else a string), so the
config classes and the type aliases they use are read too (listed under `source.files_for_types`).
vllm/utils/argparse_utils.py is read for the argv rewrites FlexibleArgumentParser does first.

Source: a git dir at a tag (`--git-dir DIR --ref v0.13.0`) or an unpacked release
(`--src DIR`, e.g. the PyPI sdist or wheel; the commit then comes from vllm/_version.py).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

SERVE_FILES = (
    "vllm/entrypoints/cli/serve.py",
    "vllm/entrypoints/openai/cli_args.py",
    "vllm/engine/arg_utils.py",
)
ARGPARSE_UTILS = "vllm/utils/argparse_utils.py"
HUMAN_READABLE_INTS = {"max_model_len", "max_num_batched_tokens", "kv_cache_memory_bytes"}
NO_VALUE_ACTIONS = {"store_true", "store_false", "store_const", "count", "help", "version"}
BOOL_ACTION = "BooleanOptionalAction"
SEQUENCES = (
    ("list", "list"),
    ("List", "list"),
    ("Sequence", "list"),
    ("tuple", "tuple"),
    ("Tuple", "tuple"),
    ("set", "set"),
    ("Set", "set"),
)
DICTS = frozenset({"dict", "Dict", "Mapping", "MutableMapping"})
BUILTINS = frozenset({"bool", "int", "float", "str", "dict", "list", "tuple", "set", "bytes"})


class GitSource:
    """Reads files of one tag of a (bare) git directory, the way `fetch` brings a repository."""

    def __init__(self, git_dir: str, ref: str):
        self.git_dir = git_dir
        self.ref = ref
        self.commit = self._git("rev-parse", f"{ref}^{{commit}}").strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", "--git-dir", self.git_dir, *args], check=True, capture_output=True, text=True).stdout

    def read(self, path: str) -> str | None:
        """Return the file text at the tag, or None when the path does not exist there."""
        proc = subprocess.run(
            ["git", "--git-dir", self.git_dir, "show", f"{self.commit}:{path}"], capture_output=True, text=True, check=False
        )
        return proc.stdout if proc.returncode == 0 else None

    def describe(self) -> str:
        return f"git --git-dir {self.git_dir} show {self.ref}:<path> (commit {self.commit})"


class DirSource:
    """Reads files of an unpacked source tree or wheel (no git history available)."""

    def __init__(self, root: str):
        self.root = Path(root)
        self.commit = None

    def read(self, path: str) -> str | None:
        file = self.root / path
        return file.read_text(encoding="utf-8") if file.is_file() else None

    def short_commit_from_version_file(self) -> str | None:
        """setuptools-scm writes `__commit_id__ = 'g<sha>'` into vllm/_version.py of a release."""
        text = self.read("vllm/_version.py") or ""
        match = re.search(r"__commit_id__\s*=\s*commit_id\s*=\s*'g?([0-9a-f]+)'", text)
        return match.group(1) if match else None

    def describe(self) -> str:
        return f"files under {self.root}"


class Modules:
    """Parses vLLM modules on demand and resolves names through their imports."""

    def __init__(self, source):
        self.source = source
        self.cache: dict[str, tuple[str, ast.Module] | None] = {}
        self.read_paths: list[str] = []

    def load(self, module: str) -> tuple[str, ast.Module] | None:
        """Return (path, AST) for a dotted module name; None for modules outside the tree (torch, typing...)."""
        if module in self.cache:
            return self.cache[module]
        base = module.replace(".", "/")
        found = None
        for path in (f"{base}.py", f"{base}/__init__.py"):
            text = self.source.read(path) if module.startswith("vllm") else None
            if text is not None:
                found = (path, ast.parse(text, filename=path))
                self.read_paths.append(path)
                break
        self.cache[module] = found
        return found

    @staticmethod
    def top_level(tree: ast.Module):
        """Yield module-level statements, looking inside if/try blocks (TYPE_CHECKING imports)."""
        stack = list(reversed(tree.body))
        while stack:
            node = stack.pop()
            if isinstance(node, ast.If):
                stack.extend(reversed(node.body + node.orelse))
            elif isinstance(node, ast.Try):
                stack.extend(reversed(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]))
            else:
                yield node

    def _import_target(self, module: str, name: str) -> tuple[str, str] | None:
        """Find where `name` is imported from inside `module`: (other module, original name)."""
        loaded = self.load(module)
        if not loaded:
            return None
        path, tree = loaded
        for node in self.top_level(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        src = node.module or ""
                        if node.level:
                            pkg = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
                            pkg = pkg[: len(pkg) - (node.level - 1)]
                            src = ".".join(pkg + ([src] if src else []))
                        return src, alias.name
        return None

    def find(self, module: str, name: str, depth: int = 0):
        """Resolve `name` seen in `module` to ('class', module, ClassDef) or ('alias', module, expr) or None."""
        if depth > 12:
            return None
        loaded = self.load(module)
        if not loaded:
            return None
        for node in self.top_level(loaded[1]):
            if isinstance(node, ast.ClassDef) and node.name == name:
                return ("class", module, node)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return ("alias", module, node.value)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name and node.value is not None:
                return ("alias", module, node.value)
            if type(node).__name__ == "TypeAlias" and getattr(node.name, "id", None) == name:
                return ("alias", module, node.value)
        target = self._import_target(module, name)
        if target:
            return self.find(target[0], target[1], depth + 1)
        return None


def decorator_names(cls: ast.ClassDef) -> set[str]:
    names = set()
    for dec in cls.decorator_list:
        node = dec.func if isinstance(dec, ast.Call) else dec
        names.add(node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", ""))
    return names


def is_dataclass_def(mods: Modules, module: str, cls: ast.ClassDef, depth: int = 0) -> bool:
    """dataclasses.is_dataclass() is true for decorated classes and for subclasses of dataclasses."""
    if "dataclass" in decorator_names(cls):
        return True
    for base in cls.bases:
        if isinstance(base, ast.Name) and depth < 8:
            found = mods.find(module, base.id)
            if found and found[0] == "class" and is_dataclass_def(mods, found[1], found[2], depth + 1):
                return True
    return False


class TypeReader:
    """Turns an annotation AST into the flat set of 'type hints' vLLM's get_type_hints() would see."""

    def __init__(self, mods: Modules):
        self.mods = mods
        self.unresolved: set[str] = set()

    def hints(self, node: ast.AST, module: str, depth: int = 0) -> list[tuple]:
        """Return a list of atoms such as ('bool',), ('literal', values), ('list', elem_atoms), ('dataclass', name)."""
        if depth > 20:
            return [("other", "recursion")]
        if isinstance(node, ast.Constant):
            if node.value is None:
                return [("none",)]
            if isinstance(node.value, str):
                return self.hints(ast.parse(node.value, mode="eval").body, module, depth + 1)
            return [("other", repr(node.value))]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.hints(node.left, module, depth + 1) + self.hints(node.right, module, depth + 1)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, module, depth)
        if isinstance(node, ast.Name):
            return self._name(node.id, module, depth)
        if isinstance(node, ast.Attribute):
            return [("other", ast.unparse(node))]
        return [("other", ast.unparse(node))]

    def _name(self, name: str, module: str, depth: int) -> list[tuple]:
        if name in BUILTINS:
            return [(name,)]
        if name in {"Any", "Callable"}:
            return [("other", name)]
        found = self.mods.find(module, name)
        if found is None:
            self.unresolved.add(name)
            return [("other", name)]
        kind, where, node = found
        if kind == "class":
            return [("dataclass", name)] if is_dataclass_def(self.mods, where, node) else [("other", name)]
        return self.hints(node, where, depth + 1)

    def _subscript(self, node: ast.Subscript, module: str, depth: int) -> list[tuple]:
        head = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Optional":
            return self.hints(args[0], module, depth + 1) + [("none",)]
        if head == "Union":
            return [atom for arg in args for atom in self.hints(arg, module, depth + 1)]
        if head in ("Annotated", "SkipValidation"):
            # pydantic's SkipValidation[T] is Annotated[T, SkipValidation()] at run time
            return self.hints(args[0], module, depth + 1)
        if head == "Literal":
            return [("literal", tuple(self._literal_values(args, module, depth)))]
        if head in dict(SEQUENCES):
            ellipsis = any(isinstance(a, ast.Constant) and a.value is Ellipsis for a in args)
            elem = [a for a in args if not (isinstance(a, ast.Constant) and a.value is Ellipsis)]
            elem_atoms = self.hints(elem[0], module, depth + 1) if elem else [("other", "Any")]
            return [(dict(SEQUENCES)[head], tuple(elem_atoms), len(args), ellipsis)]
        if head in DICTS:
            return [("dict",)]
        if head in {"ClassVar", "InitVar"}:
            return [("skip", head)]
        if head not in {"type", "Callable"}:
            self.unresolved.add(f"{head}[...]")
        return [("other", head)]

    def _literal_values(self, args, module: str, depth: int) -> list:
        """Literal[...] may nest other Literal aliases (Literal["auto", RunnerType]); typing flattens them."""
        values = []
        for arg in args:
            if isinstance(arg, ast.Constant):
                values.append(arg.value)
                continue
            for atom in self.hints(arg, module, depth + 1):
                if atom[0] == "literal":
                    values.extend(atom[1])
                else:
                    values.append(f"<unresolved {ast.unparse(arg)}>")
        return values


def has(atoms, kind: str) -> bool:
    return any(a[0] == kind for a in atoms)


def first(atoms, kind: str):
    return next(a for a in atoms if a[0] == kind)


def literal_choices(atoms) -> list | None:
    """Mirror literal_to_kwargs: `choices` only when str is not also allowed (else it is just a metavar)."""
    values = first(atoms, "literal")[1]
    if has(atoms, "str") or any(isinstance(v, str) and v.startswith("<unresolved") for v in values):
        return None
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def field_spec(name: str, atoms: list[tuple]) -> dict:
    """Apply vLLM's _compute_kwargs branch order to one config field; returns argparse-like kwargs."""
    spec: dict = {}
    if has(atoms, "dataclass"):
        spec["type"] = "json"
    elif has(atoms, "bool"):
        spec["action"] = BOOL_ACTION
    elif has(atoms, "literal"):
        lit = first(atoms, "literal")
        spec["type"] = type(lit[1][0]).__name__ if lit[1] else "str"
        choices = literal_choices(atoms)
        if choices is not None:
            spec["choices"] = choices
    elif has(atoms, "tuple") or has(atoms, "list") or has(atoms, "set"):
        seq = next(a for a in atoms if a[0] in ("tuple", "list", "set"))
        spec["nargs"] = seq[2] if seq[0] == "tuple" and not seq[3] else "+"
        elem = list(seq[1])
        if has(elem, "literal") and literal_choices(elem) is not None:
            spec["choices"] = literal_choices(elem)
        elif has(elem, "int") and not has(elem, "str"):
            spec["type"] = "int"
        elif has(elem, "float") and not has(elem, "str"):
            spec["type"] = "float"
        else:
            spec["type"] = "str"
    elif has(atoms, "int"):
        spec["type"] = "human_readable_int" if name in HUMAN_READABLE_INTS else "int"
    elif has(atoms, "float"):
        spec["type"] = "float"
    else:
        spec["type"] = "str"
    if has(atoms, "none") and "action" not in spec:
        spec["none_ok"] = True
        if "choices" in spec:
            spec["choices"] = spec["choices"] + ["None"]
    return spec


class ParserWalker:
    """Walks the functions that build the serve parser and records every add_argument call."""

    def __init__(self, mods: Modules):
        self.mods = mods
        self.types = TypeReader(mods)
        self.options: list[dict] = []
        self.positionals: list[dict] = []
        self.notes: list[str] = []

    # -- config dataclass fields -------------------------------------------------------------
    def class_fields(self, module: str, cls: ast.ClassDef, depth: int = 0) -> dict[str, dict]:
        """Fields in definition order, base-class fields first, each turned into argparse kwargs."""
        result: dict[str, dict] = {}
        for base in cls.bases:
            if isinstance(base, ast.Name) and depth < 8:
                found = self.mods.find(module, base.id)
                if found and found[0] == "class" and is_dataclass_def(self.mods, found[1], found[2]):
                    result.update(self.class_fields(found[1], found[2], depth + 1))
        for node in cls.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                atoms = self.types.hints(node.annotation, module)
                if has(atoms, "skip"):
                    continue
                result[node.target.id] = field_spec(node.target.id, atoms)
        return result

    def resolve_class(self, module: str, name: str):
        found = self.mods.find(module, name)
        if not found or found[0] != "class":
            raise SystemExit(f"cannot resolve class {name} from {module}")
        return found[1], found[2]

    # -- walking add_cli_args / make_arg_parser ------------------------------------------------
    def walk_function(self, module: str, func: ast.FunctionDef, kwargs_vars: dict | None = None) -> None:
        """Process statements in order; conditional blocks are included (noted) since flags may appear there."""
        kwargs_vars = {} if kwargs_vars is None else kwargs_vars
        for stmt in func.body:
            self._statement(module, stmt, kwargs_vars)

    def _statement(self, module: str, stmt: ast.stmt, kwargs_vars: dict) -> None:
        if isinstance(stmt, ast.If):
            added_before = len(self.options)
            for inner in stmt.body + stmt.orelse:
                self._statement(module, inner, kwargs_vars)
            added = [opt["strings"][0] for opt in self.options[added_before:]]
            if added:
                shown = ", ".join(added[:3]) + (f" and {len(added) - 3} more" if len(added) > 3 else "")
                self.notes.append(f"{shown} added under `if {ast.unparse(stmt.test)}` in {module}; counted as accepted")
            return
        if isinstance(stmt, ast.For):
            self._for_loop(module, stmt, kwargs_vars)
            return
        if isinstance(stmt, ast.Assign):
            self._assign(module, stmt, kwargs_vars)
        elif isinstance(stmt, ast.AugAssign):
            self._kwargs_edit(stmt.target, None, kwargs_vars, augmented=True)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                self._kwargs_edit(target, None, kwargs_vars, delete=True)
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call):
                self._call(module, node, kwargs_vars)

    def _assign(self, module: str, stmt: ast.Assign, kwargs_vars: dict) -> None:
        value = stmt.value
        target = stmt.targets[0]
        if isinstance(target, ast.Name) and isinstance(value, ast.Call) and getattr(value.func, "id", "") == "get_kwargs":
            cls_module, cls = self.resolve_class(module, value.args[0].id)
            kwargs_vars[target.id] = self.class_fields(cls_module, cls)
        elif isinstance(target, ast.Subscript):
            self._kwargs_edit(target, value, kwargs_vars)

    def _kwargs_edit(self, target, value, kwargs_vars: dict, delete: bool = False, augmented: bool = False) -> None:
        """Handle `x_kwargs["field"]["attr"] = v`, `del x_kwargs[...][...]` and `... += ...`."""
        if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Subscript)):
            return
        var = target.value.value
        if not (isinstance(var, ast.Name) and var.id in kwargs_vars):
            return
        field = ast.literal_eval(target.value.slice)
        attr = ast.literal_eval(target.slice)
        spec = kwargs_vars[var.id].setdefault(field, {})
        if delete:
            spec.pop(attr, None)
        elif augmented:
            if attr == "choices":
                spec.pop("choices", None)
                self.notes.append(f"choices of field {field} are extended at run time; not validated")
        elif attr == "action":
            spec["action"] = value.value if isinstance(value, ast.Constant) else ast.unparse(value).rsplit(".", maxsplit=1)[-1]
        elif attr == "nargs":
            spec["nargs"] = ast.literal_eval(value)
        elif attr == "type":
            spec["type"] = "str"
            spec.pop("none_ok", None)
        elif attr == "default":
            pass

    def _for_loop(self, module: str, stmt: ast.For, kwargs_vars: dict) -> None:
        """`for key, value in x_kwargs.items(): group.add_argument(f"--{key.replace('_', '-')}", **value)`."""
        it = stmt.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "items"):
            raise SystemExit(f"unhandled loop in {module}: {ast.unparse(stmt)[:120]}")
        source = kwargs_vars[it.func.value.id]
        for call in ast.walk(stmt):
            if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "add_argument":
                pattern = ast.unparse(call.args[0])
                if "replace('_', '-')" not in pattern:
                    raise SystemExit(f"unexpected flag pattern {pattern}")
                for name, spec in source.items():
                    self._add(f"--{name.replace('_', '-')}", [], dict(spec), name)

    def _call(self, module: str, call: ast.Call, kwargs_vars: dict) -> None:
        func = call.func
        if not isinstance(func, ast.Attribute):
            return
        if func.attr == "add_argument":
            self._add_argument(call, kwargs_vars)
        elif func.attr == "add_cli_args" and isinstance(func.value, ast.Name):
            cls_module, cls = self.resolve_class(module, func.value.id)
            method = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "add_cli_args")
            self.walk_function(cls_module, method)
        elif func.attr == "pre_register_and_update":
            self.notes.append(
                "current_platform.pre_register_and_update(parser) runs at run time "
                "(vllm-ascend v0.13.0/v0.15.0rc1: adds the 'ascend' choice to --quantization, no new flags)"
            )

    def _add_argument(self, call: ast.Call, kwargs_vars: dict) -> None:
        strings = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if len(strings) != len(call.args):
            return  # f-string flags are handled by _for_loop
        spec: dict = {}
        for kw in call.keywords:
            if kw.arg is None:
                spec.update(self._splat(kw.value, kwargs_vars))
            elif kw.arg == "action":
                spec["action"] = kw.value.value if isinstance(kw.value, ast.Constant) else ast.unparse(kw.value).rsplit(".", maxsplit=1)[-1]
            elif kw.arg == "nargs":
                spec["nargs"] = ast.literal_eval(kw.value)
            elif kw.arg == "type":
                spec["type"] = {"int": "int", "float": "float"}.get(ast.unparse(kw.value), "str")
            elif kw.arg == "choices" and isinstance(kw.value, (ast.List, ast.Tuple)):
                spec["choices"] = [ast.literal_eval(e) for e in kw.value.elts]
        dest = None
        if not strings[0].startswith("-"):
            self.positionals.append({"name": strings[0], "nargs": spec.get("nargs")})
            return
        self._add(strings[0], strings[1:], spec, dest)

    def _splat(self, node: ast.AST, kwargs_vars: dict) -> dict:
        """`**x_kwargs["field"]` or `**{**x_kwargs["field"], "default": None}`."""
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in kwargs_vars:
            return dict(kwargs_vars[node.value.id][ast.literal_eval(node.slice)])
        if isinstance(node, ast.Dict):
            merged: dict = {}
            for key, value in zip(node.keys, node.values):
                if key is None:
                    merged.update(self._splat(value, kwargs_vars))
            return merged
        raise SystemExit(f"unhandled ** argument {ast.unparse(node)}")

    def _add(self, main: str, extra: list[str], spec: dict, dest: str | None) -> None:
        strings = [main, *extra]
        longs = [s for s in strings if s.startswith("--")]
        dest = dest or (longs[0] if longs else strings[0]).lstrip("-").replace("-", "_")
        self.options.append({"strings": strings, "dest": dest, "spec": spec})


def arity(spec: dict) -> str | int:
    """How many values an option takes on the command line: none/one/optional/many or a fixed count."""
    action = spec.get("action")
    if action in NO_VALUE_ACTIONS or action == BOOL_ACTION:
        return "none"
    nargs = spec.get("nargs")
    if nargs is None:
        return "one"
    if nargs == "?":
        return "optional"
    if nargs in ("+", "*"):
        return "many"
    return int(nargs)


def build_result(walker: ParserWalker) -> dict:
    """Expand BooleanOptionalAction into --no- forms and build the fixture's flag tables."""
    options: dict[str, dict] = {}
    aliases: dict[str, str] = {}
    boolean: set[str] = set()
    for opt in walker.options:
        spec = opt["spec"]
        kind = arity(spec)
        longs = [s for s in opt["strings"] if s.startswith("--")]
        shorts = [s for s in opt["strings"] if not s.startswith("--")]
        entry = {"dest": opt["dest"], "arity": kind}
        for key in ("type", "choices"):
            if key in spec and kind != "none":
                entry[key] = spec[key]
        if spec.get("none_ok") and kind != "none":
            entry["none_ok"] = True
        if spec.get("action") == "append":
            entry["repeatable"] = True
        for flag in longs:
            if flag in options:
                raise SystemExit(f"duplicate flag {flag}")
            options[flag] = dict(entry)
            if kind == "none":
                boolean.add(flag)
            if spec.get("action") == BOOL_ACTION:
                options[f"--no-{flag[2:]}"] = {"dest": opt["dest"], "arity": "none", "negates": flag}
                boolean.add(f"--no-{flag[2:]}")
        for short in shorts:
            aliases[short] = longs[0]
    return {"options": options, "aliases": aliases, "boolean": boolean}


def serve_subparser_facts(mods: Modules) -> dict:
    """Check serve.py builds the parser with make_arg_parser() and whether argparse adds -h/--help."""
    tree = mods.load("vllm.entrypoints.cli.serve")[1]
    facts = {"name": None, "usage": None, "add_help": True, "uses_make_arg_parser": False}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "ServeSubcommand":
            for item in node.body:
                if isinstance(item, ast.Assign) and getattr(item.targets[0], "id", "") == "name":
                    facts["name"] = item.value.value
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_parser":
            for kw in node.keywords:
                if kw.arg == "usage":
                    facts["usage"] = kw.value.value
                if kw.arg == "add_help":
                    facts["add_help"] = bool(kw.value.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "make_arg_parser":
            facts["uses_make_arg_parser"] = True
    return facts


def argv_rewrites(mods: Modules) -> dict:
    """FlexibleArgumentParser.parse_args rewrites argv before argparse sees it; detect which rewrites exist."""
    loaded = mods.load("vllm.utils.argparse_utils")
    consts: set = set()
    if loaded:
        for node in ast.walk(loaded[1]):
            if isinstance(node, ast.FunctionDef) and node.name == "parse_args":
                consts |= {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return {
        "underscores_to_dashes": "Replaces underscores with dashes in the matched string." in consts,
        "dotted_json_keys": any("." in c and "--" not in c for c in consts) and "+" in consts,
        "model_option_moved_to_positional": "--model" in consts,
        "config_file": "--config" in consts,
        "help_search": "--help=" in consts,
        "short_O": "--optimization-level" if {"-O", "--optimization-level"} <= consts else None,
    }


def sha256_text(text: str) -> str:
    """Lets anyone with the tag check the exact file that was read: `git show TAG:PATH | sha256sum`."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def extract(source, version: str, commit: str | None, tag: str, how: str, script_cmd: str) -> dict:
    """Run the whole extraction and return the fixture document."""
    mods = Modules(source)
    for path in SERVE_FILES:
        if source.read(path) is None:
            raise SystemExit(f"{path} missing in source")
    facts = serve_subparser_facts(mods)
    if facts["name"] != "serve" or not facts["uses_make_arg_parser"]:
        raise SystemExit(f"serve.py does not look as expected: {facts}")
    walker = ParserWalker(mods)
    cli_module = "vllm.entrypoints.openai.cli_args"
    cli_tree = mods.load(cli_module)[1]
    make_parser = next(n for n in cli_tree.body if isinstance(n, ast.FunctionDef) and n.name == "make_arg_parser")
    walker.walk_function(cli_module, make_parser)
    if facts["add_help"]:
        walker.options.insert(0, {"strings": ["-h", "--help"], "dest": "help", "spec": {"action": "help"}})
    rewrites = argv_rewrites(mods)
    result = build_result(walker)
    files_for_types = sorted(set(mods.read_paths) - set(SERVE_FILES) - {ARGPARSE_UTILS})
    hand_notes = []
    if facts["add_help"]:
        hand_notes.append(
            "-h/--help: added by argparse itself (serve.py's add_parser() does not pass add_help=False); the script adds it from that fact"
        )
    return {
        "vllm_version": version,
        "source": {
            "repository": "https://github.com/vllm-project/vllm",
            "tag": tag,
            "commit": commit,
            "obtained_from": how,
            "files": list(SERVE_FILES),
            "files_sha256": {path: sha256_text(source.read(path)) for path in (*SERVE_FILES, ARGPARSE_UTILS)},
            "files_for_argv_rewrites": [ARGPARSE_UTILS],
            "files_for_types": files_for_types,
            "added_by_hand": [],
            "derived_not_literal": hand_notes,
            "extraction_notes": sorted(set(walker.notes)),
            "unresolved_type_names": sorted(walker.types.unresolved),
        },
        "extracted_by": {
            "script": "scripts/extract_vllm_serve_args.py",
            "command": script_cmd,
            "method": "ast walk of make_arg_parser() -> FrontendArgs.add_cli_args -> AsyncEngineArgs/EngineArgs.add_cli_args; "
            "field kinds from config dataclass annotations with vLLM's _compute_kwargs rules; BooleanOptionalAction adds --no-<flag>",
        },
        "prog": f"vllm {facts['name']}",
        "usage": facts["usage"],
        "positional": walker.positionals[0] if walker.positionals else None,
        "flags": sorted(result["options"]),
        "boolean_flags": sorted(result["boolean"]),
        "aliases": dict(sorted(result["aliases"].items())),
        "argv_rewrites": rewrites,
        "options": dict(sorted(result["options"].items())),
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: write one fixture file per call."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--git-dir", help="bare git dir of vllm-project/vllm (from `fetch`)")
    where.add_argument("--src", help="unpacked vLLM release (sdist or wheel contents)")
    parser.add_argument("--ref", help="tag to read with --git-dir, e.g. v0.13.0")
    parser.add_argument("--version", required=True, help="vLLM version label, e.g. v0.13.0")
    parser.add_argument("--commit", help="full commit sha of the tag (with --src; must match vllm/_version.py)")
    parser.add_argument("--obtained-from", default=None, help="free text: how the --src tree was obtained")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.git_dir:
        source = GitSource(args.git_dir, args.ref or args.version)
        commit, how = source.commit, source.describe()
    else:
        source = DirSource(args.src)
        short = source.short_commit_from_version_file()
        commit = args.commit
        if commit and short and not commit.startswith(short):
            raise SystemExit(f"--commit {commit} does not match vllm/_version.py commit id {short}")
        how = args.obtained_from or source.describe()
        if short:
            how += f"; vllm/_version.py (setuptools-scm) records commit id g{short}"
    shown = shlex.join(["scripts/extract_vllm_serve_args.py", *(argv if argv is not None else sys.argv[1:])])
    doc = extract(source, args.version, commit, args.ref or args.version, how, shown)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(doc['flags'])} flags, {len(doc['boolean_flags'])} boolean, aliases {len(doc['aliases'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
