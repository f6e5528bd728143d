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


# --- demo works for the "Me and my city" campaign ------------------------------------------

DEMO_CAMPAIGN = "me-and-my-city"
WORK_LABEL = {"zh": "【合成示例作品，并非儿童作品】", "en": "[Synthetic demo work, not a child's] "}
DEMO_WORKS = (
    # kind, title, age, venue category (pinned to its first venue) or None, scene
    ("painting", "示例：公园里的大树 / Sample: the big tree in the park", 6, "park", "tree"),
    ("photo", "示例：图书馆的窗 / Sample: the library window", 11, "library", "window"),
    ("painting", "示例：胡同的夜晚 / Sample: a hutong at night", 8, None, "night"),
    ("writing", "示例：我的城市 / Sample: my city", 12, "museum", None),
)
DEMO_STORY = ("这是一件由程序生成的示例作品，用来展示作品墙的样子。\n"
              "This is a sample generated by a program, to show what the gallery looks like.")


def demo_image(scene: str, out: Path) -> Path:
    """A simple generated picture (Pillow), clearly marked SAMPLE."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (960, 720), (135, 196, 235) if scene != "night" else (25, 30, 70))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 520, 960, 720), fill=(90, 160, 80) if scene != "night" else (40, 40, 40))
    if scene == "tree":
        draw.rectangle((450, 330, 510, 560), fill=(110, 70, 40))
        draw.ellipse((330, 150, 630, 420), fill=(40, 130, 60))
        draw.ellipse((760, 60, 880, 180), fill=(250, 210, 60))
    elif scene == "window":
        draw.rectangle((200, 120, 760, 560), fill=(240, 235, 220), outline=(120, 80, 50),
                       width=18)
        draw.line((480, 120, 480, 560), fill=(120, 80, 50), width=14)
        draw.line((200, 340, 760, 340), fill=(120, 80, 50), width=14)
        for i, colour in enumerate(((200, 60, 60), (60, 90, 200), (230, 180, 40))):
            draw.rectangle((260 + i * 60, 440, 300 + i * 60, 540), fill=colour)
    else:
        for x in range(40, 960, 190):
            draw.rectangle((x, 380, x + 150, 560), fill=(150, 60, 50))
            draw.polygon(((x - 15, 380), (x + 75, 320), (x + 165, 380)), fill=(60, 60, 60))
            draw.rectangle((x + 55, 430, x + 95, 480), fill=(250, 220, 120))
        draw.ellipse((780, 60, 860, 140), fill=(245, 245, 210))
    try:
        font = ImageFont.load_default(size=64)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    draw.rectangle((0, 0, 960, 96), fill=(255, 255, 255))
    draw.text((24, 14), "SAMPLE / DEMO", fill=(200, 0, 0), font=font)
    img.save(out, "PNG")
    return out


def make_works(session: Session, store: Store, limits: audio.Limits,
               service_area: tuple[float, float, float, float] | None = None) -> list:
    """Create the open demo campaign and its labelled synthetic works, unless there."""
    from datetime import timedelta

    from . import works
    from .models import Campaign, Work, utcnow

    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    if session.get(Campaign, DEMO_CAMPAIGN) is None:
        works.create_campaign(
            session, DEMO_CAMPAIGN, title_zh="我和我的城市", title_en="Me and my city",
            description_zh="孩子们用绘画、摄影、写作和歌声讲述他们眼中的城市。（示例活动）",
            description_en="Children tell their stories of the city in paintings, photos, "
                           "writing and songs. (Demo campaign)",
            opens=today - timedelta(days=1), closes=today + timedelta(days=365),
            status="open")
    if not works.accepting(session.get(Campaign, DEMO_CAMPAIGN)):
        return []  # moved on (judging, closed) by an administrator: left as it is
    made = []
    for kind, title, age, category, scene in DEMO_WORKS:
        if session.execute(select(Work.id).where(Work.campaign_id == DEMO_CAMPAIGN,
                                                 Work.title == title,
                                                 Work.synthetic.is_(True))).first():
            continue
        form = {"kind": kind, "title": title, "narrator_name": "Demo",
                "narrator_age": str(age),
                "story": WORK_LABEL["zh"] + WORK_LABEL["en"] + "\n" + DEMO_STORY,
                "consent_by": "not applicable: synthetic demo",
                "guardian_contact": "demo@voicemap.invalid", "consent_judging": "true",
                "consent_public": "true"}
        if category is not None:
            venue = session.execute(select(Venue.id).where(Venue.category == category)
                                    .order_by(Venue.id).limit(1)).scalar()
            if venue:
                form["venue_id"] = venue
        if "venue_id" not in form:
            form.update(lon="116.3975", lat="39.9087")  # coarsened like any point
        with tempfile.TemporaryDirectory(prefix="voicemap-demo-") as tmp:
            upload = demo_image(scene, Path(tmp) / "demo.png") if scene else None
            work, _code = works.submit(session, store, DEMO_CAMPAIGN, form, upload,
                                       audio_limits=limits, service_area=service_area,
                                       status="approved", synthetic=True)
            made.append(work)
    return made
