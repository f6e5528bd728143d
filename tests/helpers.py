"""Small builders for registry test data."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from voicemap import categories, db, venues
from voicemap.config import BEIJING_SERVICE_AREA
from voicemap.exchange import check

# Central Beijing, where the synthetic venues fall.
BOX = (116.10, 39.75, 116.70, 40.10)


def feature(vid: str, lon: float, lat: float, category: str = "museum",
            **props: Any) -> dict[str, Any]:
    """A valid venue Feature with the required properties filled in."""
    properties = {"id": vid, "name_zh": f"场馆{vid}", "name_en": f"Venue {vid}",
                  "category": category, **props}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": properties}


def collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def write(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(collection(features), ensure_ascii=False), encoding="utf-8")
    return path


def random_features(n: int, seed: int = 1, box=BOX) -> list[dict[str, Any]]:
    """n venues at random points in ``box``, all categories, some sharing exact positions."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 25 == 24 and out:  # an exact duplicate position: a tie to order by id
            lon, lat = out[rng.randrange(len(out))]["geometry"]["coordinates"]
        else:
            lon = round(rng.uniform(box[0], box[2]), 7)
            lat = round(rng.uniform(box[1], box[3]), 7)
        cat = categories.IDS[i % len(categories.IDS)]
        out.append(feature(f"v{i:05d}", lon, lat, cat))
    return out


def load(app, features: list[dict[str, Any]]) -> None:
    """Put these venues in the app's database through the registry's own upsert."""
    checked = check(features, BEIJING_SERVICE_AREA)
    assert not checked.problems, checked.problems
    with app.app_context(), db.session_scope() as session:
        venues.upsert(session, checked.records)


# --- MP3 tags ------------------------------------------------------------------------------


def mp3_tags(data: bytes) -> list[str]:
    """The metadata tags an MP3 file carries: ``ID3v2`` (at the start, or its footer),
    ``ID3v1`` (the last 128 bytes), ``APE`` and ``Lyrics3``. LAME's Xing/"Info" header is an
    MPEG frame of silence that describes the stream, not a tag, and is not reported."""
    found = []
    if data[:3] == b"ID3" or b"3DI" in data[-10:]:
        found.append("ID3v2")
    if data[-128:-125] == b"TAG":
        found.append("ID3v1")
    if b"APETAGEX" in data:
        found.append("APE")
    if b"LYRICSBEGIN" in data or b"LYRICS200" in data:
        found.append("Lyrics3")
    return found


def starts_with_mpeg_frame(data: bytes) -> bool:
    """The first bytes are an MPEG audio frame header (11 sync bits set)."""
    return len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0


# --- audio made at test time ---------------------------------------------------------------

SAY = {"en": "Welcome to the museum. Here you can see dinosaurs and old bronze bells.",
       "zh": "欢迎来到博物馆。这里有恐龙化石和古老的编钟。"}


def speech(directory: Path, name: str = "speech.mp3", lang: str = "en",
           ffmpeg_args: tuple[str, ...] = ()) -> Path:
    """A real spoken recording (espeak-ng), padded with silence, encoded by ffmpeg by suffix."""
    import subprocess

    directory.mkdir(parents=True, exist_ok=True)
    wav = directory / f".{name}.wav"
    subprocess.run(["espeak-ng", "-v", "cmn" if lang == "zh" else "en", "-w", str(wav),
                    SAY[lang]], check=True, capture_output=True)
    out = directory / name
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-i", str(wav), "-af", "adelay=700:all=1,apad=pad_dur=0.8,volume=-9dB",
                    *ffmpeg_args, str(out)], check=True)
    wav.unlink()
    return out


def published_clip(app, venue_id: str, lang: str = "zh", directory: Path | None = None) -> dict:
    """Attach a real spoken clip to a venue through the pipeline and publish it; its JSON."""
    import tempfile

    from voicemap import audio, clips
    from voicemap.storage import media_store

    with tempfile.TemporaryDirectory() as tmp:
        src = speech(Path(directory or tmp), f"{venue_id}-{lang}.m4a", lang)
        fields = clips.check_fields({"lang": lang, "narrator_name": "Lily" if lang == "en"
                                     else "小雨", "narrator_age": "9",
                                     "transcript": SAY[lang], "consent": "true",
                                     "consent_by": "Parent of the narrator"})
        with app.app_context():
            clip = clips.attach(
                db.get_session(), media_store(), venue_id, src, fields,
                manager=None, limits=audio.Limits(), status="published")
            return clips.to_dict(clip)

ROOT_DATA = Path(__file__).resolve().parent.parent / "data" / "venues.geojson"
