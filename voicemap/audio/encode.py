"""Render, encode, verify and publish.

gain x limiter x voice is rendered as a 16-bit segment (the limiter keeps it under -1.4 dBTP,
so it never clips, and 16-bit rounding sits ~85 dB under the speech, far below what a
64 kbit/s MP3 keeps), which pydub fades in and out (30 ms). ffmpeg, run here as a subprocess
of our own, reads those samples on its stdin and writes the MP3 itself: MPEG-1 Layer III,
44.1 kHz (ffmpeg resamples; pydub's ``set_frame_rate`` is ``audioop.ratecv``, with no
anti-alias filter), mono, 64 kbit/s CBR, every tag stripped. No temporary file is involved
besides the MP3 itself, which goes where the caller says (inside the pipeline's own temporary
directory). ``AudioSegment.export`` is not used: it runs its converter with no timeout and, when
ffmpeg fails, leaves its temporary WAV and MP3 in the system temporary directory.

The published MP3 is then decoded and measured (same meter, 4x oversampled true peak) with a
streamed ffmpeg decode: ``from_file`` would hold ~4 copies of the 44.1 kHz decode (~200 MB for
10 minutes), and the meter needs the K-weighted signal, which the decode computes in the same
pass. Finally the file is checked with ffprobe and published atomically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from itertools import pairwise
from pathlib import Path

import numpy as np

from .decode import _ffmpeg_base, _mono_segment, _pcm, _Stream
from .loudness import _analysis_filter, _Meter
from .probing import _ffprobe_json, _int
from .settings import (
    _BLOCK,
    _CHUNK_FRAMES,
    _PEAK_BUCKETS,
    BITRATE_KBPS,
    FADE_MS,
    FFMPEG_TIMEOUT_S,
    LAME_QUALITY,
    OUTPUT_RATE,
    AudioSegment,
)

# --- Render ---------------------------------------------------------------------------------------


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


# --- Encode ---------------------------------------------------------------------------------------


def _encode(seg: AudioSegment, out: Path) -> None:
    """Encode ``seg`` to ``out`` with ffmpeg: MPEG-1 Layer III, OUTPUT_RATE, mono, CBR, no
    ID3/metadata/chapters, bit-exact. Raises ``RuntimeError`` if ffmpeg fails or times out,
    and then leaves no ``out`` behind.

    The segment's samples go to ffmpeg's stdin as raw PCM (its rate, width and channels come
    from the segment: nothing to guess), and ffmpeg writes ``out`` itself: no temporary file.

    LAME quality 7 (no noise shaping): on speech limited to -1.4 dBTP its output's true peak
    stays at or under the input's, while -q 2..5 overshot by up to 2 dB here at 64 kbit/s
    (forcing re-encodes); it is also 2-3x faster and, with the signal band-limited to 11 kHz,
    64 kbit/s leaves it plenty of bits.
    """
    sample_fmt = {2: "s16le", 4: "s32le"}[seg.sample_width]
    args = [
        *_ffmpeg_base(), "-y",
        "-f", sample_fmt, "-ar", str(seg.frame_rate), "-ac", str(seg.channels), "-i", "pipe:0",
        "-acodec", "libmp3lame", "-b:a", f"{BITRATE_KBPS}k",
        "-timelimit", str(int(FFMPEG_TIMEOUT_S)),  # ffmpeg's own CPU limit, besides ours
        "-af", f"aresample={OUTPUT_RATE}",
        "-compression_level", str(LAME_QUALITY),
        "-ar", str(OUTPUT_RATE), "-ac", "1",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-fflags", "+bitexact", "-flags:a", "+bitexact",
        "-id3v2_version", "0", "-write_id3v1", "0", "-write_xing", "1",
        "-f", "mp3", str(out),
    ]  # fmt: skip
    try:
        res = subprocess.run(
            args,
            input=seg.raw_data,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        out.unlink(missing_ok=True)
        raise RuntimeError(f"MP3 encoding failed: timed out after {FFMPEG_TIMEOUT_S:g} s") from None
    if res.returncode != 0:
        out.unlink(missing_ok=True)
        stderr = res.stderr.decode("utf-8", "replace")[-500:]
        raise RuntimeError(f"MP3 encoding failed (ffmpeg exit {res.returncode}): {stderr}")


# --- Verify and publish ---------------------------------------------------------------------------


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
