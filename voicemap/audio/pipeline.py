"""The pipeline: :func:`process` takes an upload to a published MP3, one stage at a time.

1. **Probe** (:mod:`.probing`): size, content sniffing, ffprobe with the demuxer forced.
2. **Bounded decode** (:mod:`.decode`): mono float32 at 22.05 kHz plus K-weighted block
   energies, never past the duration limit; handed to pydub in place.
3. **Trim** (:mod:`.trim`): the voice and ~200 ms of pad, a pydub slice.
4. **Loudness and true peak** (:mod:`.loudness`): gain and look-ahead limiter for -16 LUFS
   under the pre-encode peak ceiling.
5. **Render, fade, encode** (:mod:`.encode`): 16-bit, pydub fades, ffmpeg writes the MP3.
6. **Verify** (:mod:`.encode`, :mod:`.loudness`): the published MP3 is decoded and measured
   again. If the encoder's overshoot pushed the true peak above -1.1 dBTP (0.1 dB margin under
   the -1 dBTP ceiling; the meter agrees with ffmpeg's ebur128 to ~0.01 dB) the limiter ceiling
   is lowered just around the 10 ms windows that were over; if loudness is off by more than
   0.3 LU the predicted-vs-published offset is corrected; then it is rendered and encoded again
   (rare: up to 4 encodes in all).
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioRejected
from .decode import _decode, _pcm
from .encode import _check_output, _encode, _measure_mp3, _publish, _render, _waveform
from .loudness import _block_true_peaks, _lower_where_over, _predicted_loudness, _solve_gain
from .probing import ProbeInfo, probe
from .settings import (
    _DEFAULT_LIMITS,
    LOUDNESS_TOLERANCE_LU,
    MAX_ATTEMPTS,
    MAX_TRUE_PEAK_DBTP,
    MP3_LOUDNESS_BIAS_LU,
    OUTPUT_RATE,
    PRE_ENCODE_CEILING_DBTP,
    TARGET_LUFS,
    TRUE_PEAK_MARGIN_DB,
    Limits,
    _db,
)
from .trim import _find_voice, _trim

log = logging.getLogger(__name__)


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


def process(
    src: Path, out_dir: Path, limits: Limits = _DEFAULT_LIMITS, *, stem: str | None = None
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
