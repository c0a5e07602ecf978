"""The repository's import graph: no cycle among its modules, and nothing outside the data factory imports it.

Both are read from the source (ast), top-level and function-level imports alike, so a cycle cannot hide in a
function body and a factory import cannot hide behind a rarely taken branch.
"""
import ast
from pathlib import Path
from typing import Dict, List, Set

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ('agents', 'benchmarks', 'configs', 'datasets', 'evaluation', 'experiment', 'networks', 'scripts')
FACTORY = ('datasets.ogbench_gen', 'datasets.exorl_gen')


def module_files() -> Dict[str, Path]:
    """Module name -> file, for main.py and every module of the repository's packages (tests aside)."""
    files = {'main': REPO / 'main.py'}
    for package in PACKAGES:
        for path in (REPO / package).rglob('*.py'):
            parts = path.relative_to(REPO).with_suffix('').parts
            files['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = path
    return files


def imports_of(path: Path, modules: Set[str]) -> Set[str]:
    """The repository modules `path` imports anywhere in its body: `from p import name` counts as p.name when that
    is a module, else as p."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f'{node.module}.{alias.name}'
                found.add(name if name in modules else node.module)
    return found & modules


def import_graph() -> Dict[str, Set[str]]:
    files = module_files()
    return {name: imports_of(path, set(files)) - {name} for name, path in files.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_among_the_repository_modules():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_a_cycle():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_nothing_outside_the_data_factory_imports_it():
    in_factory = lambda name: any(name == f or name.startswith(f + '.') for f in FACTORY)
    offenders = {name: sorted(filter(in_factory, deps)) for name, deps in import_graph().items()
                 if not in_factory(name) and any(map(in_factory, deps))}
    assert offenders == {}


def test_environment_names_are_tested_only_by_the_families():
    """What a dataset name means (ExORL, single-task) is decided in datasets/names.py and datasets/families.py."""
    import re

    pattern = re.compile(r"""startswith\(\s*['"]exorl-|['"]singletask['"]\s+(not\s+)?in\b""")
    allowed = {REPO / 'datasets' / 'names.py', REPO / 'datasets' / 'families.py'}
    offenders = sorted(str(path.relative_to(REPO)) for path in module_files().values()
                       if path not in allowed and pattern.search(path.read_text()))
    assert offenders == []


def test_every_flag_is_a_typed_setting():
    import dataclasses

    from absl import flags

    from experiment.settings import Settings, define_flags

    flag_values = flags.FlagValues()
    define_flags(flag_values)
    assert set(flag_values) == {field.name for field in dataclasses.fields(Settings)}
