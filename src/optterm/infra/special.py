"""scipy.special's functions, imported without loading numpy's developer tools.

Importing scipy.special imports scipy's bundled array-API layer, which copies numpy's namespace
with `hasattr` over `dir(numpy)`; numpy lists its lazily loaded submodules there, so the copy
imports all of them: numpy.f2py (the Fortran wrapper generator, ~87 ms with the argparse and
regular expressions it builds at import), numpy.testing, numpy.ma and numpy.polynomial (~13 ms
together in `optterm chain`). optterm uses none of them. Here they are registered first as lazy
modules (importlib.util.LazyLoader): the copy then sees module objects that load on their first
attribute access, so code that does use them still gets the real modules. `optterm chain NIFTY`
and the TUI's first chain pay scipy.special's own cost only.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

import numpy as np

__all__ = ["erfcx", "ndtr", "ndtri"]

# numpy submodules that nothing in optterm uses (numpy itself imports none of them eagerly).
_DEFERRED = ("f2py", "testing", "ma", "polynomial", "ctypeslib")


def _defer_numpy_tools() -> None:
    for name in _DEFERRED:
        full = f"numpy.{name}"
        if full in sys.modules:  # already imported (a test run): nothing to save
            continue
        spec = importlib.machinery.PathFinder.find_spec(full, np.__path__)
        if spec is None or spec.loader is None:
            continue
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        loader.exec_module(module)  # lazy: runs the module's code on first attribute access
        # Bound on the package as an import would, so numpy's __getattr__ is not asked for it.
        setattr(np, name, module)


_defer_numpy_tools()

from scipy.special import erfcx, ndtr, ndtri  # noqa: E402  # no stubs: ignored in [tool.mypy]
