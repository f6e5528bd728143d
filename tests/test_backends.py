"""The backend contract (voicemap/backends/base.py): both modules implement all of it."""

from __future__ import annotations

import inspect

import pytest

from voicemap import backends
from voicemap.backends import base, postgis, spatialite

MEMBERS = sorted(name for name, value in vars(base.Backend).items()
                 if inspect.isfunction(value) and not name.startswith("_"))


def shape(fn) -> list[tuple[str, object, object]]:
    """A signature's parameter names, kinds and defaults (annotations are strings here)."""
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    return [(p.name, p.kind, p.default) for p in params]


def test_the_contract_names_every_public_function_of_both_backends():
    assert len(MEMBERS) >= 15
    for module in (postgis, spatialite):
        public = {name for name, value in vars(module).items()
                  if inspect.isfunction(value) and value.__module__ == module.__name__
                  and not name.startswith("_")}
        assert public == set(MEMBERS), (module.__name__, public ^ set(MEMBERS))


@pytest.mark.parametrize("module", [postgis, spatialite], ids=lambda m: m.__name__)
@pytest.mark.parametrize("name", MEMBERS)
def test_each_backend_implements_the_signature(module, name):
    assert shape(getattr(module, name)) == shape(getattr(base.Backend, name))


@pytest.mark.parametrize("module", [postgis, spatialite], ids=lambda m: m.__name__)
def test_map_sql_has_every_part(module):
    assert set(module.MAP_SQL) == {"source", "join", "box", "x", "y", "cats", "voiced", "cell"}
    assert "{}" in module.MAP_SQL["cell"]


def test_select_picks_by_dialect():
    assert backends.select("postgresql") is postgis
    assert backends.select("sqlite") is spatialite
    with pytest.raises(ValueError, match="mysql"):
        backends.select("mysql")
