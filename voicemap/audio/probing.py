"""Probe before decoding: content sniffing, then ffprobe with the sniffed demuxer forced.

The file size is checked first (:class:`PayloadTooLarge`). The real type comes from the
content: magic bytes pick one of our formats, then ``ffprobe`` is run *with that demuxer
forced* and its format and codec are checked against a whitelist (ffprobe left to itself
"detects" text files as ``tty`` and the like). A known duration over the limit is refused here,
without decoding. The name of the file is never looked at.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import PayloadTooLarge
from .settings import (
    _ACCEPTED_HUMAN,
    _DEFAULT_LIMITS,
    FFPROBE_TIMEOUT_S,
    Limits,
    _fmt_bytes,
    _not_audio,
    _run,
    _too_long,
    _tool,
    _undecodable,
)

log = logging.getLogger(__name__)


# --- Accepted formats -----------------------------------------------------------------------------


# format name -> (ffmpeg demuxer, ffprobe format_name, accepted codecs)
_FORMATS: dict[str, tuple[str, str, frozenset[str]]] = {
    "wav": (
        "wav",
        "wav",
        frozenset(
            {
                "pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le",
                "pcm_alaw", "pcm_mulaw", "adpcm_ima_wav", "adpcm_ms", "gsm_ms",
            }
        ),
    ),
    "mp3": ("mp3", "mp3", frozenset({"mp3"})),
    "mp4": (
        "mov",
        "mov,mp4,m4a,3gp,3g2,mj2",
        frozenset({"aac", "alac", "mp3", "amr_nb", "amr_wb", "opus", "flac"}),
    ),
    "ogg": ("ogg", "ogg", frozenset({"vorbis", "opus", "flac", "speex"})),
    "webm": ("matroska", "matroska,webm", frozenset({"opus", "vorbis", "aac"})),
    "amr": ("amr", "amr", frozenset({"amr_nb", "amr_wb"})),
    "flac": ("flac", "flac", frozenset({"flac"})),
    "aac": ("aac", "aac", frozenset({"aac"})),
}


ACCEPTED_FORMATS = tuple(_FORMATS)
_MIN_SAMPLE_RATE = 4000
_MAX_SAMPLE_RATE = 384000
_MAX_CHANNELS = 8


@dataclass(frozen=True)
class ProbeInfo:
    """What ffprobe says about an upload, after content sniffing."""

    format: str  # our normalised name: one of ACCEPTED_FORMATS
    codec: str  # ffmpeg codec name, e.g. "pcm_s16le", "aac", "opus", "amr_nb"
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    #: True when ffmpeg only estimated the duration from the bitrate (raw AAC/AMR, some WAV/MP3).
    duration_estimated: bool = False


# --- Content sniffing -----------------------------------------------------------------------------


_MPEG_BITRATES = {  # (version_id bit, layer III) -> kbps table
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 / 2.5
}


_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_ADTS_RATES = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
)


def _mp3_frame_len(h: bytes) -> int | None:
    """Length of the MPEG audio Layer III frame whose 4-byte header is ``h``, or None."""
    if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xE0) != 0xE0:
        return None
    version = (h[1] >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = (h[1] >> 1) & 3  # 1: Layer III
    bitrate_idx = h[2] >> 4
    rate_idx = (h[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_idx in (0, 15) or rate_idx == 3:
        return None
    kbps = _MPEG_BITRATES[1 if version == 3 else 0][bitrate_idx]
    rate = _MPEG_RATES[version][rate_idx]
    padding = (h[2] >> 1) & 1
    coef = 144 if version == 3 else 72
    return coef * kbps * 1000 // rate + padding


def _adts_frame_len(h: bytes) -> int | None:
    if len(h) < 7 or h[0] != 0xFF or (h[1] & 0xF6) != 0xF0:
        return None
    if (h[2] >> 2) & 0xF >= len(_ADTS_RATES):
        return None
    length = ((h[3] & 3) << 11) | (h[4] << 3) | (h[5] >> 5)
    return length if length >= 7 else None


def _frames_chain(data: bytes, pos: int, frame_len: Callable[[bytes], int | None]) -> bool:
    """True if a valid frame starts at ``pos`` and is followed by another one (or the end)."""
    n1 = frame_len(data[pos : pos + 7])
    if n1 is None:
        return False
    nxt = pos + n1
    if nxt + 7 > len(data):
        return True  # too little data in hand to see a second frame
    return frame_len(data[nxt : nxt + 7]) is not None


def _sniff_at(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[:6] == b"#!AMR\n" or head[:9] == b"#!AMR-WB\n":
        return "amr"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:9] in (b"#!SILK_V3", b"\x02#!SILK_V"):
        return "silk"
    if _frames_chain(head, 0, _mp3_frame_len):
        return "mp3"
    if _frames_chain(head, 0, _adts_frame_len):
        return "aac"
    return None


def _sniff(path: Path) -> str | None:
    """Our format name for the file's content, or None. Never looks at the file name."""
    with path.open("rb") as f:
        head = f.read(65536)
        offset = 0
        # An ID3v2 tag may precede MP3, ADTS AAC or even FLAC: skip it (ffmpeg does too).
        for _ in range(8):  # a few stacked tags at most
            if head[:3] != b"ID3" or len(head) < 10:
                break
            size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            if any(b & 0x80 for b in head[6:10]):
                return None
            offset += 10 + size + (10 if head[5] & 0x10 else 0)
            f.seek(offset)
            head = f.read(65536)
    # Some encoders leave zero padding before the first MPEG frame.
    stripped = head.lstrip(b"\x00")
    if stripped and len(head) - len(stripped) >= 4:
        kind = _sniff_at(stripped)
        return kind if kind in ("mp3", "aac") else None
    return _sniff_at(head)


# --- ffprobe --------------------------------------------------------------------------------------


def _ffprobe_json(path: Path, demuxer: str | None, entries: str) -> tuple[dict, str, int]:
    args = [_tool("ffprobe"), "-hide_banner", "-v", "warning"]
    if demuxer:
        args += ["-f", demuxer]
    args += ["-show_entries", entries, "-of", "json", "-i", str(path)]
    res = _run(args, FFPROBE_TIMEOUT_S)
    stderr = res.stderr.decode("utf-8", "replace")
    try:
        data = json.loads(res.stdout or b"{}")
    except ValueError:
        data = {}
    return data, stderr, res.returncode


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out >= 0 else None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def probe(path: Path, limits: Limits = _DEFAULT_LIMITS) -> ProbeInfo:
    """Identify ``path`` from its content and check it against ``limits`` without decoding it.

    Raises :class:`PayloadTooLarge` (``too_large``) or :class:`AudioRejected` with code
    ``not_audio``, ``undecodable`` or ``too_long`` (when the container states a duration over
    the limit; a missing or understated duration is caught by the bounded decode in
    :func:`process`).
    """
    path = Path(path)
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise PayloadTooLarge(
            f"The file is {_fmt_bytes(size)}; the limit is {_fmt_bytes(limits.max_bytes)}.",
            code="too_large",
            size_bytes=size,
            max_bytes=limits.max_bytes,
        )
    if size == 0:
        raise _not_audio("The file is empty.")
    kind = _sniff(path)
    if kind == "silk":
        raise _not_audio(
            f"WeChat SILK voice files are not supported. Upload {_ACCEPTED_HUMAN}."
        )
    if kind is None:
        raise _not_audio()
    demuxer, format_name, codecs = _FORMATS[kind]
    data, stderr, rc = _ffprobe_json(
        path,
        demuxer,
        "format=format_name,duration:stream=index,codec_type,codec_name,sample_rate,channels,duration",
    )
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    if rc != 0 or not fmt:
        log.info("ffprobe failed on %s (%s): %s", path.name, kind, stderr.strip()[-300:])
        raise _undecodable()
    if fmt.get("format_name") != format_name:
        raise _not_audio()
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        raise _not_audio("The file contains no audio.")
    stream = audio[0]
    codec = str(stream.get("codec_name") or "")
    if codec not in codecs:
        raise _not_audio(
            f"The audio codec ({codec or 'unknown'}) is not supported. Upload {_ACCEPTED_HUMAN}."
        )
    duration = _float(stream.get("duration"))
    if duration is None:
        duration = _float(fmt.get("duration"))
    estimated = "Estimating duration from bitrate" in stderr
    info = ProbeInfo(
        format=kind,
        codec=codec,
        duration_s=duration,
        sample_rate=_int(stream.get("sample_rate")),
        channels=_int(stream.get("channels")),
        duration_estimated=estimated,
    )
    # A duration ffmpeg only estimated from the bitrate can be off for VBR streams: allow some
    # slack there (the bounded decode still enforces the limit exactly).
    slack = 1.0 if not estimated or codec.startswith("pcm_") else 1.25
    if duration is not None and duration > limits.max_duration_s * slack:
        raise _too_long(limits, duration)
    if info.sample_rate is None or not _MIN_SAMPLE_RATE <= info.sample_rate <= _MAX_SAMPLE_RATE:
        raise _not_audio(f"The audio sample rate ({info.sample_rate} Hz) is not supported.")
    if info.channels is None or not 1 <= info.channels <= _MAX_CHANNELS:
        raise _not_audio(f"Audio with {info.channels} channels is not supported.")
    return info
