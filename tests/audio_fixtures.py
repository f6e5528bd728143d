"""Make real test audio at test time (nothing is committed): espeak-ng speech, ffmpeg encodes,
AMR through the opencore / VisualOn encoder libraries, and hostile files.

Used by tests/test_audio.py and bench/bench_audio.py. Needs ``espeak-ng`` and ``ffmpeg`` on
PATH; AMR needs the Debian packages ``libopencore-amrnb0`` (AMR-NB encoder) and
``libvo-amrwbenc0`` (AMR-WB encoder), since Debian's ffmpeg only decodes AMR.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import re
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"
ESPEAK = shutil.which("espeak-ng")

TEXT = {
    "en": (
        "Welcome to the Temple of Heaven. This audio guide was recorded by the children of "
        "class three. Please walk slowly and listen."
    ),
    "zh": "欢迎来到天坛。这段语音导览是三年级的小朋友录制的。请慢慢走，仔细听。",
}

# name -> (file suffix, ffmpeg output arguments)
FORMATS: dict[str, tuple[str, list[str]]] = {
    "wav": (".wav", ["-c:a", "pcm_s16le", "-f", "wav"]),
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"]),
    "m4a": (".m4a", ["-c:a", "aac", "-b:a", "96k", "-f", "ipod"]),
    "adts": (".aac", ["-c:a", "aac", "-b:a", "96k", "-f", "adts"]),
    "ogg_vorbis": (".ogg", ["-c:a", "libvorbis", "-q:a", "3", "-f", "ogg"]),
    "ogg_opus": (".opus", ["-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-f", "ogg"]),
    "webm_opus": (".webm", ["-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-f", "webm"]),
    "flac": (".flac", ["-c:a", "flac", "-f", "flac"]),
    "ogg_speex": (".spx", ["-c:a", "libspeex", "-ar", "16000", "-ac", "1", "-f", "ogg"]),
}


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, check=True, **kw)


def ffmpeg(*args: str) -> None:
    run([FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", *args])


# --- speech ---------------------------------------------------------------------------------


def espeak(text: str, voice: str, out: Path) -> Path:
    if not ESPEAK:
        raise RuntimeError("espeak-ng is not installed")
    run([ESPEAK, "-v", voice, "-w", str(out), text])
    return out


def speech_wav(
    out: Path,
    lang: str = "en",
    *,
    lead_s: float = 1.5,
    trail_s: float = 2.0,
    gain_db: float = -20.0,
    rate: int = 44100,
    channels: int = 2,
    noise_dbfs: float | None = -70.0,
    repeat: int = 1,
    seconds: float | None = None,
) -> Path:
    """espeak-ng speech, ``repeat`` times, with silence around it, at a wrong level.

    ``noise_dbfs`` adds a little room noise (a phone is never digitally silent). ``seconds``
    loops the speech to exactly that length instead (for long clips).
    """
    voice = espeak(TEXT[lang], lang, out.with_suffix(f".{lang}.raw.wav"))
    parts = [f"anullsrc=r=22050:cl=mono:d={lead_s}"] + ["movie"] * repeat
    filt = []
    inputs: list[str] = []
    for i, p in enumerate(parts):
        if p == "movie":
            inputs += ["-i", str(voice)]
        else:
            inputs += ["-f", "lavfi", "-i", p]
        filt.append(f"[{i}:a]aformat=sample_rates=22050:channel_layouts=mono[p{i}]")
    inputs += ["-f", "lavfi", "-i", f"anullsrc=r=22050:cl=mono:d={trail_s}"]
    n = len(parts) + 1
    filt.append(f"[{n - 1}:a]aformat=sample_rates=22050:channel_layouts=mono[p{n - 1}]")
    chain = "".join(f"[p{i}]" for i in range(n)) + f"concat=n={n}:v=0:a=1,volume={gain_db}dB"
    if seconds is not None:
        chain += f",aloop=loop=-1:size=2e9,atrim=duration={seconds}"
    if noise_dbfs is not None:
        amp = 10 ** (noise_dbfs / 20) * math.sqrt(3)  # uniform white noise at that RMS
        filt.append(chain + "[sp]")
        total = seconds if seconds is not None else 3600
        filt.append(
            f"anoisesrc=r=22050:c=white:a={amp:.8f}:d={total}:seed=7[nz];"
            "[sp][nz]amix=inputs=2:duration=first:normalize=0"
        )
    else:
        filt.append(chain)
    ffmpeg(
        *inputs,
        "-filter_complex", ";".join(filt),
        "-ar", str(rate), "-ac", str(channels), "-c:a", "pcm_s16le", "-f", "wav", str(out),
    )  # fmt: skip
    return out


def encode(src: Path, fmt: str, out_dir: Path, *, extra: list[str] | None = None) -> Path:
    """Encode ``src`` to one of FORMATS (or amr_nb / amr_wb) and return the new file."""
    if fmt == "amr_nb":
        return amr_nb(src, out_dir / f"{src.stem}.amr")
    if fmt == "amr_wb":
        return amr_wb(src, out_dir / f"{src.stem}.wb.amr")
    suffix, args = FORMATS[fmt]
    out = out_dir / f"{src.stem}.{fmt}{suffix}"
    ffmpeg("-i", str(src), *(extra or []), *args, str(out))
    return out


def pcm16(src: Path, rate: int) -> np.ndarray:
    raw = run([FFMPEG, "-nostdin", "-v", "error", "-i", str(src), "-ac", "1", "-ar", str(rate),
               "-f", "s16le", "-c:a", "pcm_s16le", "-"]).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.int16)


# --- AMR (Debian's ffmpeg decodes it but cannot encode it) ------------------------------------


def _lib(name: str, soname: str) -> ctypes.CDLL | None:
    for candidate in (ctypes.util.find_library(name), soname):
        if candidate:
            try:
                return ctypes.CDLL(candidate)
            except OSError:
                pass
    return None


def amr_nb_available() -> bool:
    return _lib("opencore-amrnb", "libopencore-amrnb.so.0") is not None


def amr_wb_available() -> bool:
    return _lib("vo-amrwbenc", "libvo-amrwbenc.so.0") is not None


def amr_nb(src: Path, out: Path, mode: int = 7) -> Path:
    """AMR-NB (``#!AMR``) via opencore-amrnb's encoder; mode 7 = 12.2 kbit/s."""
    lib = _lib("opencore-amrnb", "libopencore-amrnb.so.0")
    if lib is None:
        raise RuntimeError("libopencore-amrnb0 is not installed")
    lib.Encoder_Interface_init.restype = ctypes.c_void_p
    lib.Encoder_Interface_init.argtypes = [ctypes.c_int]
    lib.Encoder_Interface_Encode.restype = ctypes.c_int
    lib.Encoder_Interface_Encode.argtypes = [
        ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_short),
        ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int,
    ]  # fmt: skip
    lib.Encoder_Interface_exit.argtypes = [ctypes.c_void_p]
    return _amr(src, out, 8000, 160, b"#!AMR\n", mode, lib.Encoder_Interface_init,
                lib.Encoder_Interface_Encode, lib.Encoder_Interface_exit, init_arg=True)


def amr_wb(src: Path, out: Path, mode: int = 8) -> Path:
    """AMR-WB (``#!AMR-WB``) via VisualOn's encoder; mode 8 = 23.85 kbit/s."""
    lib = _lib("vo-amrwbenc", "libvo-amrwbenc.so.0")
    if lib is None:
        raise RuntimeError("libvo-amrwbenc0 is not installed")
    lib.E_IF_init.restype = ctypes.c_void_p
    lib.E_IF_init.argtypes = []
    lib.E_IF_encode.restype = ctypes.c_int
    lib.E_IF_encode.argtypes = [
        ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_short),
        ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int,
    ]  # fmt: skip
    lib.E_IF_exit.argtypes = [ctypes.c_void_p]
    return _amr(src, out, 16000, 320, b"#!AMR-WB\n", mode, lib.E_IF_init, lib.E_IF_encode,
                lib.E_IF_exit, init_arg=False)


def _amr(src, out, rate, frame, magic, mode, init, encode_frame, exit_, *, init_arg) -> Path:
    pcm = pcm16(src, rate)
    pcm = np.concatenate((pcm, np.zeros((-len(pcm)) % frame, dtype=np.int16)))
    state = init(0) if init_arg else init()
    buf = (ctypes.c_ubyte * 64)()
    chunks = [magic]
    try:
        for i in range(0, len(pcm), frame):
            block = np.ascontiguousarray(pcm[i : i + frame])
            ptr = block.ctypes.data_as(ctypes.POINTER(ctypes.c_short))
            n = encode_frame(state, mode, ptr, buf, 0)
            if n <= 0:
                raise RuntimeError(f"AMR encoder returned {n}")
            chunks.append(bytes(buf[:n]))
    finally:
        exit_(state)
    out.write_bytes(b"".join(chunks))
    return out


# --- hostile and special files ----------------------------------------------------------------

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000005000001e2260597"
    "0000000049454e44ae426082"
)


def text_file(out: Path) -> Path:
    out.write_text("This is not audio.\nJust some notes about the Forbidden City.\n" * 50)
    return out


def html_file(out: Path) -> Path:
    out.write_text("<!DOCTYPE html><html><head><title>x</title></head><body>" + "<p>hi</p>" * 200)
    return out


def png_file(out: Path) -> Path:
    out.write_bytes(PNG_1PX)
    return out


def zip_with_audio(audio: Path, out: Path) -> Path:
    """A zip (stored, not compressed) whose member is a real audio file."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        z.write(audio, audio.name)
    return out


def truncated(src: Path, out: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def video_only(out: Path, fmt: str = "mp4") -> Path:
    codec = ["-c:v", "libx264", "-preset", "ultrafast"] if fmt == "mp4" else ["-c:v", "libvpx"]
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=2", *codec,
           "-f", fmt, str(out))  # fmt: skip
    return out


def silence(out: Path, seconds: float = 3.0, noise_dbfs: float | None = None) -> Path:
    src = f"anullsrc=r=44100:cl=mono:d={seconds}"
    if noise_dbfs is not None:
        amp = 10 ** (noise_dbfs / 20) * math.sqrt(3)
        src = f"anoisesrc=r=44100:c=white:a={amp:.8f}:d={seconds}"
    ffmpeg("-f", "lavfi", "-i", src, "-c:a", "pcm_s16le", str(out))
    return out


def clicks(out: Path, seconds: float = 6.0) -> Path:
    """A 3-sample click every 23 ms and nothing else (a finger tapping the microphone)."""
    ffmpeg("-f", "lavfi", "-i", f"aevalsrc=0.5*lt(mod(n\\,1000)\\,3):s=44100:d={seconds}",
           "-c:a", "pcm_s16le", str(out))  # fmt: skip
    return out


def tone(out: Path, seconds: float, *, freq: float = 440.0, extra: list[str] | None = None) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=f={freq}:r=44100:d={seconds}", "-af", "volume=-6dB",
           *(extra or []), str(out))  # fmt: skip
    return out


def flac_bomb(out: Path, seconds: float = 7200.0, *, hide_duration: bool = False) -> Path:
    """~1.3 MB of FLAC that decodes to ``seconds`` of silence; made in under a second.

    With ``hide_duration`` the FLAC is written to a pipe, so STREAMINFO carries no length and
    ffprobe reports none: only a bounded decode can tell.
    """
    args = ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", str(seconds), "-c:a", "flac"]
    if hide_duration:
        data = run([FFMPEG, "-nostdin", "-v", "error", *args, "-f", "flac", "-"]).stdout
        out.write_bytes(data)
    else:
        ffmpeg(*args, "-f", "flac", str(out))
    return out


def webm_bomb(out: Path, work: Path, copies: int = 120) -> Path:
    """WebM/Opus of ``copies`` minutes of near-silence with no duration in its header (as
    browsers' MediaRecorder writes it): a minute of Opus concatenated by stream copy to a pipe."""
    one = work / "minute.ogg"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "60", "-c:a", "libopus",
           "-b:a", "6k", "-frame_duration", "60", str(one))  # fmt: skip
    listing = work / "minutes.txt"
    listing.write_text("".join(f"file '{one}'\n" for _ in range(copies)))
    data = run([FFMPEG, "-nostdin", "-v", "error", "-f", "concat", "-safe", "0", "-i",
                str(listing), "-c", "copy", "-f", "webm", "-"]).stdout  # fmt: skip
    out.write_bytes(data)
    return out


def chained_ogg(out: Path, work: Path, long_s: float = 30.0, copies: int = 2) -> Path:
    """Ogg Vorbis streams concatenated (a legal "chained" Ogg) ending in a 2 s one: ffprobe
    reports 2 s, ffmpeg decodes them all."""
    long_part, short_part = work / "long.ogg", work / "short.ogg"
    for path, seconds in ((long_part, long_s), (short_part, 2.0)):
        ffmpeg("-f", "lavfi", "-i", f"sine=f=300:r=44100:d={seconds}", "-c:a", "libvorbis",
               str(path))  # fmt: skip
    out.write_bytes(long_part.read_bytes() * copies + short_part.read_bytes())
    return out


def lying_wav(out: Path, *, claimed_rate: int = 100, real_rate: int = 8000,
              seconds: float = 60.0) -> Path:  # fmt: skip
    """8-bit PCM recorded at ``real_rate`` but with a header claiming ``claimed_rate``: a
    480 KB file that "lasts" 80 minutes and would resample to hundreds of MB."""
    n = int(real_rate * seconds)
    t = np.arange(n)
    data = (128 + 60 * np.sin(t * 2 * np.pi * 440 / real_rate)).astype(np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, claimed_rate, claimed_rate, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", n) + data
    out.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return out


def tool_wrapper(path: Path, real: str, log: Path, *, fail_on: str | None = None) -> Path:
    """An executable stand-in for ``real`` (ffmpeg, ffprobe) that appends each command line it
    is given to ``log``, one per line, then runs ``real`` with it; with ``fail_on``, a command
    line containing that text fails (exit 1) instead. For VOICEMAP_FFMPEG / VOICEMAP_FFPROBE."""
    fail = ""
    if fail_on is not None:
        fail = f'case "$*" in *"{fail_on}"*) echo "refusing: {fail_on}" >&2; exit 1;; esac\n'
    path.write_text(f'#!/bin/sh\nprintf \'%s\\n\' "$*" >> "{log}"\n{fail}exec "{real}" "$@"\n')
    path.chmod(0o755)
    return path


# --- independent measurements -----------------------------------------------------------------


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) by ffmpeg's own ebur128 filter: an independent meter."""
    res = run([FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-af",
               "ebur128=peak=true:metadata=1,ametadata=mode=print:file=-", "-f", "null", "-"],
              text=True)  # fmt: skip
    integrated = re.findall(r"lavfi\.r128\.I=(-?[\d.]+|-inf)", res.stdout)
    peaks = [float(v) for v in re.findall(r"lavfi\.r128\.true_peak=([\d.]+)", res.stdout)]
    lufs = float(integrated[-1]) if integrated else -math.inf
    peak = max(peaks) if peaks else 0.0
    return lufs, (20 * math.log10(peak) if peak > 0 else -math.inf)


def ffprobe(path: Path) -> dict:
    import json

    res = run([FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)])
    return json.loads(res.stdout)


def duration(path: Path) -> float:
    return float(ffprobe(path)["format"]["duration"])
