"""Can an editor and a type checker follow the project's own imports?

    python -m benchmarks.static_imports [--mypy]

jedi (the engine behind several editors' "go to definition"), given the project's ``.venv`` as
its environment, is asked for the definition of every name imported from ``tfx_gan`` in the
project's modules (every ``from tfx_gan.x import y`` name and ``import tfx_gan.x`` module):
resolved means it lands in a file of this repository. With ``--mypy``, mypy checks the packages
(``-p tfx_gan``, the .venv as its Python) and the count of "import-not-found" errors for modules of
ours is reported (third-party modules without stubs are not counted). Prints the shares and the
unresolved imports.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import time

from tfx_gan import PACKAGES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE_DIRS = ("tfx_gan", *PACKAGES, "benchmarks", "tests")


def project_files() -> list[str]:
    files = []
    for top in CODE_DIRS:
        for directory, subdirs, names in os.walk(os.path.join(ROOT, top)):
            subdirs[:] = [d for d in subdirs if d != "__pycache__" and not os.path.islink(os.path.join(directory, d))]
            files += [os.path.join(directory, n) for n in names if n.endswith(".py")]
    return sorted(files)


def internal_imports(path: str) -> list[tuple[int, int, str]]:
    """(line, column, what) of every name the file imports from tfx_gan: the column of the name."""
    source = open(path).read()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfx_gan"):
            for alias in node.names:
                # the name's own position: search it on the statement's lines
                for offset in range(node.lineno - 1, (node.end_lineno or node.lineno)):
                    match = re.search(rf"\b{re.escape(alias.name)}\b", lines[offset].split("import", 1)[-1]
                                      if offset == node.lineno - 1 else lines[offset])
                    if match:
                        shift = len(lines[offset].split("import", 1)[0]) + len("import") if offset == node.lineno - 1 else 0
                        found.append((offset + 1, shift + match.start(), f"{node.module}.{alias.name}"))
                        break
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tfx_gan."):
                    column = lines[node.lineno - 1].index(alias.name) + len(alias.name) - 1
                    found.append((node.lineno, column, alias.name))
    return found


def deferred_imports() -> tuple[int, int, list[str]]:
    """Imports of our own modules inside function bodies in the product's packages (not tests or
    benchmarks): (inside functions, all, where each deferred one is)."""
    inside, total, where = 0, 0, []
    for path in project_files():
        if os.path.relpath(path, ROOT).split(os.sep)[0] not in ("tfx_gan", *PACKAGES):
            continue
        tree = ast.parse(open(path).read())
        nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f)}
        for node in ast.walk(tree):
            modules = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                       [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(m == "tfx_gan" or m.startswith("tfx_gan.") for m in modules):
                total += 1
                if id(node) in nested:
                    inside += 1
                    where.append(f"{os.path.relpath(path, ROOT)}:{node.lineno}")
    return inside, total, where


def check_jedi() -> tuple[int, int, list[str]]:
    import jedi

    environment = jedi.create_environment(os.path.join(ROOT, ".venv"), safe=False)
    project = jedi.Project(ROOT, environment_path=os.path.join(ROOT, ".venv"))
    resolved, total, missing = 0, 0, []
    for path in project_files():
        imports = internal_imports(path)
        if not imports:
            continue
        script = jedi.Script(open(path).read(), path=path, project=project, environment=environment)
        for line, column, what in imports:
            total += 1
            targets = script.goto(line, column, follow_imports=True)
            places = [os.path.realpath(str(t.module_path)) for t in targets if t.module_path]
            if places and all(p.startswith(ROOT + os.sep) for p in places):
                resolved += 1
            else:
                missing.append(f"{os.path.relpath(path, ROOT)}:{line} {what} -> {places or 'nothing'}")
    return resolved, total, missing


def check_mypy() -> tuple[int, list[str]]:
    result = subprocess.run([sys.executable, "-m", "mypy", "--python-executable", os.path.join(ROOT, ".venv", "bin",
                             "python"), "--follow-imports=silent", "--no-error-summary", "-p", "tfx_gan"],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    ours = [line for line in result.stdout.splitlines()
            if "import-not-found" in line and re.search(r'module named "tfx_gan', line)]
    return len(ours), ours


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mypy", action="store_true", help="also run mypy on the packages (a minute or two)")
    args = parser.parse_args(argv)
    inside, all_imports, where = deferred_imports()
    print(f"imports of our modules inside functions (product code): {inside} of {all_imports}")
    for line in where:
        print(f"  deferred: {line}")
    started = time.perf_counter()
    resolved, total, missing = check_jedi()
    print(f"jedi: {resolved} of {total} internal imports resolved to the project's files "
          f"({100 * resolved / max(total, 1):.1f}%) in {time.perf_counter() - started:.0f} s")
    for line in missing:
        print(f"  unresolved: {line}")
    if args.mypy:
        started = time.perf_counter()
        count, lines = check_mypy()
        print(f"mypy -p tfx_gan: {count} import-not-found error(s) for modules of ours "
              f"({time.perf_counter() - started:.0f} s)")
        for line in lines:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
