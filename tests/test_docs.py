"""The documents name no function, flag or file that does not exist.

Checked in README.md and every docs/*.md:

1. every dotted name ``numpy_alexnet.x.y`` resolves (import, then getattr);
2. every call written in inline code or in a code block, ``name(...)`` or
   ``a.b(...)``, names something that exists: a package-level object of
   numpy_alexnet (strictly, through every attribute, when the first name is
   one), a method of one of the package's classes when the receiver is a
   variable (``net.forward(...)``), or a Python builtin; calls into other
   libraries (``np.``, ``torch.`` ...) are not checked; a backticked
   ``Class.attr`` whose first name is a package object is resolved too;
   ``from numpy_alexnet... import a, b`` lines must import;
3. every ``numpy-alexnet <command> ... --flag`` (inline or in a code block) names
   a real (sub)command and flags that command's argparse parser accepts; a
   backticked ``--flag`` on its own must be accepted by the command of the
   section it sits in (a heading naming ``numpy-alexnet <command>``), or by
   some command when the section names none;
4. every relative link ``[text](path)`` and every repository path
   (``numpy_alexnet/...``, ``docs/...``, ``notebooks/...``, ``benchmarks/...``,
   ``tests/...``; short forms like ``layers/conv.py`` too) exists;
5. docs/index.md links every document in docs/, and docs/cli.md documents
   every command and every flag of the real parser: it is exactly what
   ``docs/make_cli_md.py`` renders from the parser now.

``test_the_checker_catches_bad_names`` feeds the checker a document full of
wrong names, so that it is known to be able to fail.
"""
from __future__ import annotations

import argparse
import builtins
import glob
import importlib
import importlib.util
import inspect
import pkgutil
import re
import shlex
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import numpy_alexnet

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


# Modules and objects of other libraries: calls into them are not checked.
EXTERNAL = {
    "np", "numpy", "torch", "torchvision", "tf", "tensorflow", "cupy", "cp", "numba", "plt",
    "matplotlib", "os", "sys", "json", "math", "pathlib", "Path", "pytest", "argparse", "pickle",
    "random", "time", "subprocess", "nbclient", "nbformat", "PIL", "Image", "scipy", "caffe",
    "xp", "itertools", "functools", "collections", "importlib", "shutil", "re", "tarfile", "io",
    "urllib", "copy", "pip", "python", "python3", "jupyter", "cuda", "tqdm", "platform",
}
# Other libraries' names written without their module, and mathematical notation
# (N(0, 0.01), f(x), ...) that documents write in code spans.
NOT_OURS = {"SGD", "N", "f", "g", "h", "exp", "log", "sqrt", "tanh", "floor", "ceil", "onehot",
            "argmax", "E"}
# Names that documents use for variables (and that are also submodule names).
VARIABLES = {"net", "data", "models", "optim", "loss"}
# Repository folders whose paths are checked, and output folders whose are not.
REPO_TOPS = {"numpy_alexnet", "docs", "notebooks", "benchmarks", "tests", "scripts"}
OUTPUT_TOPS = {"runs", "OUT", "out", "checkpoints", "cache", "work"}


# --------------------------------------------------------------------------- #
# What exists
# --------------------------------------------------------------------------- #
def _import_or_none(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:                 # an optional dependency (CuPy ...) is missing here
        return None


@lru_cache(maxsize=None)
def package_index():
    """(modules by name, package objects by short name, names of all members of its classes)."""
    modules = {"numpy_alexnet": numpy_alexnet}
    for info in pkgutil.walk_packages(numpy_alexnet.__path__, "numpy_alexnet."):
        if info.name.endswith("__main__"):              # importing it would run the CLI
            continue
        mod = _import_or_none(info.name)
        if mod is not None:
            modules[info.name] = mod
    objects, members = {}, set()
    for mod in modules.values():
        for name, obj in vars(mod).items():
            if name.startswith("__"):
                continue
            owner = getattr(obj, "__module__", "") or ""
            if inspect.ismodule(obj) or owner.startswith("numpy_alexnet"):
                objects.setdefault(name, []).append(obj)
            if inspect.isclass(obj) and owner.startswith("numpy_alexnet"):
                members.update(dir(obj))
    members.update(dir(np.ndarray))                      # x.reshape(...), y.astype(...)
    return modules, objects, members


def resolve_dotted(dotted: str) -> bool:
    """numpy_alexnet.a.b.c: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        modname = ".".join(parts[:cut])
        try:
            spec = importlib.util.find_spec(modname)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        mod = _import_or_none(modname)
        if mod is None:                 # exists, but needs a missing optional dependency
            return cut == len(parts) or _defined_in_source(spec.origin, parts[cut])
        obj = mod
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def _defined_in_source(path, name: str) -> bool:
    text = Path(path).read_text() if path else ""
    return re.search(rf"^(?:def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*=", text,
                     re.M) is not None


def resolve_chain(chain: str, local: set[str] = frozenset()) -> bool:
    """Does ``a.b.c`` (called, or written as a name) exist?  See the module docstring."""
    modules, objects, members = package_index()
    parts = chain.split(".")
    head = parts[0]
    if head == "numpy_alexnet":
        return resolve_dotted(chain)
    is_variable = head in local or head in VARIABLES
    if head in objects:                         # a package object: every attribute must exist
        for obj in objects[head]:
            ok = True
            for attr in parts[1:]:
                if not hasattr(obj, attr):
                    ok = False
                    break
                obj = getattr(obj, attr)
            if ok:
                return True
        # Only a variable that shares a submodule's name (`net.forward(...)`) goes on.
        if not (is_variable and all(inspect.ismodule(o) for o in objects[head])):
            return False
    elif head in EXTERNAL or head in NOT_OURS or hasattr(np, head) or hasattr(np.random, head):
        return True                             # another library's, or NumPy's written bare
    if len(parts) == 1:
        return head in local or head in members or hasattr(builtins, head)
    short_modules = [m for name, m in modules.items() if name.rsplit(".", 1)[-1] == head]
    if short_modules and not is_variable:     # viz.kernel_grid, backend.get_ops
        return any(resolve_dotted(m.__name__ + "." + ".".join(parts[1:])) for m in short_modules)
    # A variable's method: net.forward(...), trainer.fit(...), opt.step().
    return parts[-1] in members


# --------------------------------------------------------------------------- #
# Reading a document
# --------------------------------------------------------------------------- #
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)[^\n]*\n(.*?)^\1\s*$", re.M | re.S)
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CALL = re.compile(r"(?<![\w.$\\])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(")
DOTTED = re.compile(r"\bnumpy_alexnet(?:\.[A-Za-z_]\w*)+")
REPO_PATH = re.compile(r"(?<![\w./-])((?:numpy_alexnet|docs|notebooks|benchmarks|tests|scripts)"
                       r"/[\w./*-]*[\w/*])")


class Doc:
    """A markdown text split into prose (code blocks blanked), code blocks, inline spans."""

    def __init__(self, text: str, path: Path):
        self.text, self.path = text, path
        self.blocks = []                                   # (language, code)
        for m in FENCE.finditer(text):
            self.blocks.append((m.group(2).lower(), m.group(3)))
        self.prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        # Inline spans with the section heading they sit under.
        self.spans = []
        heading = ""
        for line in self.prose.splitlines():
            h = HEADING.match(line)
            if h:
                heading = h.group(1)
            for s in SPAN.finditer(line):
                self.spans.append((s.group(1), heading))

    def code_texts(self):
        """Inline spans and non-shell code blocks: where calls are checked."""
        for span, _ in self.spans:
            yield span, set()
        for lang, code in self.blocks:
            if lang in ("bash", "sh", "shell", "console", "zsh"):
                continue
            local = set(re.findall(r"\bdef\s+(\w+)", code)) | set(re.findall(r"^\s*(\w+)\s*=", code, re.M))
            local |= set(re.findall(r"\bimport\s+\w+\s+as\s+(\w+)", code))
            yield code, local


# --------------------------------------------------------------------------- #
# The checks: each returns a list of problems
# --------------------------------------------------------------------------- #
def check_dotted(doc: Doc) -> list[str]:
    return [f"{doc.path.name}: `{name}` does not resolve"
            for name in sorted(set(DOTTED.findall(doc.text))) if not resolve_dotted(name)]


def check_calls(doc: Doc) -> list[str]:
    problems = []
    for text, local in doc.code_texts():
        for name in CALL.findall(text):
            if not resolve_chain(name, local):
                problems.append(f"{doc.path.name}: `{name}(...)` names nothing in numpy_alexnet")
        imports = re.findall(r"from\s+(numpy_alexnet[\w.]*)\s+import\s+(?:\(([\w\s,]+)\)|([\w \t,]+))",
                             text)
        for mod, in_parens, on_line in imports:
            for n in (x.strip() for x in (in_parens or on_line).replace("\n", " ").split(",")):
                n = n.split(" as ")[0].strip()
                if n and not resolve_dotted(f"{mod}.{n}"):
                    problems.append(f"{doc.path.name}: `from {mod} import {n}` fails")
    modules, objects, _ = package_index()
    for span, _ in doc.spans:                   # `Class.attr` written without a call
        m = re.fullmatch(r"([A-Za-z_]\w*)(\.[A-Za-z_]\w*)+", span.strip())
        if m and any(not inspect.ismodule(o) for o in objects.get(m.group(1), [])) \
                and not resolve_chain(span.strip()):
            problems.append(f"{doc.path.name}: `{span}` does not resolve")
    return sorted(set(problems))


@lru_cache(maxsize=None)
def cli_parsers() -> dict[tuple, argparse.ArgumentParser]:
    """Every (sub)command path, () for the top level, with its parser."""
    from numpy_alexnet.cli import build_parser
    out = {}

    def walk(parser, path):
        out[path] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, path + (name,))
    walk(build_parser(), ())
    return out


def _subcommands(path: tuple) -> set[str]:
    return {p[len(path)] for p in cli_parsers() if len(p) == len(path) + 1 and p[:len(path)] == path}


def _is_placeholder(token: str) -> bool:
    return (token.isupper() or "..." in token or token.startswith(("<", "[", "{", "$"))
            or token in ("COMMAND", "SUBCOMMAND"))


def parse_command(tokens: list[str]) -> tuple[tuple | None, list[str]]:
    """(the command path, or None if a placeholder hides it; problems) of one command line."""
    problems, path, flags = [], (), []
    for tok in tokens:
        if tok.startswith("-"):
            flags.append((path, tok))
            continue
        subs = _subcommands(path)
        if subs:
            if tok in subs:
                path = path + (tok,)
            elif _is_placeholder(tok):
                path = None
                break
            else:
                problems.append(f"`numpy-alexnet {' '.join(path + (tok,))}`: no such command "
                                f"(expected one of {', '.join(sorted(subs))})")
                return path, problems
    for where, tok in flags:
        if not tok.startswith("--"):
            continue
        flag = tok.split("=", 1)[0]
        # A flag before the sub-command belongs to that level's parser; else to the final one.
        parser = cli_parsers()[path if path is not None and where == path else where]
        if flag not in parser._option_string_actions and \
                (path is None or flag not in cli_parsers()[path]._option_string_actions):
            problems.append(f"`numpy-alexnet {' '.join((path or where))} {flag}`: "
                            "the parser does not accept this flag")
    return path, problems


def _shell_texts(doc: Doc) -> list[str]:
    texts = [span for span, _ in doc.spans]
    for lang, code in doc.blocks:
        if lang in ("", "bash", "sh", "shell", "console", "zsh", "text"):
            texts.extend(re.sub(r"\\\n\s*", " ", code).splitlines())
    # Indented code blocks (four spaces) are commands too.
    texts.extend(line for line in re.sub(r"\\\n\s*", " ", doc.prose).splitlines()
                 if re.match(r"( {4}|\t)\S", line))
    return texts


def script_lines(doc: Doc):
    """(script path, tokens after it) for 'python path/to/script.py ...' command lines."""
    for text in _shell_texts(doc):
        for m in re.finditer(r"python3?\s+([\w./-]+\.py)\b([^|;&#]*)", text):
            yield m.group(1), m.group(2).split()


def command_lines(doc: Doc):
    """Token lists after 'numpy-alexnet' / 'python -m numpy_alexnet', inline or in blocks."""
    for text in _shell_texts(doc):
        text = re.sub(r"(^|\s)#.*$", "", text.strip().lstrip("$ "))
        for segment in re.split(r"&&|\|\||;|\|", text):
            try:
                tokens = shlex.split(segment)
            except ValueError:
                tokens = segment.split()
            for i, tok in enumerate(tokens):
                if tok.endswith("numpy-alexnet"):
                    yield tokens[i + 1:]
                    break
                if tok == "-m" and i + 1 < len(tokens) and tokens[i + 1] == "numpy_alexnet":
                    yield tokens[i + 2:]
                    break


def subcommand_spans(doc: Doc):
    """Token lists of backticked spans that start with a sub-command and give it a flag,
    such as `train --model MODEL` (the command named without 'numpy-alexnet')."""
    for span, _ in doc.spans:
        try:
            tokens = shlex.split(span)
        except ValueError:
            tokens = span.split()
        if len(tokens) > 1 and tokens[0] in _subcommands(()) \
                and any(t.startswith("--") for t in tokens[1:]):
            yield tokens


def check_cli(doc: Doc) -> list[str]:
    problems = []
    for tokens in [*command_lines(doc), *subcommand_spans(doc)]:
        problems += [f"{doc.path.name}: {p}" for p in parse_command(tokens)[1]]
    # Flags of the repository's scripts (python benchmarks/x.py --flag): the script must
    # define them (as the string '--flag'); a backticked flag of a script is not ours.
    script_flags = set()
    for script, tokens in script_lines(doc):
        path = ROOT / script
        if not path.exists():
            continue                            # a missing script is check_paths' business
        source = path.read_text()
        for tok in tokens:
            flag = tok.split("=", 1)[0]
            if flag.startswith("--"):
                script_flags.add(flag)
                if f'"{flag}"' not in source and f"'{flag}'" not in source:
                    problems.append(f"{doc.path.name}: `python {script} {flag}`: the script "
                                    "defines no such flag")
    parsers = cli_parsers()
    all_flags = {f for p in parsers.values() for f in p._option_string_actions}
    for span, heading in doc.spans:
        for flag in re.findall(r"(?:^|\s)(--[\w-]+)", span.strip()) if span.strip().startswith("--") else []:
            if flag not in script_flags:
                problems += _check_flag(doc, flag, heading, parsers, all_flags)
    return sorted(set(problems))


def _check_flag(doc, flag, heading, parsers, all_flags) -> list[str]:
    """A backticked numpy-alexnet flag on its own, in the section it sits in."""
    context = None
    h = re.search(r"numpy-alexnet\s+([\w -]+)", heading.replace("`", ""))
    if h:
        path, _ = parse_command(h.group(1).split())
        context = parsers.get(path) if path else None
    accepted = flag in (context._option_string_actions if context is not None else all_flags)
    if accepted:
        return []
    return [f"{doc.path.name}: `{flag}` (section '{heading}') is not a flag of "
            + ("that command" if context is not None else "any command")]


def _path_exists(p: str, base: Path) -> bool:
    p = p.rstrip("/")
    for root in (ROOT, base, ROOT / "numpy_alexnet"):
        if any(ch in p for ch in "*?["):
            if glob.glob(str(root / p)):
                return True
        elif (root / p).exists():
            return True
    return False


def check_paths(doc: Doc) -> list[str]:
    problems, base = [], doc.path.parent
    for target in LINK.findall(doc.prose):
        if re.match(r"^[a-z][\w+.-]*:", target) or target.startswith("#"):
            continue                                       # http:, mailto:, an anchor
        path = target.split("#", 1)[0]
        if path and not (base / path).exists():
            problems.append(f"{doc.path.name}: link to {target}: no such file")
    candidates = set(REPO_PATH.findall(doc.text))
    for span, _ in doc.spans:                              # short forms: `layers/conv.py`
        s = span.strip()
        if re.fullmatch(r"[\w.*-]+(/[\w.*-]+)+/?", s) and not s.startswith(("..", "/", "~")):
            top = s.split("/", 1)[0]
            if top in OUTPUT_TOPS:
                continue
            if top in REPO_TOPS or any((r / top).is_dir() for r in (ROOT, base, ROOT / "numpy_alexnet")):
                candidates.add(s)
    for p in sorted(candidates):
        p = p.rstrip(".,:;")
        if not _path_exists(p, base):
            problems.append(f"{doc.path.name}: {p}: no such file or folder in the repository")
    return problems


CHECKS = (check_dotted, check_calls, check_cli, check_paths)


def problems_in(doc: Doc) -> list[str]:
    return [p for check in CHECKS for p in check(doc)]


# --------------------------------------------------------------------------- #
# Tests
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_doc_names_only_what_exists(path):
    problems = problems_in(Doc(path.read_text(), path))
    assert not problems, "\n".join(problems)


def test_index_links_every_document():
    index = DOCS / "index.md"
    assert index.exists(), "docs/index.md is missing"
    linked = {t.split("#")[0] for t in LINK.findall(index.read_text())}
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "index.md" and p.name not in linked]
    assert not missing, f"docs/index.md does not link {missing}"


def test_cli_reference_is_complete():
    """Every command and every flag of the real parser appears in docs/cli.md."""
    cli_md = DOCS / "cli.md"
    if not cli_md.exists():
        pytest.skip("docs/cli.md not written yet")
    text = cli_md.read_text()
    missing = []
    for path, parser in cli_parsers().items():
        if path and f"numpy-alexnet {' '.join(path)}" not in text:
            missing.append(f"command `numpy-alexnet {' '.join(path)}`")
        for action in parser._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt not in ("--help",) and opt not in text:
                    missing.append(f"`{' '.join(('numpy-alexnet',) + path)} {opt}`")
    assert not missing, "docs/cli.md lacks: " + ", ".join(missing)


def _cli_md_generator():
    """docs/make_cli_md.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("make_cli_md", DOCS / "make_cli_md.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_what_the_generator_renders_now():
    """A flag, a default or a help text changed since docs/cli.md was written fails here."""
    rendered = _cli_md_generator().render()
    written = (DOCS / "cli.md").read_text()
    assert written == rendered, ("docs/cli.md is stale: run `python docs/make_cli_md.py` "
                                 "and commit the result")


def test_the_cli_reference_check_sees_a_changed_flag(monkeypatch):
    """The comparison above can fail: a parser with one more flag renders another page."""
    generator = _cli_md_generator()
    build = generator.build_parser

    def with_extra_flag():
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices["summary"].add_argument("--an-extra-flag", help="not in docs/cli.md")
        return parser
    monkeypatch.setattr(generator, "build_parser", with_extra_flag)
    rendered = generator.render()
    assert "--an-extra-flag" in rendered and rendered != (DOCS / "cli.md").read_text()


BAD_DOC = """
# A document with mistakes

See `numpy_alexnet.layers.NoSuchLayer` and numpy_alexnet.no_such_module.thing.
Call `no_such_function(x)` or `Sequential.no_such_method()` or `MomentumSGD.stepp`.

```python
from numpy_alexnet import alexnet, not_a_model
net = alexnet()
net.frobnicate(3)
net.forward(x)
```

```bash
python benchmarks/bench_data.py --no-such-bench-flag
numpy-alexnet summary alexnet --no-such-flag
numpy-alexnet trian --epochs 3
numpy-alexnet summary MODEL --num-classes 10 --num-classess 3
```

## `numpy-alexnet summary`

`--num-classes` is fine here, `--epochs` is not a flag of this command.
`train --modle MODEL` names the command without numpy-alexnet; `train --model MODEL` too.

Read [the missing page](no_such_page.md) and `numpy_alexnet/layers/nope.py`,
and `layers/nope2.py`, and docs/nowhere.md.
"""

EXPECTED_CATCHES = [
    "numpy_alexnet.layers.NoSuchLayer", "numpy_alexnet.no_such_module.thing", "no_such_function",
    "Sequential.no_such_method", "MomentumSGD.stepp", "not_a_model", "net.frobnicate",
    "--no-such-flag", "trian", "--num-classess", "`--epochs` (section", "no_such_page.md",
    "numpy_alexnet/layers/nope.py", "layers/nope2.py", "docs/nowhere.md", "--no-such-bench-flag",
    "`numpy-alexnet train --modle`",
]
FINE_IN_BAD_DOC = ["`alexnet(...)`", "`--num-classes`", "--num-classes`", "net.forward",
                   "train --model`"]


def test_the_checker_catches_bad_names():
    problems = "\n".join(problems_in(Doc(BAD_DOC, DOCS / "bad.md")))
    missed = [s for s in EXPECTED_CATCHES if s not in problems]
    assert not missed, f"the checker missed {missed}; it reported:\n{problems}"
    wrongly = [s for s in FINE_IN_BAD_DOC if s in problems]
    assert not wrongly, f"the checker flagged correct names {wrongly}:\n{problems}"
