"""The nine venue categories of the programme: ids, colours, icons; their zh/en labels are
messages of the gettext catalogues (``cat_<id>``, see voicemap.i18n)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    id: str
    colour: str  # marker and legend colour; all pass WCAG AA against white text
    icon: str  # a short glyph drawn inside the marker

    def label(self, lang: str) -> str:
        """The category's name in ``lang`` ('zh' or 'en'), from the catalogues."""
        from . import i18n

        return i18n.gettext("zh" if lang == "zh" else "en", f"cat_{self.id}")

    @property
    def zh(self) -> str:
        return self.label("zh")

    @property
    def en(self) -> str:
        return self.label("en")

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "zh": self.zh, "en": self.en, "colour": self.colour,
                "icon": self.icon}


CATEGORIES: tuple[Category, ...] = (
    Category("museum", "#8e2c2c", "🏛"),
    Category("exhibition_hall", "#6b3fa0", "🖼"),
    Category("library", "#1f5f99", "📚"),
    Category("stadium", "#b34700", "🏟"),
    Category("science_site", "#00707a", "🔭"),
    Category("performing_arts", "#a3246b", "🎭"),
    Category("park", "#2e6b30", "🌳"),
    Category("green_space", "#4d6b00", "🌿"),
    Category("playground", "#7a5c00", "🛝"),
)
BY_ID: dict[str, Category] = {c.id: c for c in CATEGORIES}
IDS: tuple[str, ...] = tuple(BY_ID)


def get(category_id: str) -> Category | None:
    """The category with this id, or None."""
    return BY_ID.get(category_id)
