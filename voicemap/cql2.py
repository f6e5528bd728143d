"""CQL2 filters as SQL: pygeofilter's syntax tree written as a WHERE term, node by node.

Basic CQL2 (comparisons, ``LIKE``, ``IN``, ``BETWEEN``, ``IS NULL``, ``AND``/``OR``/``NOT``)
and the spatial functions (``S_INTERSECTS``, ``S_WITHIN``, ... over the feature's geometry
and literal geometries or ``BBOX``). Every literal is a bound parameter; every property
must be one of the collection's queryables, compared with a value of its own type, so that
both backends answer alike and no filter reaches the database as text of its own. The few
terms whose SQL differs (the spatial index, predicates, case-sensitive ``LIKE``) come from
the backend module.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from pygeofilter import ast, values

from .errors import BadRequest

if TYPE_CHECKING:  # pragma: no cover
    from .ogc import Collection, Sql

GEOMETRY = "geometry"  # the queryable naming a feature's geometry
SPATIAL = {"INTERSECTS": "ST_Intersects", "DISJOINT": "ST_Disjoint",
           "CONTAINS": "ST_Contains", "WITHIN": "ST_Within", "TOUCHES": "ST_Touches",
           "CROSSES": "ST_Crosses", "OVERLAPS": "ST_Overlaps", "EQUALS": "ST_Equals"}
COMPARE = {"EQ": "=", "NE": "<>", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}
_NUMBER = ("integer", "real", "number")


def bad(message: str) -> BadRequest:
    return BadRequest(message, param="filter")


def bbox_to_polygon(document: Any) -> Any:
    """A CQL2-JSON document with every ``{"bbox": [...]}`` literal written as a GeoJSON
    Polygon (pygeofilter 0.4 reads the four numbers into the wrong corners)."""
    if isinstance(document, list):
        return [bbox_to_polygon(d) for d in document]
    if not isinstance(document, dict):
        return document
    if set(document) == {"bbox"} and isinstance(document["bbox"], list):
        box = document["bbox"]
        if len(box) == 6:
            box = [box[0], box[1], box[3], box[4]]
        if len(box) != 4 or not all(isinstance(n, int | float) for n in box):
            raise bad("a bbox literal is four numbers: minx, miny, maxx, maxy")
        return _box_geometry(*box)
    return {k: bbox_to_polygon(v) for k, v in document.items()}


def _box_geometry(minx: float, miny: float, maxx: float, maxy: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[minx, miny], [maxx, miny], [maxx, maxy],
                                                 [minx, maxy], [minx, miny]]]}


class Emitter:
    """Writes one filter's syntax tree as SQL over the collection's table aliased ``v``."""

    def __init__(self, collection: Collection, backend: ModuleType, sql: Sql,
                 crs: str) -> None:
        self.collection = collection
        self.backend = backend
        self.sql = sql
        self.crs = crs

    def emit(self, node: Any) -> str:
        return "(" + self.condition(node) + ")"

    # --- conditions ---

    def condition(self, node: Any) -> str:
        if isinstance(node, ast.And | ast.Or):
            joiner = " AND " if isinstance(node, ast.And) else " OR "
            return f"({self.condition(node.lhs)}{joiner}{self.condition(node.rhs)})"
        if isinstance(node, ast.Not):
            return f"(NOT {self.condition(node.sub_node)})"
        if isinstance(node, ast.Comparison):
            return self.comparison(node)
        if isinstance(node, ast.Between):
            expr, kind = self.scalar(node.lhs)
            low, low_kind = self.scalar(node.low)
            high, high_kind = self.scalar(node.high)
            for other in (low_kind, high_kind):
                self.same(kind, other, "BETWEEN")
            if kind in ("text", "boolean"):
                raise bad("BETWEEN compares numbers")
            return f"({expr} {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high})"
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            expr, kind = self.scalar(node.lhs)
            items = []
            for sub in node.sub_nodes:
                item, item_kind = self.scalar(sub)
                self.same(kind, item_kind, "IN")
                items.append(item)
            if not items:
                raise bad("IN needs at least one value")
            return f"({expr} {'NOT ' if node.not_ else ''}IN ({', '.join(items)}))"
        if isinstance(node, ast.IsNull):
            if isinstance(node.lhs, ast.Attribute) and node.lhs.name == GEOMETRY:
                return "false" if not node.not_ else "true"  # every feature has a geometry
            expr, _ = self.scalar(node.lhs)
            return f"({expr} IS {'NOT ' if node.not_ else ''}NULL)"
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self.spatial(node)
        if isinstance(node, ast.Attribute):  # a boolean property used as a condition
            expr, kind = self.scalar(node)
            if kind != "boolean":
                raise bad(f"{node.name} is not a boolean property: compare it with a value")
            return f"({expr} = {self.sql.bind(True)})"
        if isinstance(node, bool):
            return "true" if node else "false"
        if isinstance(node, ast.TemporalPredicate):
            raise bad("this collection has no temporal properties to filter on")
        raise bad(f"{_describe(node)} is not supported here; use basic CQL2 comparisons, "
                  "LIKE, IN, BETWEEN, IS NULL, AND, OR, NOT and the S_* spatial functions")

    def comparison(self, node: Any) -> str:
        left, left_kind = self.scalar(node.lhs)
        right, right_kind = self.scalar(node.rhs)
        op = COMPARE[node.op.name]
        self.same(left_kind, right_kind, op)
        if left_kind == "boolean" and op not in ("=", "<>"):
            raise bad("booleans are compared with = and <> only")
        return f"({left} {op} {right})"

    def like(self, node: Any) -> str:
        expr, kind = self.scalar(node.lhs)
        if kind != "text" or not isinstance(node.pattern, str):
            raise bad("LIKE compares a text property with a text pattern")
        # CQL2's pattern: % any run, _ one character, \ escapes the next character.
        tokens: list[str] = []
        chars = iter(node.pattern)
        for ch in chars:
            if ch == "\\":
                nxt = next(chars, None)
                if nxt is None:
                    raise bad("a LIKE pattern cannot end with the escape character \\")
                tokens.append("c" + nxt)
            elif ch == "%":
                tokens.append("%")
            elif ch == "_":
                tokens.append("_")
            else:
                tokens.append("c" + ch)
        sql = self.backend.like_sql(expr, tokens, self.sql.bind)
        return f"(NOT {sql})" if node.not_ else sql

    def spatial(self, node: Any) -> str:
        name = SPATIAL[node.op.name]
        left, left_box = self.geometry(node.lhs)
        right, right_box = self.geometry(node.rhs)
        sql = self.backend.spatial_sql(name, left, right)
        # The column against a literal: ask the spatial index for the literal's box first
        # (SpatiaLite never does so by itself); a disjoint feature lies anywhere.
        box = right_box if left_box is None else left_box if right_box is None else None
        if box is not None and name != "ST_Disjoint" and self.collection.spatial_index:
            c = self.collection
            names = tuple(self.sql.bind(float(v))[1:] for v in box)
            sql = f"({self.backend.index_box_sql(c.table, 'v', c.geometry, names)} AND {sql})"
        return sql

    # --- operands ---

    def same(self, left: str, right: str, op: str) -> None:
        """Both operands of a comparison are of one type (numbers may mix)."""
        if left == right or (left in _NUMBER and right in _NUMBER):
            return
        raise bad(f"{op} compares a {_kind_name(left)} with a {_kind_name(right)}")

    def scalar(self, node: Any) -> tuple[str, str]:
        """(SQL, type) of a property or a literal value."""
        if isinstance(node, ast.Attribute):
            if node.name == GEOMETRY:
                raise bad("the geometry is compared with the S_* spatial functions")
            prop = self.collection.prop(node.name)
            if prop is None:
                raise bad(f"unknown property {node.name!r}: the queryables are "
                          f"{', '.join(p.name for p in self.collection.properties)}")
            return prop.expr, prop.type
        if isinstance(node, bool):
            return self.sql.bind(node), "boolean"
        if isinstance(node, int | float):
            return self.sql.bind(node), "number"
        if isinstance(node, str):
            return self.sql.bind(node), "text"
        raise bad(f"{_describe(node)} cannot be used as a value here")

    def geometry(self, node: Any) -> tuple[str, tuple[float, ...] | None]:
        """(SQL, None) for the feature's geometry; (SQL, CRS84 box) for a literal."""
        if isinstance(node, ast.Attribute):
            if node.name != GEOMETRY:
                raise bad(f"{node.name!r} is not a geometry; the spatial functions take "
                          f"{GEOMETRY!r} and geometry literals")
            return f"v.{self.collection.geometry}", None
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            args = list(node.arguments)
            if len(args) == 6:
                args = [args[0], args[1], args[3], args[4]]
            if len(args) != 4 or not all(isinstance(a, int | float) for a in args):
                raise bad("BBOX takes four numbers: minx, miny, maxx, maxy")
            node = values.Geometry(_box_geometry(*args))
        if isinstance(node, values.Geometry | values.Envelope):
            return self.literal(node.geometry)
        raise bad(f"{_describe(node)} is not a geometry")

    def literal(self, geometry: dict[str, Any]) -> tuple[str, tuple[float, ...]]:
        import numpy as np
        import shapely
        from shapely.geometry import shape

        from .ogc import CRS84, to_crs84

        try:
            geom = shape(geometry)
        except Exception as exc:  # shapely's own errors for malformed coordinates
            raise bad(f"a geometry literal is malformed: {exc}") from None
        if geom.is_empty:
            raise bad("a geometry literal is empty")
        if self.crs != CRS84:
            geom = shapely.transform(geom, lambda xy: np.array(
                [to_crs84(float(x), float(y), self.crs) for x, y in xy], dtype=float))
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise bad("a geometry literal lies outside the range of longitude and latitude "
                      f"(filter-crs is {self.crs})")
        return (f"ST_GeomFromText({self.sql.bind(geom.wkt)}, 4326)",
                (minx, miny, maxx, maxy))


def _kind_name(kind: str) -> str:
    return {"integer": "number", "real": "number"}.get(kind, kind)


def _describe(node: Any) -> str:
    if isinstance(node, ast.Function):
        return f"the function {node.name}()"
    if isinstance(node, ast.Node):
        return type(node).__name__
    return repr(node)[:60]
