"""Synthetic placeholder narrations, so the out-of-the-box map has something to hear; and
labelled sample activities and information pages, so that it has something on.

espeak-ng reads a venue's short description in Chinese and English; the result goes through
the same pipeline as a child's recording. Every such clip is marked ``synthetic``, names no
narrator, and its transcript says it is a placeholder.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import activities, articles, audio, categories, clips
from .models import Activity, Article, Clip, Venue
from .storage import Store

LABEL = {"zh": "【合成语音示例，并非儿童录音】",
         "en": "[Synthetic placeholder, not a child's voice] "}
TITLE = {"zh": "合成语音示例", "en": "Synthetic placeholder"}
VOICE = {"zh": "cmn", "en": "en"}


def espeak(text: str, lang: str, out: Path) -> Path:
    """Speak ``text`` to a WAV file with espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run([exe, "-v", VOICE.get(lang, lang), "-s", "150", "-w", str(out), text],
                   check=True, capture_output=True, timeout=60)
    return out


def pick_venues(session: Session, per_category: int) -> list[Venue]:
    """The first venues (by id) of each category that have descriptions in both languages."""
    chosen: list[Venue] = []
    for cat in categories.IDS:
        stmt = (select(Venue).where(Venue.category == cat, Venue.description_zh.is_not(None),
                                    Venue.description_en.is_not(None))
                .order_by(Venue.id).limit(per_category))
        chosen += session.execute(stmt).scalars()
    return chosen


def make_clips(session: Session, store: Store, limits: audio.Limits,
               per_category: int = 2, langs: tuple[str, ...] = ("zh", "en")) -> list[Clip]:
    """Add a published synthetic clip per chosen venue and language, unless one is there."""
    made = []
    for venue in pick_venues(session, per_category):
        for lang in langs:
            exists = session.execute(select(Clip.id).where(
                Clip.venue_id == venue.id, Clip.lang == lang, Clip.synthetic.is_(True))).first()
            if exists:
                continue
            text = venue.description_zh if lang == "zh" else venue.description_en
            fields = clips.ClipFields(
                lang=lang, transcript=LABEL[lang] + text, title=TITLE[lang],
                consent_by="not applicable: synthetic voice", narrator_name="eSpeak",
                narrator_age=None, synthetic=True)
            with tempfile.TemporaryDirectory(prefix="voicemap-demo-") as tmp:
                wav = espeak(text, lang, Path(tmp) / "speech.wav")
                made.append(clips.attach(session, store, venue.id, wav, fields, manager=None,
                                         limits=limits, status="published"))
    return made


# --- sample activities and information pages ------------------------------------------------

SAMPLE = {"zh": "【示例】", "en": "[Sample] "}
SAMPLE_NOTE = {"zh": "\n\n*示例内容，仅用于演示本网站的功能。*",
               "en": "\n\n*Sample text, shown to demonstrate this site.*"}

# (category, title zh, title en, weekday 0=Mon or None for today, hour, minutes long,
#  weekly, min age, max age, price)
ACTIVITIES = (
    ("library", "绘本故事会", "Picture-book story hour", 5, 10, 60, True, 3, 8, 0),
    ("science_site", "小小科学家工作坊", "Little scientists' workshop", 6, 14, 90, True, 7, 12,
     30),
    ("park", "亲子自然观察", "Family nature walk", None, 16, 60, False, None, None, 0),
    ("museum", "博物馆寻宝", "Museum treasure hunt", 2, 15, 60, True, 6, 12, 0),
)


def make_activities(session: Session, today: date | None = None) -> list[Activity]:
    """Add clearly labelled sample activities (one venue per category) unless they exist."""
    today = today or datetime.now(activities.TZ).date()
    made = []
    for cat, zh, en, weekday, hour, minutes, weekly, lo, hi, price in ACTIVITIES:
        venue = session.execute(select(Venue).where(Venue.category == cat)
                                .order_by(Venue.id).limit(1)).scalar_one_or_none()
        if venue is None:
            continue
        title_en = SAMPLE["en"] + en
        if session.execute(select(Activity.id).where(Activity.venue_id == venue.id,
                                                     Activity.title_en == title_en)).first():
            continue
        day = today if weekday is None else today + timedelta(days=(weekday - today.weekday())
                                                               % 7)
        start = datetime.combine(day, time(hour), activities.TZ)
        made.append(activities.add(session, venue.id, {
            "title_zh": SAMPLE["zh"] + zh, "title_en": title_en,
            "description_zh": "示例活动，并非真实安排。", "description_en":
                "A sample activity, not a real event.",
            "start": start.isoformat(), "end": (start + timedelta(minutes=minutes)).isoformat(),
            "rrule": "FREQ=WEEKLY;COUNT=8" if weekly else None, "min_age": lo, "max_age": hi,
            "price": price}))
    return made


ARTICLES = (
    ("about", "programme", "北京儿童友好城市建设", "Beijing's child-friendly city programme",
     "北京坚持儿童优先，从儿童视角展示城市。这个网站把儿童友好的场馆放在地图上，"
     "并由孩子们为场馆录制语音导览。\n\n## 这里有什么\n\n- 场馆地图和孩子们的语音导览\n"
     "- 场馆的近期活动，可以加入手机日历\n- 关于政策、服务、权利、空间和环境的信息",
     "Beijing puts children first and shows the city from their point of view. This site "
     "maps child-friendly venues, and children record voice guides to them.\n\n"
     "## What is here\n\n- A map of venues with children's voice guides\n- What's on at the "
     "venues, ready for a phone calendar\n- Information on policies, services, rights, "
     "spaces and the environment"),
    ("space", "venues", "儿童友好场馆", "Child-friendly venues",
     "博物馆、展览馆、图书馆、体育场馆、科普场所、演艺中心、公园、绿地和游乐场，"
     "都可以成为孩子们探索城市的地方。在地图上点一个场馆，看看开放时间和无障碍设施。",
     "Museums, exhibition halls, libraries, stadiums, science sites, performing-arts "
     "centres, parks, green spaces and playgrounds are all places where children explore the "
     "city. Tap a venue on the map for its hours and access."),
    ("rights", "voices", "孩子的声音", "Children's voices",
     "孩子有权表达意见，也有权被保护。语音导览只显示孩子的名字和年龄，"
     "监护人的信息从不公开；监护人可以随时撤回同意。",
     "Children have the right to be heard and to be protected. A voice guide shows only a "
     "child's first name and age; guardians' details are never public, and a guardian can "
     "withdraw consent at any time."),
)


def make_articles(session: Session) -> list[Article]:
    """Add clearly labelled sample information pages unless they exist."""
    made = []
    for section, slug, title_zh, title_en, body_zh, body_en in ARTICLES:
        if session.execute(select(Article.id).where(Article.section == section,
                                                    Article.slug == slug)).first():
            continue
        made.append(articles.add(session, {
            "section": section, "slug": slug, "title_zh": SAMPLE["zh"] + title_zh,
            "title_en": SAMPLE["en"] + title_en, "body_zh": body_zh + SAMPLE_NOTE["zh"],
            "body_en": body_en + SAMPLE_NOTE["en"], "status": "published"}))
    return made
