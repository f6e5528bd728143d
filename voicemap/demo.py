"""Synthetic placeholder narrations, so the out-of-the-box map has something to hear.

espeak-ng reads a venue's short description in Chinese and English; the result goes through
the same pipeline as a child's recording. Every such clip is marked ``synthetic``, names no
narrator, and its transcript says it is a placeholder.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audio, categories, clips
from .models import Clip, Venue
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
