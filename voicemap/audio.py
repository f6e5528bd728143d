"""Audio intake: check an uploaded recording, clean it up and publish it as a small MP3.

Pure module: paths in, a :class:`ProcessedAudio` (or an exception from :mod:`voicemap.errors`)
out. No Flask, no database, no storage; the caller decides where ``out_dir`` is.

Pipeline (see :func:`process`). From the trim to the published file the signal is a
``pydub.AudioSegment``; ffmpeg, driven directly, and numpy do what pydub cannot do safely or
at all:

1. **Probe before decoding** (ffprobe). The file size is checked first (:class:`PayloadTooLarge`).
   The real type comes from the content: magic bytes pick one of our formats, then ``ffprobe``
   is run *with that demuxer forced* and its format and codec are checked against a whitelist
   (ffprobe left to itself "detects" text files as ``tty`` and the like). A known duration over
   the limit is refused here, without decoding.
2. **Bounded decode** (ffmpeg). One ffmpeg process decodes the first audio stream straight to
   mono float32 at 22.05 kHz, stopping just past the duration limit (``-t``), and streams it to
   us in chunks into a buffer sized for that limit, so a file whose container lies or omits its
   duration (a tiny FLAC or Opus of hours of silence) cannot take more than ~55 MB. Reaching the
   cap is ``too_long``. The same ffmpeg process also emits the BS.1770 K-weighted signal as a
   second channel (two ``biquad`` stages with the ITU coefficients designed for the rate), which
   we reduce on the fly to per-millisecond energies for the loudness meter.
3. **Into pydub, and trim** (pydub). The decoded samples become a 32-bit mono ``AudioSegment``,
   converted in place (the float buffer is reused: no copy), at their real level unless the
   decoder overshot full scale, in which case just enough lower to fit. Leading and trailing
   silence is found on ~10 ms frame levels against a threshold set between the noise floor and
   the loudest frame, and pydub cuts the voice out with a millisecond slice, keeping ~200 ms of
   pad each side (on a 20 ms grid, which falls exactly on the analysis blocks).
4. **Loudness and true peak** (numpy). Gain for -16 LUFS integrated (BS.1770-4 gating) is
   computed from the K-weighted block energies; a look-ahead limiter, computed on ~1 ms blocks
   from a 4x oversampled true-peak envelope, holds peaks under a pre-encode ceiling. Because
   limiting lowers loudness, gain and limiter are iterated on the block energies until the
   predicted loudness is on target.
5. **Render, fade, encode** (numpy, then pydub). gain x limiter x voice is rendered as a 16-bit
   segment (the limiter keeps it under -1.4 dBTP, so it never clips, and 16-bit rounding sits
   ~85 dB under the speech, far below what a 64 kbit/s MP3 keeps), which pydub fades in and out
   (30 ms) and encodes with ``AudioSegment.export``: MPEG-1 Layer III, 44.1 kHz (the export's
   ffmpeg resamples), mono, 64 kbps CBR, every tag stripped.
6. **Verify** (ffmpeg). The published MP3 is decoded and measured again (same meter, 4x
   oversampled true peak). If the encoder's overshoot pushed the true peak above -1.1 dBTP
   (0.1 dB margin under the -1 dBTP ceiling; our meter agrees with ffmpeg's ebur128 to
   ~0.01 dB) the limiter ceiling is lowered just around the 10 ms windows that were over; if
   loudness is off by more than 0.3 LU the predicted-vs-published offset is corrected; then it
   is rendered and encoded again (rare: up to 4 encodes in all).

Where pydub is *not* used, and why:

* **Decoding the upload.** ``AudioSegment.from_file`` runs ffprobe and ffmpeg with no timeout,
  reads ffmpeg's whole output into memory with no bound and keeps several whole copies of it
  (bytes, bytearray, the parsed WAV): a 1 MB FLAC of two hours of silence would cost gigabytes.
  Without ``format`` it also lets ffmpeg guess the container. Step 2 is the only decode of
  untrusted input.
* **Reading our own MP3 back** (step 6). Its length is bounded by construction, but
  ``from_file`` would hold ~4 copies of the 44.1 kHz decode (~200 MB for 10 minutes, over the
  memory budget with everything else), and the meter needs the K-weighted signal, which the
  streamed ffmpeg decode computes in the same pass.
* **Gain, limiter, meter.** pydub's ``apply_gain`` is one constant gain and it has no
  K-weighting or true peak; a per-sample gain curve and the BS.1770 maths are numpy (``scipy``
  is not imported: ``scipy.signal`` alone costs ~75 MB of RSS).
* **Resampling.** ``set_frame_rate`` is ``audioop.ratecv`` (no anti-alias filter); the export's
  ffmpeg resamples 22.05 to 44.1 kHz.
* **pyloudnorm** is not used at run time either: it imports ``scipy.signal``, meters a whole
  float64 copy of the signal (~200 MB for 10 minutes at 44.1 kHz) and has no true-peak meter.
  Our streaming meter matches it to 0.02 LU; the tests check that, and check the published
  file with pyloudnorm too.

How pydub is used safely: segments are built from our bounded samples (``AudioSegment(data=...)``
over a memoryview, so its millisecond slices are views, not copies); its ``converter`` is set on
each exported segment to the ffmpeg :func:`_tool` resolves (``VOICEMAP_FFMPEG`` or ``PATH``),
never globally; ``tags=None`` so it adds no ``-metadata``/``-id3v2_version`` of its own; the
export, which has no timeout, gets ffmpeg's own ``-timelimit``; and the temporary WAV and MP3
it leaves in the system temp directory when ffmpeg fails are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from .errors import AudioRejected, PayloadTooLarge

# pydub imports audioop (deprecated in Python 3.11-3.12) and warns at import when neither ffmpeg
# nor avconv is on PATH; neither matters here (each export is pointed at the ffmpeg _tool()
# resolves), so neither may break ``python -W error``.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    warnings.filterwarnings("ignore", "Couldn't find ffmpeg or avconv", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntEncodeError

log = logging.getLogger(__name__)

__all__ = [
    "ACCEPTED_FORMATS",
    "Limits",
    "ProbeInfo",
    "ProcessedAudio",
    "probe",
    "process",
]

# --- Output and processing parameters -------------------------------------------------------

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
_ACCEPTED_HUMAN = "WAV, MP3, M4A/AAC, Ogg (Vorbis or Opus), WebM, AMR or FLAC"
_MIN_SAMPLE_RATE = 4000
_MAX_SAMPLE_RATE = 384000
_MAX_CHANNELS = 8


# --- Public types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 25 * 1024 * 1024
    max_duration_s: float = 600.0
    min_duration_s: float = 1.0


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


@dataclass(frozen=True)
class ProcessedAudio:
    path: Path  # the published MP3, inside the caller's out_dir
    duration_ms: int
    loudness_lufs: float  # integrated loudness of the published file (BS.1770-4)
    true_peak_dbtp: float  # 4x oversampled true peak of the published file
    sample_rate: int
    bitrate_kbps: int
    peaks: list[float]  # 100 values in 0..1 (max |sample| per bucket, loudest bucket = 1)
    source: ProbeInfo


# --- Small helpers --------------------------------------------------------------------------


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


# --- Content sniffing -----------------------------------------------------------------------

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


# --- ffprobe --------------------------------------------------------------------------------


def _run(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            list(args), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise _undecodable("Reading the audio file took too long; it may be damaged.") from None


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


def probe(path: Path, limits: Limits = Limits()) -> ProbeInfo:
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


# --- BS.1770 helpers ------------------------------------------------------------------------


def _k_weighting(rate: int) -> list[tuple[list[float], list[float]]]:
    """The two BS.1770 K-weighting biquads, designed for ``rate`` (libebur128's formulas).

    At 48 kHz these reproduce the coefficients printed in ITU-R BS.1770-4.
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = (
        [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0],
        [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    )
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1.0 + k / q + k * k
    highpass = ([1.0, -2.0, 1.0], [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    return [shelf, highpass]


def _analysis_filter(rate: int) -> str:
    """ffmpeg filter chain: mono at ``rate``, output channel 0 = signal, 1 = K-weighted signal."""
    stages = ",".join(
        "biquad=b0={!r}:b1={!r}:b2={!r}:a0=1:a1={!r}:a2={!r}".format(*b, a[1], a[2])
        for b, a in _k_weighting(rate)
    )
    return (
        f"aresample={rate},aformat=sample_fmts=dbl:channel_layouts=mono,asplit=2[sig][kw];"
        f"[kw]{stages}[w];[sig][w]join=inputs=2:channel_layout=stereo"
    )


def _gated_loudness(sub_energy: np.ndarray, sub_len: int) -> float:
    """BS.1770-4 integrated loudness from sums of squared K-weighted samples per 100 ms.

    Gating blocks are 400 ms with 75 % overlap, i.e. 4 consecutive sub-blocks.
    """
    n = len(sub_energy)
    if n == 0:
        return -math.inf
    if n < 4:  # shorter than one gating block: measure it as one block
        z = np.array([sub_energy.sum() / (n * sub_len)])
    else:
        c = np.concatenate(([0.0], np.cumsum(sub_energy, dtype=np.float64)))
        z = (c[4:] - c[:-4]) / (4 * sub_len)
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10.0 * np.log10(z)
    gated = lk > -70.0
    if not gated.any():
        return -math.inf
    rel = -0.691 + 10.0 * math.log10(z[gated].mean()) - 10.0
    gated &= lk > rel
    return -0.691 + 10.0 * math.log10(z[gated].mean())


def _oversampling_kernels(taps_per_phase: int = 16) -> np.ndarray:
    """Polyphase kernels (3 x 2*half) for the fractional phases of a 4x interpolator.

    Kaiser-windowed sinc; phase 0 is the original sample itself. Kernel j multiplies
    x[m + half - j] to give the signal at m + p/4.
    """
    half = taps_per_phase // 2
    span = 4 * half
    out = np.empty((3, 2 * half), dtype=np.float64)
    window_len = 2 * span + 1
    for p in (1, 2, 3):
        d = np.arange(-half, half)  # d = m - k
        t = 4 * d + p  # offset in upsampled samples from the wanted point
        w = np.kaiser(window_len, 7.0)[t + span]
        h = np.sinc(t / 4.0) * w
        h /= h.sum()
        out[p - 1] = h  # out[p-1][j] = h(4 * (j - half) + p), applied to x[m + half - j]
    return out.astype(np.float32)


_OS_KERNELS = _oversampling_kernels()
_OS_HALF = _OS_KERNELS.shape[1] // 2  # context needed either side of a sample


def _true_peak_envelope(xe: np.ndarray) -> np.ndarray:
    """max |x| over the sample and 3 interpolated points after it, for xe[H:-H] (H context)."""
    half = _OS_HALF
    n = len(xe) - 2 * half
    env = np.abs(xe[half : half + n])
    for kernel in _OS_KERNELS:
        # y[m] = sum_j kernel[j] * x[m + half - j], j in 0..2*half-1 (x[m-half+1] .. x[m+half])
        acc = kernel[0] * xe[2 * half : 2 * half + n]
        for j in range(1, 2 * half):
            acc += kernel[j] * xe[2 * half - j : 2 * half - j + n]
        np.maximum(env, np.abs(acc, out=acc), out=env)
    return env


class _Meter:
    """Streaming integrated loudness and true peak of a mono signal (fed signal + K-weighted).

    Also keeps the true peak of every 10 ms window, so that a retry can lower the level just
    where the MP3 encoder overshot.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.sub_len = rate // 10
        self.window = rate // 100
        self.subs: list[np.ndarray] = []
        self.pending = np.zeros(0, dtype=np.float64)
        self.history = np.zeros(2 * _OS_HALF, dtype=np.float32)
        self.windows: list[np.ndarray] = []  # true peak per 10 ms window
        self.partial = 0.0  # running max of the window not yet complete
        self.env_pos = -_OS_HALF  # sample index of the next true-peak envelope value
        self.samples = 0

    def feed(self, sig: np.ndarray, weighted: np.ndarray) -> None:
        self.samples += len(sig)
        w = np.concatenate((self.pending, weighted.astype(np.float64)))
        whole = len(w) // self.sub_len * self.sub_len
        if whole:
            self.subs.append(np.square(w[:whole]).reshape(-1, self.sub_len).sum(axis=1))
        self.pending = w[whole:]
        xe = np.concatenate((self.history, sig.astype(np.float32)))
        if len(xe) > 2 * _OS_HALF:
            self._record(_true_peak_envelope(xe))
        self.history = xe[-2 * _OS_HALF :]

    def _record(self, env: np.ndarray) -> None:
        if self.env_pos < 0:  # the first values belong to the zero padding before the start
            skip = min(len(env), -self.env_pos)
            env, self.env_pos = env[skip:], self.env_pos + skip
        if not len(env):
            return
        w = self.window
        offset = self.env_pos % w  # position inside the current window
        head = min(len(env), w - offset)
        self.partial = max(self.partial, float(env[:head].max()))
        self.env_pos += len(env)
        if offset + head < w:
            return
        rest = env[head:]
        whole = len(rest) // w * w
        done = [np.array([self.partial], dtype=np.float32)]
        if whole:
            done.append(rest[:whole].reshape(-1, w).max(axis=1))
        self.windows += done
        self.partial = float(rest[whole:].max()) if len(rest) > whole else 0.0

    def result(self) -> tuple[float, float]:
        tail = np.concatenate((self.history, np.zeros(_OS_HALF, dtype=np.float32)))
        self._record(_true_peak_envelope(tail))
        if self.env_pos % self.window:
            self.windows.append(np.array([self.partial], dtype=np.float32))
            self.partial = 0.0
        subs = np.concatenate(self.subs) if self.subs else np.zeros(0)
        if len(subs) < 4 and len(self.pending):
            # very short: count the partial sub-block too (BS.1770 needs one whole block)
            subs = np.concatenate((subs, [np.square(self.pending).sum()]))
        return _gated_loudness(subs, self.sub_len), _db(self.true_peak)

    @property
    def true_peak(self) -> float:
        return max((float(w.max()) for w in self.windows if len(w)), default=self.partial)

    def window_peaks(self) -> np.ndarray:
        return np.concatenate(self.windows) if self.windows else np.zeros(0, np.float32)


# --- ffmpeg streaming -----------------------------------------------------------------------


class _Stream:
    """Run ffmpeg writing raw float32 to stdout and hand it over in chunks of whole frames."""

    def __init__(self, args: list[str], channels: int, stderr_path: Path, timeout: float):
        self.args = args
        self.channels = channels
        self.stderr_path = stderr_path
        self.timeout = timeout
        self.timed_out = False
        self.stopped = False
        self.returncode: int | None = None

    def run(self, chunk_frames: int, on_chunk: Callable[[np.ndarray], bool]) -> None:
        frame_bytes = 4 * self.channels
        buf = bytearray(chunk_frames * frame_bytes)
        view = memoryview(buf)
        with self.stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )

            def kill() -> None:
                self.timed_out = True
                proc.kill()

            timer = threading.Timer(self.timeout, kill)
            timer.start()
            try:
                assert proc.stdout is not None
                while True:
                    got = 0
                    while got < len(buf):
                        n = proc.stdout.readinto(view[got:])
                        if not n:
                            break
                        got += n
                    frames = got // frame_bytes
                    if frames:
                        arr = np.frombuffer(buf, dtype=np.float32, count=frames * self.channels)
                        if not on_chunk(arr.reshape(frames, self.channels)):
                            self.stopped = True
                            break
                    if got < len(buf):
                        break
            finally:
                if self.stopped or self.timed_out:
                    proc.kill()
                if proc.stdout is not None:
                    proc.stdout.close()
                self.returncode = proc.wait()
                timer.cancel()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")[-2000:]
        except OSError:
            return ""


_FFMPEG_QUIET = ["-nostdin", "-hide_banner", "-v", "error"]


def _ffmpeg_base() -> list[str]:
    return [_tool("ffmpeg"), *_FFMPEG_QUIET]


# --- Decode and analyse ---------------------------------------------------------------------


_INT32_TOP = 2**31 - 1


@dataclass
class _Decoded:
    x: np.ndarray  # mono float32 at WORK_RATE (until to_segment() takes its buffer over)
    sig_energy: np.ndarray  # per block: sum of squares of x
    kw_energy: np.ndarray  # per block: sum of squares of the K-weighted signal
    samples: int = field(init=False)

    def __post_init__(self) -> None:
        self.samples = len(self.x)

    @property
    def duration_s(self) -> float:
        return self.samples / WORK_RATE

    def to_segment(self) -> tuple[AudioSegment, float]:
        """Hand the decoded signal over to pydub as 32-bit PCM; return it and its scale (PCM
        units per float unit).

        The conversion is done in place, chunk by chunk, in x's own buffer (float32 and int32
        have the same size), so it costs no memory; x is gone afterwards. Full scale is 1.0
        unless the decoder overshot it (lossy codecs and resampling can), in which case the
        peak maps to full scale: nothing is clipped. An int32 step is 2^-31 of full scale
        (-187 dBFS), far under the noise floor of any recording.
        """
        x, n = self.x, self.samples
        peak = 1.0
        for c0 in range(0, n, _CHUNK_FRAMES):
            c = np.abs(x[c0 : c0 + _CHUNK_FRAMES])
            c = c[np.isfinite(c)]
            if len(c):
                peak = max(peak, float(c.max()))
        scale = _INT32_TOP / peak
        pcm = x.view(np.int32)
        for c0 in range(0, n, _CHUNK_FRAMES):
            c = x[c0 : c0 + _CHUNK_FRAMES].astype(np.float64)  # read the chunk before writing it
            np.nan_to_num(c, copy=False, nan=0.0, posinf=peak, neginf=-peak)
            c *= scale
            np.rint(c, out=c)
            np.clip(c, -_INT32_TOP, _INT32_TOP, out=c)
            pcm[c0 : c0 + len(c)] = c
        self.x = np.zeros(0, dtype=np.float32)
        return _mono_segment(memoryview(pcm).cast("B"), 4), scale


def _mono_segment(data: bytes | memoryview, sample_width: int) -> AudioSegment:
    """A mono segment at WORK_RATE over ``data``. Given a memoryview, pydub's slices of it (and
    so the trim, and the parts its fades copy) are views, not copies."""
    return AudioSegment(data=data, sample_width=sample_width, frame_rate=WORK_RATE, channels=1)


def _pcm(seg: AudioSegment) -> np.ndarray:
    """A mono segment's samples as a numpy array (a view, not a copy)."""
    return np.frombuffer(seg.raw_data, dtype={2: np.int16, 4: np.int32}[seg.sample_width])


def _decode(src: Path, info: ProbeInfo, limits: Limits, tmp: Path) -> _Decoded:
    cap_s = limits.max_duration_s + 0.5  # decode just past the limit, never further
    cap = int(math.ceil(cap_s * WORK_RATE / _BLOCK)) * _BLOCK + _CHUNK_FRAMES
    x = np.empty(cap, dtype=np.float32)  # pages are only touched as they are filled
    blocks = cap // _BLOCK
    sig_e = np.zeros(blocks, dtype=np.float64)
    kw_e = np.zeros(blocks, dtype=np.float64)
    pos = 0

    def on_chunk(arr: np.ndarray) -> bool:
        nonlocal pos
        n = min(len(arr), cap - pos)
        x[pos : pos + n] = arr[:n, 0]
        b0 = pos // _BLOCK
        nb = -(-n // _BLOCK)
        sq = np.zeros((nb * _BLOCK, 2), dtype=np.float32)
        np.square(arr[:n], out=sq[:n])
        sums = sq.reshape(nb, _BLOCK, 2).sum(axis=1, dtype=np.float64)
        sig_e[b0 : b0 + nb] = sums[:, 0]
        kw_e[b0 : b0 + nb] = sums[:, 1]
        pos += n
        return pos < cap

    demuxer = _FORMATS[info.format][0]
    args = _ffmpeg_base() + [
        "-f", demuxer, "-i", str(src),
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-t", f"{cap_s:.3f}",
        "-af", _analysis_filter(WORK_RATE),
        "-c:a", "pcm_f32le", "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    stream = _Stream(args, 2, tmp / "decode.log", FFMPEG_TIMEOUT_S)
    stream.run(_CHUNK_FRAMES, on_chunk)
    if stream.timed_out:
        raise _undecodable("Decoding the file took too long; it may be damaged.")
    decoded_s = pos / WORK_RATE
    if decoded_s >= limits.max_duration_s + 0.25:
        raise _too_long(limits, None)  # whatever the container claimed, it decodes longer
    if pos == 0 or (stream.returncode != 0 and not stream.stopped):
        log.info("decode failed (%s): %s", stream.returncode, stream.stderr().strip()[-300:])
        raise _undecodable()
    if (
        info.duration_s is not None
        and not info.duration_estimated
        and decoded_s < 0.9 * info.duration_s - 0.3
    ):
        raise _undecodable(
            f"The audio file appears truncated or damaged: only {decoded_s:.1f} of "
            f"{info.duration_s:.1f} seconds could be decoded."
        )
    nb = -(-pos // _BLOCK)
    return _Decoded(x[:pos], sig_e[:nb], kw_e[:nb])


@dataclass
class _Segment:
    start_block: int
    end_block: int  # exclusive


def _trim(clip: AudioSegment, seg: _Segment) -> tuple[AudioSegment, int]:
    """Cut the voiced segment out of ``clip`` with pydub (a slice in milliseconds); return it
    and the index of its first analysis block.

    The cut is widened to a 20 ms grid: 20 ms is exactly 21 blocks (441 samples) at WORK_RATE
    and pydub's ms-to-sample arithmetic is exact on it, so the slice starts on a block boundary
    and the block energies of the decode still line up with it.
    """
    total = int(clip.frame_count())
    start_ms = seg.start_block // _GRID_BLOCKS * 20
    end_ms = min(-(-seg.end_block // _GRID_BLOCKS) * 20, total * 1000 // WORK_RATE)
    first = int(clip.frame_count(ms=start_ms))
    return clip[start_ms:end_ms], first // _BLOCK


def _find_voice(dec: _Decoded, limits: Limits) -> _Segment:
    if dec.duration_s < limits.min_duration_s:
        raise AudioRejected(
            f"The recording is only {dec.duration_s:.1f} seconds long; it must be at least "
            f"{limits.min_duration_s:g} second{'s' if limits.min_duration_s != 1 else ''}.",
            code="too_short",
            duration_s=round(dec.duration_s, 2),
            min_duration_s=limits.min_duration_s,
        )
    silent = AudioRejected(
        "The recording is silent: no voice could be heard in it. Check the microphone and "
        "record again.",
        code="silent",
    )
    nf = len(dec.sig_energy) // _FRAME_BLOCKS
    if nf < 2:
        raise silent
    frame_e = dec.sig_energy[: nf * _FRAME_BLOCKS].reshape(nf, _FRAME_BLOCKS).sum(axis=1)
    level = 10.0 * np.log10(np.maximum(frame_e / (_FRAME_BLOCKS * _BLOCK), 1e-12))
    loud = float(level.max())
    if loud < SILENCE_FLOOR_DBFS:
        raise silent
    floor = float(np.percentile(level, 10))
    if loud < QUIET_DBFS and loud - floor < MIN_SPEECH_RANGE_DB:
        raise silent  # a faint, steady hiss: a muted or unplugged microphone, not a voice
    threshold = max(SILENCE_FLOOR_DBFS, min(floor + 0.4 * (loud - floor), loud - 20.0))
    voiced = level > threshold
    # ignore isolated single-frame clicks: voice must last at least two frames in a row
    runs = voiced[:-1] & voiced[1:]
    frame_s = _FRAME_BLOCKS * _BLOCK / WORK_RATE
    if not runs.any() or voiced.sum() * frame_s < MIN_VOICED_S:
        raise silent
    first = int(np.argmax(runs))
    last = int(len(runs) - 1 - np.argmax(runs[::-1])) + 1  # last voiced frame
    pad = int(round(PAD_S * WORK_RATE / _BLOCK))
    start = max(0, first * _FRAME_BLOCKS - pad)
    end = min(len(dec.sig_energy), (last + 1) * _FRAME_BLOCKS + pad)
    return _Segment(start, end)


def _block_true_peaks(x: np.ndarray, a: int, b: int, scale: float = 1.0) -> np.ndarray:
    """Per-block true peak (4x oversampled) of x[a:b] / scale (x: float or integer PCM)."""
    nblocks = -(-(b - a) // _BLOCK)
    out = np.empty(nblocks, dtype=np.float32)
    half = _OS_HALF
    for c0 in range(a, b, _CHUNK_FRAMES):
        c1 = min(b, c0 + _CHUNK_FRAMES)
        lo, hi = c0 - half, c1 + half
        xe = x[max(lo, 0) : min(hi, len(x))].astype(np.float32)
        if scale != 1.0:
            xe *= np.float32(1.0 / scale)
        if lo < 0 or hi > len(x):
            xe = np.concatenate(
                (np.zeros(max(0, -lo), np.float32), xe, np.zeros(max(0, hi - len(x)), np.float32))
            )
        env = _true_peak_envelope(xe)
        nb = -(-len(env) // _BLOCK)
        padded = np.zeros(nb * _BLOCK, dtype=np.float32)
        padded[: len(env)] = env
        k0 = (c0 - a) // _BLOCK
        out[k0 : k0 + nb] = padded.reshape(nb, _BLOCK).max(axis=1)
    return out


def _running_min(a: np.ndarray, w: int) -> np.ndarray:
    """out[i] = min(a[i : i + w]) in O(n) (van Herk / Gil-Werman)."""
    n = len(a)
    blocks = np.concatenate((a, np.full((-n) % w, np.inf, dtype=a.dtype))).reshape(-1, w)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[: n - w + 1], prefix[w - 1 : n])


_LIMITER_NORMAL = (_LIMITER_LOOKAHEAD, _LIMITER_HOLD, _LIMITER_SMOOTH)
_LIMITER_FAST = (3, 3, 2)  # for signals that are mostly spikes: near-clipping, but on target


def _limiter_gains(
    tp: np.ndarray, gain: float, ceiling: np.ndarray, shape: tuple[int, int, int] = _LIMITER_NORMAL
) -> np.ndarray:
    """Per-block gain (<= 1) so that gain * limiter * signal stays under ``ceiling`` (per block).

    A min-filter over [k - hold, k + lookahead] followed by a boxcar of radius smooth guarantees,
    for every block k, that the gains of blocks k-1..k+1 (between which samples are linearly
    interpolated) are no higher than block k needs.
    """
    need = ceiling / np.maximum(tp * np.float32(gain), np.float32(1e-12))
    np.minimum(need, 1.0, out=need)
    if need.min() >= 1.0:
        return need
    la, hold, m = shape
    ones = np.ones(max(hold, la), dtype=np.float32)
    held = _running_min(np.concatenate((ones[:hold], need, ones[:la])), hold + la + 1)
    del need
    c = np.empty(len(held) + 2 * m + 1, dtype=np.float64)
    c[0] = 0.0
    c[1 : m + 1] = held[0]
    c[m + 1 : m + 1 + len(held)] = held
    c[m + 1 + len(held) :] = held[-1]
    np.cumsum(c, out=c)
    return ((c[2 * m + 1 :] - c[: -2 * m - 1]) / (2 * m + 1)).astype(np.float32)


def _predicted_loudness(kw_energy: np.ndarray, gains: np.ndarray | None, gain: float) -> float:
    """Loudness of gain * limiter * signal, from the K-weighted energy of each block."""
    e = kw_energy * (gain * gain) if gains is None else kw_energy * np.square(gains * gain)
    n = len(e) // _SUB_BLOCKS
    if n >= 4:
        subs = e[: n * _SUB_BLOCKS].reshape(n, _SUB_BLOCKS).sum(axis=1)
        return _gated_loudness(subs, _SUB_BLOCKS * _BLOCK)
    return _gated_loudness(np.array([e.sum()]), len(e) * _BLOCK)


def _solve_gain(
    kw_energy: np.ndarray, tp: np.ndarray, target: float, ceiling: np.ndarray, gain: float
) -> tuple[float, np.ndarray]:
    """Find the gain (and limiter gains) whose predicted loudness is ``target``.

    With the normal limiter a signal that is spiky all through (every 50 ms has a peak more
    than ~15 dB over its loudness: clicks, tapping) can top out under the target; then the
    fast limiter is used, which can always get there.
    """
    gain_n, gains = _solve_with(kw_energy, tp, target, ceiling, gain, _LIMITER_NORMAL)
    if _predicted_loudness(kw_energy, gains, gain_n) >= target - 0.05:
        return gain_n, gains
    log.info("target loudness out of the normal limiter's reach: using the fast limiter")
    return _solve_with(kw_energy, tp, target, ceiling, gain, _LIMITER_FAST)


def _solve_with(
    kw_energy: np.ndarray,
    tp: np.ndarray,
    target: float,
    ceiling: np.ndarray,
    gain: float,
    shape: tuple[int, int, int],
) -> tuple[float, np.ndarray]:
    """Loudness never grows faster than the gain, and slower where the limiter works; so the
    root is bracketed by stepping out from the starting gain, then found by regula falsi
    (Illinois). The boost is capped at 24 dB over the starting gain."""

    def err(g_db: float) -> tuple[float, np.ndarray]:
        g = 10.0 ** (g_db / 20.0)
        gains = _limiter_gains(tp, g, ceiling, shape)
        return _predicted_loudness(kw_energy, gains, g) - target, gains

    tol = 0.01
    a = _db(gain)
    ea, ga = err(a)
    if not math.isfinite(ea) or abs(ea) < tol:
        return gain, ga
    step = max(abs(ea), 0.25) * (-1.0 if ea > 0 else 1.0)
    limit = a + 24.0
    b, eb, gb = a, ea, ga
    while True:  # step out until the sign changes
        a, ea = b, eb
        b = min(a + step, limit)
        eb, gb = err(b)
        if abs(eb) < tol or (eb > 0) != (ea > 0) or b >= limit or abs(step) > 48:
            break
        step *= 2.0
    if abs(eb) < tol or (eb > 0) == (ea > 0):
        return 10.0 ** (b / 20.0), gb
    for _ in range(40):  # Illinois regula falsi on [a, b]
        c = (a * eb - b * ea) / (eb - ea)
        ec, gc = err(c)
        if abs(ec) < tol:
            break
        if (ec > 0) != (eb > 0):
            a, ea = b, eb
        else:
            ea /= 2.0
        b, eb = c, ec
    return 10.0 ** (c / 20.0), gc


def _lower_where_over(ceiling: np.ndarray, window_peaks: np.ndarray, goal: float) -> bool:
    """Lower the per-block ceiling around the 10 ms windows of the published file whose true
    peak was over ``goal`` (linear), by how much they were over plus 0.1 dB. Returns whether
    anything was lowered."""
    aim = np.float32(goal * 10.0 ** (-0.1 / 20.0))
    over = window_peaks / aim
    if not (over > 1.0).any():
        return False
    np.minimum(ceiling, aim, out=ceiling)  # never aim above the goal anywhere
    # spread each correction over +-20 ms so the limiter can ramp into it
    spread = np.concatenate((np.ones(2, np.float32), over, np.ones(2, np.float32)))
    spread = -_running_min(-spread, 5)
    block_time = (np.arange(len(ceiling)) + 0.5) * (_BLOCK / WORK_RATE)
    window = np.minimum((block_time * 100).astype(np.int64), len(spread) - 1)
    factor = np.maximum(spread[window], 1.0)
    ceiling /= factor
    return True


# --- Render, encode, verify -----------------------------------------------------------------


def _render(voice: AudioSegment, scale: float, gain: float, gains: np.ndarray) -> AudioSegment:
    """gain * limiter * ``voice`` (32-bit PCM, ``scale`` units per 1.0) as a 16-bit segment,
    faded in and out by pydub (FADE_MS each).

    pydub fades the two ends, as segments of their own, and they are written back in place:
    fading the whole segment would cost two extra copies of the signal (each fade returns a new
    copy, and slices the segment it is given), ~50 MB at 10 minutes.
    """
    v = _pcm(voice)
    n = len(v)
    y = np.empty(n, dtype=np.int16)
    centers = (np.arange(len(gains)) + 0.5) * _BLOCK - 0.5
    k = 32768.0 * gain / scale
    for c0 in range(0, n, _CHUNK_FRAMES):
        c1 = min(n, c0 + _CHUNK_FRAMES)
        g = np.interp(np.arange(c0, c1, dtype=np.float64), centers, gains)
        g *= k
        g *= v[c0:c1]
        np.rint(g, out=g)
        np.clip(g, -32768, 32767, out=g)  # never binds: the limiter keeps it under -1.4 dBTP
        y[c0:c1] = g
    seg = _mono_segment(memoryview(y).cast("B"), 2)
    fade = min(n // 2, int(seg.frame_count(ms=FADE_MS)))
    head = seg.get_sample_slice(0, fade).fade_in(FADE_MS)
    tail = seg.get_sample_slice(n - fade, n).fade_out(FADE_MS)
    y[:fade] = _pcm(head)
    y[n - fade :] = _pcm(tail)
    return seg


def _waveform(seg: AudioSegment) -> list[float]:
    """_PEAK_BUCKETS values in 0..1: max |sample| per bucket of the segment, loudest = 1."""
    y = _pcm(seg)
    edges = np.linspace(0, len(y), _PEAK_BUCKETS + 1).astype(np.int64)
    peaks = np.array(
        [np.abs(y[e0:e1].astype(np.int32)).max(initial=0) for e0, e1 in pairwise(edges)],
        dtype=np.float64,
    )
    top = float(peaks.max())
    if top <= 0:
        return [0.0] * len(peaks)
    return [round(float(v), 3) for v in peaks / top]


_EXPORT_CODE = AudioSegment.export.__code__


def _encode(seg: AudioSegment, out: Path) -> None:
    """Encode ``seg`` to ``out`` with pydub's ``export``: MPEG-1 Layer III, OUTPUT_RATE, mono,
    CBR, no ID3/metadata/chapters, bit-exact.

    pydub writes the segment to a temporary WAV and runs ``converter -y -f wav -i <wav> -acodec
    libmp3lame -b:a 64k <parameters> -f mp3 <tmp>``; with ``tags=None`` it adds nothing else
    (no ``-metadata``, no ``-id3v2_version``), so ``parameters`` decide the rest.

    LAME quality 7 (no noise shaping): on speech limited to -1.4 dBTP its output's true peak
    stays at or under the input's, while -q 2..5 overshot by up to 2 dB here at 64 kbit/s
    (forcing re-encodes); it is also 2-3x faster and, with the signal band-limited to 11 kHz,
    64 kbit/s leaves it plenty of bits.
    """
    seg.converter = _tool("ffmpeg")  # on this instance only: export runs self.converter
    parameters = [
        *_FFMPEG_QUIET,
        "-timelimit", str(int(FFMPEG_TIMEOUT_S)),  # export has no timeout: ffmpeg's own CPU limit
        "-af", f"aresample={OUTPUT_RATE}",
        "-compression_level", str(LAME_QUALITY),
        "-ar", str(OUTPUT_RATE), "-ac", "1",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-fflags", "+bitexact", "-flags:a", "+bitexact",
        "-id3v2_version", "0", "-write_id3v1", "0", "-write_xing", "1",
    ]  # fmt: skip
    try:
        with out.open("wb") as f:
            seg.export(
                f,
                format="mp3",
                codec="libmp3lame",
                bitrate=f"{BITRATE_KBPS}k",
                parameters=parameters,
                tags=None,
            )
    except BaseException as exc:
        _remove_export_leftovers(exc)
        if isinstance(exc, CouldntEncodeError):
            raise RuntimeError(f"MP3 encoding failed: {str(exc)[-500:]}") from None
        raise


def _remove_export_leftovers(exc: BaseException) -> None:
    """pydub's export removes its temporary WAV and MP3 only when ffmpeg succeeds: find them in
    the export's frame of the traceback, close and delete them."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code is _EXPORT_CODE:
            names = frame.f_locals
            for tmp_file in (names.get("data"), names.get("output")):
                path = getattr(tmp_file, "name", None)
                if isinstance(path, str) and tmp_file is not names.get("out_f"):
                    tmp_file.close()
                    Path(path).unlink(missing_ok=True)
        tb = tb.tb_next


def _measure_mp3(path: Path, tmp: Path) -> tuple[float, float, int, np.ndarray]:
    """Decode the published file and measure it: LUFS, dBTP, samples at OUTPUT_RATE and the
    true peak (linear) of each 10 ms window."""
    meter = _Meter(OUTPUT_RATE)

    def on_chunk(arr: np.ndarray) -> bool:
        meter.feed(arr[:, 0], arr[:, 1])
        return True

    args = _ffmpeg_base() + [
        "-f", "mp3", "-i", str(path), "-map", "0:a:0",
        "-af", _analysis_filter(OUTPUT_RATE),
        "-c:a", "pcm_f32le", "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    stream = _Stream(args, 2, tmp / "verify.log", FFMPEG_TIMEOUT_S)
    stream.run(OUTPUT_RATE // 10 * 20, on_chunk)
    if stream.timed_out or stream.returncode != 0 or meter.samples == 0:
        raise RuntimeError(f"could not decode our own MP3: {stream.stderr()[-500:]}")
    lufs, tp = meter.result()
    return lufs, tp, meter.samples, meter.window_peaks()


def _check_output(path: Path) -> int:
    """Check the published MP3 with ffprobe (format, rate, mono, no tags); return its kbps."""
    data, stderr, rc = _ffprobe_json(
        path,
        None,
        "format=format_name,bit_rate:format_tags:stream=codec_name,sample_rate,channels,"
        "bit_rate:stream_tags",
    )
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    problems = []
    if rc != 0 or fmt.get("format_name") != "mp3" or len(streams) != 1:
        problems.append(f"not a single-stream mp3 ({fmt.get('format_name')}, {len(streams)})")
    else:
        s = streams[0]
        if s.get("codec_name") != "mp3" or s.get("channels") != 1:
            problems.append("not mono mp3")
        if _int(s.get("sample_rate")) != OUTPUT_RATE:
            problems.append(f"sample rate {s.get('sample_rate')}")
        if s.get("tags"):
            problems.append(f"stream tags {sorted(s['tags'])}")
    if fmt.get("tags"):
        problems.append(f"format tags {sorted(fmt['tags'])}")
    if problems:
        raise RuntimeError(f"published MP3 failed its check: {'; '.join(problems)} {stderr}")
    rate = _int((streams[0] or {}).get("bit_rate")) or BITRATE_KBPS * 1000
    return int(round(rate / 1000))


def _publish(tmp_file: Path, out_dir: Path, stem: str | None) -> Path:
    if stem is None:
        digest = hashlib.sha256()
        with tmp_file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        stem = digest.hexdigest()[:32]
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        raise ValueError(f"bad output name {stem!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{stem}.mp3"
    fd, part = tempfile.mkstemp(dir=out_dir, prefix=f".{stem}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as dst, tmp_file.open("rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.chmod(part, 0o644)
        os.replace(part, final)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
    return final


# --- Entry point ----------------------------------------------------------------------------


def process(
    src: Path, out_dir: Path, limits: Limits = Limits(), *, stem: str | None = None
) -> ProcessedAudio:
    """Check, clean up and publish the recording ``src`` as an MP3 in ``out_dir``.

    The published file is named ``<stem>.mp3`` (default: the first 32 hex digits of its SHA-256)
    and is the only file this leaves behind; on any error nothing is left in ``out_dir``.
    Raises :class:`PayloadTooLarge` or :class:`AudioRejected` (codes ``not_audio``,
    ``undecodable``, ``too_long``, ``too_short``, ``silent``) for unacceptable uploads, and
    ``RuntimeError`` for problems of our own (ffmpeg missing or failing on our output).
    """
    src, out_dir = Path(src), Path(out_dir)
    info = probe(src, limits)
    with tempfile.TemporaryDirectory(prefix="voicemap-audio-") as tmp_name:
        tmp = Path(tmp_name)
        dec = _decode(src, info, limits, tmp)
        seg = _find_voice(dec, limits)
        clip, scale = dec.to_segment()
        voice, first_block = _trim(clip, seg)  # a view into the clip's buffer
        del clip
        n_voice = int(voice.frame_count())
        tp = _block_true_peaks(_pcm(voice), 0, n_voice, scale)
        kw = dec.kw_energy[first_block : first_block + len(tp)]
        source_lufs = _predicted_loudness(kw, None, 1.0)
        if not math.isfinite(source_lufs):
            raise AudioRejected(
                "The recording is silent: no voice could be heard in it. Check the microphone "
                "and record again.",
                code="silent",
            )
        gain = 10.0 ** ((TARGET_LUFS - source_lufs) / 20.0)
        ceiling = np.full(len(tp), 10.0 ** (PRE_ENCODE_CEILING_DBTP / 20.0), dtype=np.float32)
        tp_goal = 10.0 ** ((MAX_TRUE_PEAK_DBTP - TRUE_PEAK_MARGIN_DB) / 20.0)
        mp3 = tmp / "out.mp3"
        offset = -MP3_LOUDNESS_BIAS_LU  # predicted-vs-published correction, refined per encode
        fallback: tuple[Path, float, float, int, list[float]] | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            gain, gains = _solve_gain(kw, tp, TARGET_LUFS + offset, ceiling, gain)
            if _predicted_loudness(kw, gains, gain) < TARGET_LUFS + offset - 1.0:
                # Only spikes (clicks, taps): -16 LUFS is out of reach under the peak ceiling.
                raise AudioRejected(
                    "No voice could be heard in the recording, only clicks or bursts of noise. "
                    "Record again, speaking close to the microphone.",
                    code="silent",
                )
            rendered = _render(voice, scale, gain, gains)
            del gains
            peaks = _waveform(rendered)
            _encode(rendered, mp3)
            del rendered
            lufs, true_peak, n_out, window_peaks = _measure_mp3(mp3, tmp)
            log.debug(
                "attempt %d: gain %+.2f dB, limiter ceiling %.2f..%.2f dBTP -> %.2f LUFS %.2f dBTP",
                attempt, _db(gain), _db(float(ceiling.min())), _db(float(ceiling.max())), lufs,
                true_peak,
            )  # fmt: skip
            if true_peak <= _db(tp_goal) and abs(lufs - TARGET_LUFS) <= LOUDNESS_TOLERANCE_LU:
                break
            if true_peak <= MAX_TRUE_PEAK_DBTP - 0.05 and abs(lufs - TARGET_LUFS) <= 0.5:
                # within the promise, if not our own margins: keep it in case retries do worse
                mp3 = mp3.replace(tmp / "fallback.mp3")
                fallback = (mp3, lufs, true_peak, n_out, peaks)
                mp3 = tmp / "out.mp3"
            offset += TARGET_LUFS - lufs
            _lower_where_over(ceiling, window_peaks, tp_goal)
        else:
            if fallback is not None:
                mp3, lufs, true_peak, n_out, peaks = fallback
            if true_peak > MAX_TRUE_PEAK_DBTP or abs(lufs - TARGET_LUFS) > 1.0:
                raise RuntimeError(
                    f"could not normalise: {lufs:.2f} LUFS, {true_peak:.2f} dBTP after "
                    f"{MAX_ATTEMPTS} encodes"
                )
        kbps = _check_output(mp3)
        del dec, voice  # free the decoded signal before copying out
        final = _publish(mp3, out_dir, stem)
    log.info(
        "published %s: %.2f s, %.2f LUFS, %.2f dBTP (from %s/%s, %d encode(s))",
        final.name, n_out / OUTPUT_RATE, lufs, true_peak, info.format, info.codec, attempt,
    )  # fmt: skip
    return ProcessedAudio(
        path=final,
        duration_ms=int(round(n_out * 1000 / OUTPUT_RATE)),
        loudness_lufs=round(lufs, 2),
        true_peak_dbtp=round(true_peak, 2),
        sample_rate=OUTPUT_RATE,
        bitrate_kbps=kbps,
        peaks=peaks,
        source=info,
    )
