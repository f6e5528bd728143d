"""Find the voice and trim the silence around it.

Leading and trailing silence is found on ~10 ms frame levels against a threshold set between
the noise floor and the loudest frame, and pydub cuts the voice out with a millisecond slice
(a view, not a copy), keeping ~200 ms of pad each side on a 20 ms grid, which falls exactly on
the analysis blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AudioRejected
from .decode import _Decoded
from .settings import (
    _BLOCK,
    _FRAME_BLOCKS,
    _GRID_BLOCKS,
    MIN_SPEECH_RANGE_DB,
    MIN_VOICED_S,
    PAD_S,
    QUIET_DBFS,
    SILENCE_FLOOR_DBFS,
    WORK_RATE,
    AudioSegment,
    Limits,
)


@dataclass
class _Segment:
    start_block: int
    end_block: int  # exclusive


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
