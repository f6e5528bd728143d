"""The nine venue categories of the programme: ids, zh/en labels, colours, icons."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    id: str
    zh: str
    en: str
    colour: str  # marker and legend colour; all pass WCAG AA against white text
    icon: str  # a short glyph drawn inside the marker

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "zh": self.zh, "en": self.en, "colour": self.colour,
                "icon": self.icon}


CATEGORIES: tuple[Category, ...] = (
    Category("museum", "博物馆", "Museums", "#8e2c2c", "🏛"),
    Category("exhibition_hall", "展览馆", "Exhibition halls", "#6b3fa0", "🖼"),
    Category("library", "图书馆", "Libraries", "#1f5f99", "📚"),
    Category("stadium", "体育场馆", "Stadiums", "#b34700", "🏟"),
    Category("science_site", "科普场所", "Science sites", "#00707a", "🔭"),
    Category("performing_arts", "演艺中心", "Performing arts", "#a3246b", "🎭"),
    Category("park", "公园", "Parks", "#2e6b30", "🌳"),
    Category("green_space", "绿地", "Green spaces", "#4d6b00", "🌿"),
    Category("playground", "游乐场", "Playgrounds", "#7a5c00", "🛝"),
)

BY_ID: dict[str, Category] = {c.id: c for c in CATEGORIES}
IDS: tuple[str, ...] = tuple(BY_ID)


def get(category_id: str) -> Category | None:
    """The category with this id, or None."""
    return BY_ID.get(category_id)
