"""User plugins: Python modules that register tasks (``@register``), mutations
(``@register_mutation``) or ops (``register_op``), imported in the driver and in every worker.

A plugin is named by a module name (``my_tasks``, ``lab.optevo_tasks``: found on ``sys.path``
with the current directory first, as ``python -m`` does) or by a ``.py`` file path
(``tasks/my_task.py``). The config key ``plugins:`` and the repeatable ``--import`` flag list
them; :func:`import_plugins` runs in the driver before the config is validated (so that a
plugin's task name and mutation names are known to it), and :func:`resolve` turns each into a
:class:`Plugin` that names where it was found, so that a Ray worker (another process, maybe
another working directory) imports the very same file. A plugin that fails to import is a
one-line :class:`PluginError` naming the plugin, the file and line that raised, and the
exception; in a worker it stops the search at once (``workers.WorkerError``).

Importing a plugin runs its code: it is the user's own module, like a pytest plugin. Nothing
from a run directory or a program file is ever imported.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import Iterable, List, Tuple

from optevo.dsl.errors import OptevoError


class PluginError(OptevoError):
    """A plugin that cannot be found or raised while being imported (one line)."""


@dataclasses.dataclass(frozen=True)
class Plugin:
    """A plugin as found in the driver: ``module`` its module name, ``root`` the directory to
    put on ``sys.path`` (a module) or ``file`` the absolute path of a ``.py`` file."""

    name: str  # as the user wrote it
    module: str
    root: str = ""
    file: str = ""


def _is_file(name: str) -> bool:
    return name.endswith(".py") or os.sep in name or "/" in name


def _where(e: BaseException) -> str:
    """``file:line`` of the innermost frame of ``e`` outside importlib, or ''."""
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if "importlib" not in f.filename and not f.filename.endswith("plugins.py")]
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""


def _fail(name: str, e: BaseException) -> PluginError:
    text = str(e).replace("\n", " ")
    return PluginError(f"plugin {name}: {_where(e)}{type(e).__name__}"
                       f"{': ' + text if text else ''}")


def _load_file(name: str, path: Path, module: str):
    if module in sys.modules and getattr(sys.modules[module], "__file__", None) == str(path):
        return sys.modules[module]
    if not path.is_file():
        raise PluginError(f"plugin {name}: no such file {path}")
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException as e:
        sys.modules.pop(module, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        raise _fail(name, e) from None
    return mod


def _load_module(name: str, module: str, root: str = ""):
    for path in ([root] if root else []) + [os.getcwd()]:
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise PluginError(f"plugin {name}: no module named {e.name!r} (give a module on "
                              "the Python path or a .py file)") from None
        raise _fail(name, e) from None
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        raise _fail(name, e) from None


def _root_of(mod, module: str) -> str:
    """The ``sys.path`` entry ``module`` was found under."""
    path = Path(mod.__file__).resolve()
    up = module.count(".") + (2 if path.name == "__init__.py" else 1)
    for _ in range(up):
        path = path.parent
    return str(path)


def resolve(name: str) -> Plugin:
    """Import the plugin ``name`` here (the driver) and say where it was found."""
    if not isinstance(name, str) or not name.strip():
        raise PluginError(f"plugin {name!r}: expected a module name or a .py file")
    if _is_file(name):
        path = Path(name).expanduser().resolve()
        module = "optevo_plugin_" + "".join(c if c.isalnum() else "_" for c in path.stem)
        _load_file(name, path, module)
        return Plugin(name, module, file=str(path))
    mod = _load_module(name, name)
    return Plugin(name, name, root=_root_of(mod, name) if getattr(mod, "__file__", None) else "")


def import_plugins(names: Iterable[str]) -> Tuple[Plugin, ...]:
    """Import every plugin in the driver (in order, each once); their resolved forms."""
    out: List[Plugin] = []
    for name in names:
        p = resolve(name)
        if p not in out:
            out.append(p)
    return tuple(out)


def load(plugins: Iterable[Plugin]) -> None:
    """Import resolved plugins in this process (a worker): the same files as the driver's."""
    for p in plugins:
        if p.file:
            _load_file(p.name, Path(p.file), p.module)
        else:
            _load_module(p.name, p.module, p.root)
