"""Targets, limits and the small things every stage shares: tool lookup, messages, dB.

The promise is -16 LUFS integrated (BS.1770-4) and a true peak at or under -1 dBTP, as a mono
44.1 kHz 64 kbit/s CBR MP3 with no metadata. The work is done at 22.05 kHz on ~1 ms analysis
blocks (``_BLOCK`` samples); everything that counts in blocks is defined here.

pydub is imported here, once, for every stage, when a stage first asks for it (so the
settings load without it). It imports ``audioop`` (deprecated in Python 3.11-3.12; removed
in 3.13, where the ``audioop-lts`` package provides it) and warns at import when neither
ffmpeg nor avconv is on PATH. Neither matters (pydub never runs a program here: ffmpeg and
ffprobe are run directly, the ones :func:`_tool` resolves), so neither may break
``python -W error``.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AudioRejected

if TYPE_CHECKING:
    from pydub import AudioSegment as AudioSegment


def __getattr__(name: str) -> Any:
    # ``AudioSegment``, imported on first use (``from .settings import AudioSegment`` in the
    # stages that need it), so that the settings and limits load without pydub and audioop.
    if name == "AudioSegment":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
            warnings.filterwarnings("ignore", "Couldn't find ffmpeg or avconv", RuntimeWarning)
            from pydub import AudioSegment
        return AudioSegment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- Output and processing parameters -------------------------------------------------------------


TARGET_LUFS = -16.0
MAX_TRUE_PEAK_DBTP = -1.0
#: Published files aim this far under the true-peak ceiling, to absorb meter differences.
TRUE_PEAK_MARGIN_DB = 0.1
#: Internal acceptance window around the target (the promise is 1 LU).
LOUDNESS_TOLERANCE_LU = 0.3
#: Limiter ceiling before encoding; the MP3 encoder may add some overshoot on top.
PRE_ENCODE_CEILING_DBTP = -1.4
#: LAME's output measures ~0.45 LU quieter than its input (any bitrate, any signal we tried):
#: the first encode aims this much higher, and the measured result corrects it if needed.
MP3_LOUDNESS_BIAS_LU = -0.45
OUTPUT_RATE = 44100  # MPEG-1 Layer III: plays everywhere (WeChat, iOS Safari, Android, desktop)
BITRATE_KBPS = 64
LAME_QUALITY = 7  # LAME -q 7: no noise shaping; see the note in _encode
WORK_RATE = 22050  # analysis/processing rate: speech bandwidth to 11 kHz, half the memory of 44.1k
PAD_S = 0.2  # silence kept before and after the voice when trimming
FADE_MS = 30
SILENCE_FLOOR_DBFS = -60.0  # frames quieter than this never count as voice
MIN_VOICED_S = 0.1  # less voice than this is "silent"
QUIET_DBFS = -35.0  # a recording whose loudest 10 ms is under this...
MIN_SPEECH_RANGE_DB = 12.0  # ...and only this far over its quietest 10 % is just hiss
MAX_ATTEMPTS = 4


FFPROBE_TIMEOUT_S = 30.0
FFMPEG_TIMEOUT_S = 180.0


_BLOCK = 21  # samples per analysis block at WORK_RATE (0.95 ms); 105 blocks = 100 ms
_SUB_BLOCKS = 105
_FRAME_BLOCKS = 10  # silence-detection frame: 10 blocks = 9.5 ms
_GRID_BLOCKS = 21  # 21 blocks = 441 samples = exactly 20 ms: the trim's millisecond grid
_CHUNK_FRAMES = _BLOCK * 4096  # 86016 samples (3.9 s) per streamed chunk at WORK_RATE
_LIMITER_LOOKAHEAD = 10  # blocks (~9.5 ms)
_LIMITER_HOLD = 40  # blocks (~38 ms)
_LIMITER_SMOOTH = 8  # boxcar radius in blocks; must be < lookahead and < hold
_PEAK_BUCKETS = 100


_ACCEPTED_HUMAN = "WAV, MP3, M4A/AAC, Ogg (Vorbis or Opus), WebM, AMR or FLAC"


# --- Limits ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 25 * 1024 * 1024
    max_duration_s: float = 600.0
    min_duration_s: float = 1.0


_DEFAULT_LIMITS = Limits()  # a frozen dataclass: safe as a default argument


# --- Tools ----------------------------------------------------------------------------------------


def _tool(name: str) -> str:
    var = f"VOICEMAP_{name.upper()}"
    override = os.environ.get(var)
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise RuntimeError(f"{var}={override!r} is not an executable {name}")
        return override
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} was not found on PATH (install ffmpeg or set {var})")
    return path


def _run(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            list(args), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise _undecodable("Reading the audio file took too long; it may be damaged.") from None


# --- Messages and small helpers -------------------------------------------------------------------


def _fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} seconds"
    total = int(round(seconds))
    if total >= 3600:
        return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
    return f"{total // 60}:{total % 60:02d}"


def _fmt_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _not_audio(message: str | None = None) -> AudioRejected:
    return AudioRejected(
        message or f"This file is not a supported audio recording. Upload {_ACCEPTED_HUMAN}.",
        code="not_audio",
    )


def _undecodable(message: str | None = None) -> AudioRejected:
    return AudioRejected(
        message or "The audio file could not be decoded; it may be damaged or incomplete.",
        code="undecodable",
    )


def _too_long(limits: Limits, duration_s: float | None) -> AudioRejected:
    limit = _fmt_duration(limits.max_duration_s)
    if duration_s is None:
        msg = f"The recording is longer than the limit of {limit}."
    else:
        msg = f"The recording is {_fmt_duration(duration_s)} long; the limit is {limit}."
    details = {"max_duration_s": limits.max_duration_s}
    if duration_s is not None:
        details["duration_s"] = round(duration_s, 2)
    return AudioRejected(msg, code="too_long", **details)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf
