"""The package's shape: no import cycles, the priors behind their interface, light imports."""
import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "jaxvq")


def _modules() -> dict:
  """dotted name -> path of every module of jaxvq (a package is its __init__)."""
  modules = {}
  for root, _, names in os.walk(PACKAGE):
    for name in names:
      if name.endswith(".py"):
        parts = os.path.relpath(os.path.join(root, name), REPO)[:-3].split(os.sep)
        if parts[-1] == "__init__":
          parts = parts[:-1]
        modules[".".join(parts)] = os.path.join(root, name)
  return modules


def _ancestors(module: str) -> list:
  parts = module.split(".")
  return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict) -> dict:
  """module -> the jaxvq modules it imports, counting every import statement (those inside
  functions too). Importing a.b.c also runs the packages a and a.b, except those the importer
  itself lies in (they are running already); `from a import name` imports a.name when that is
  a module, else a itself (an attribute of a's __init__, which must then have run)."""
  graph = {}
  for module, path in modules.items():
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    targets = set()
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                          + ([base] if base else []))
        named = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                 for alias in node.names]
      else:
        continue
      for name in named:
        if name in modules:
          targets.add(name)
          targets.update(a for a in _ancestors(name) if a not in _ancestors(module))
    targets.discard(module)
    graph[module] = targets
  return graph


def cycles(graph: dict) -> list:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph.get(v, ()):
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

  sys.setrecursionlimit(10000)
  for v in sorted(graph):
    if v not in index:
      visit(v)
  return found


def test_the_package_has_no_import_cycle():
  assert cycles(import_graph(_modules())) == []


def test_the_cycle_finder_finds_a_cycle_through_a_package_init():
  graph = import_graph(_modules())
  # As if the config package imported the training loop, which imports the config.
  graph["jaxvq.config"] = graph["jaxvq.config"] | {"jaxvq.train.loop"}
  assert any("jaxvq.config" in c and "jaxvq.train.loop" in c for c in cycles(graph))
  assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# The only imports of jaxvq's own modules placed inside a function, and why.
LATE_IMPORTS = {
    "jaxvq.__main__": "`jaxvq` with no command prints its usage without loading JAX",
}


def test_no_import_is_placed_late_to_dodge_a_cycle():
  """Imports inside functions for what is heavy or optional (PIL, matplotlib, tensorboardX,
  TFDS, skimage, ...), and for jaxvq's own modules only where LATE_IMPORTS says why."""
  late = []
  for module, path in _modules().items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for inner in ast.walk(node):
          if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("jaxvq") or (
              isinstance(inner, ast.Import) and any(a.name.startswith("jaxvq")
                                                     for a in inner.names)):
            late.append(module)
  assert sorted(set(late)) == sorted(LATE_IMPORTS)


def test_only_the_priors_and_the_registry_name_the_pixelcnn():
  """Everything else serves any prior through its interface (jaxvq/priors/base.py); compat
  reads workdirs of jaxvq 0.1 and 0.2, whose only prior was the PixelCNN."""
  outside = []
  for module, path in _modules().items():
    if module.startswith("jaxvq.priors") or module in ("jaxvq.registry", "jaxvq.compat"):
      continue
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      names = ([a.name for a in node.names] + [getattr(node, "module", None) or ""]
               if isinstance(node, (ast.Import, ast.ImportFrom)) else [])
      if any("pixelcnn" in n.lower() for n in names) or (
          isinstance(node, ast.Constant) and node.value in ("pixelcnn", "jaxvq.priors.pixelcnn")):
        outside.append(f"{module}:{node.lineno}")
  assert outside == []


@pytest.mark.parametrize("module", ["jaxvq.ops.vq", "jaxvq"])
def test_the_math_imports_without_the_training_stack(module):
  code = (f"import sys, {module}; heavy = [m for m in ('orbax', 'grain', 'tensorflow_datasets', "
          f"'optax') if m in sys.modules]; print(heavy)")
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                        check=True)
  assert done.stdout.strip() == "[]"
