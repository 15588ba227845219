"""Feast without typeguard's import-time instrumentation: `import feast` in 3 s instead of 10-14 s.

Feast decorates its classes with typeguard's `@typechecked`, which instruments every method when the module is
imported by parsing and compiling the module's whole source again, once per method (typeguard issue #468):
about 260 of them made `import feast` take 9.6-13.8 s of the 2-core machine, in every process that reads
features (each `tessera` command that trains, scores or serves, and the service's workers). `install` makes
`typechecked` hand Feast's own functions and classes back unchanged, before any Feast module is imported;
everything else decorated with it is instrumented as before. What is given up is typeguard's run-time check of the
arguments Tessera passes to Feast, which the tests exercise; Feast's behaviour is otherwise the same.
"""

from __future__ import annotations

from typing import Any

import typeguard

_ORIGINAL = typeguard.typechecked


def _feasts(target: Any) -> bool:
    module = getattr(target, "__module__", None) or ""
    return module == "feast" or module.startswith("feast.")


def typechecked(target: Any = None, **options: Any) -> Any:
    """typeguard's `typechecked`, except that Feast's functions and classes come back as they are."""
    if target is None:
        return lambda decorated: typechecked(decorated, **options)
    if _feasts(getattr(target, "__func__", target)):
        return target
    return _ORIGINAL(target, **options)


def install() -> None:
    """Put `typechecked` in typeguard's place (idempotent); Feast modules imported from now on bind it."""
    typeguard.typechecked = typechecked
