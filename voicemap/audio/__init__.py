"""Audio intake: check an uploaded recording, clean it up and publish it as a small MP3.

Pure package: paths in, a :class:`ProcessedAudio` (or an exception from :mod:`voicemap.errors`)
out. No Flask, no database, no storage; the caller decides where ``out_dir`` is.

One module per stage, each read top to bottom; :mod:`.pipeline` runs them in order:

* :mod:`.settings`: targets, limits, tool lookup, messages;
* :mod:`.probing`: content sniffing and ffprobe (:func:`probe`);
* :mod:`.decode`: the bounded ffmpeg decode of untrusted input, into pydub;
* :mod:`.trim`: finding the voice and cutting the silence around it;
* :mod:`.loudness`: BS.1770 meter, true peak, limiter and gain;
* :mod:`.encode`: render, MP3 encoding by ffmpeg, verification, publishing;
* :mod:`.pipeline`: :func:`process`.

From the trim to the encoder the signal is a ``pydub.AudioSegment``; ffmpeg, driven directly,
and numpy do what pydub cannot do safely or at all (each module says where and why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .probing import ACCEPTED_FORMATS, ProbeInfo, probe
from .settings import (
    BITRATE_KBPS,
    FADE_MS,
    LOUDNESS_TOLERANCE_LU,
    MAX_ATTEMPTS,
    MAX_TRUE_PEAK_DBTP,
    OUTPUT_RATE,
    PAD_S,
    TARGET_LUFS,
    WORK_RATE,
    Limits,
)

if TYPE_CHECKING:
    from .pipeline import ProcessedAudio, process


def __getattr__(name: str) -> Any:
    # The pipeline (numpy, pydub) loads on first use, so that importing the package for its
    # settings and limits (the CLI, the web layer) does not load the signal stack.
    if name in ("ProcessedAudio", "process"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCEPTED_FORMATS",
    "BITRATE_KBPS",
    "FADE_MS",
    "LOUDNESS_TOLERANCE_LU",
    "MAX_ATTEMPTS",
    "MAX_TRUE_PEAK_DBTP",
    "OUTPUT_RATE",
    "PAD_S",
    "TARGET_LUFS",
    "WORK_RATE",
    "Limits",
    "ProbeInfo",
    "ProcessedAudio",
    "probe",
    "process",
]
