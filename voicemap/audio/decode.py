"""The bounded decode: the only decode of untrusted input, straight into pydub.

One ffmpeg process decodes the first audio stream to mono float32 at 22.05 kHz, stopping just
past the duration limit (``-t``), and streams it to us in chunks into a buffer sized for that
limit, so a file whose container lies or omits its duration (a tiny FLAC or Opus of hours of
silence) cannot take more than ~55 MB. Reaching the cap is ``too_long``. The same ffmpeg
process also emits the BS.1770 K-weighted signal as a second channel, which is reduced on the
fly to per-block energies for the loudness meter. The samples then become a 32-bit mono
``AudioSegment``, converted in place (:meth:`_Decoded.to_segment`).

Why not ``AudioSegment.from_file``: it runs ffprobe and ffmpeg with no timeout, reads ffmpeg's
whole output into memory with no bound and keeps several whole copies of it (bytes, bytearray,
the parsed WAV): a 1 MB FLAC of two hours of silence would cost gigabytes. Without ``format``
it also lets ffmpeg guess the container.
"""

from __future__ import annotations

import logging
import math
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .loudness import _analysis_filter
from .probing import _FORMATS, ProbeInfo
from .settings import (
    _BLOCK,
    _CHUNK_FRAMES,
    FFMPEG_TIMEOUT_S,
    WORK_RATE,
    AudioSegment,
    Limits,
    _too_long,
    _tool,
    _undecodable,
)

log = logging.getLogger(__name__)


# --- ffmpeg streaming -----------------------------------------------------------------------------


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


# --- The decoded signal ---------------------------------------------------------------------------


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


# --- Decode ---------------------------------------------------------------------------------------


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
