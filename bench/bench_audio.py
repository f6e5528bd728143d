#!/usr/bin/env python
"""Audio pipeline benchmark: ``voicemap.audio.process`` against a one-line ffmpeg loudnorm.

    .venv/bin/python bench/bench_audio.py [--cases 10,60,600] [--repeat 3] [--save]

Makes speech-like recordings of 10 s, 60 s and 10 min (espeak-ng English and Mandarin,
concatenated and looped, with a little room noise, at the wrong level) as phone-like M4A
(AAC, 44.1 kHz stereo, 128 kbit/s), then for each prints one line per method:

  voicemap  ``process()`` in a fresh interpreter: wall time (best of --repeat), real-time
            factor, peak memory = the Python process's VmHWM + the largest ffmpeg/ffprobe
            child's peak RSS (by /usr/bin/time, through VOICEMAP_FFMPEG/VOICEMAP_FFPROBE
            wrappers; the MP3 encoder runs the same VOICEMAP_FFMPEG, so it is counted),
            which pipeline step that child was, and the peak RSS of the MP3 encoder, then
            the published file's LUFS / dBTP as ffmpeg's ebur128 measures them
  loudnorm  ``ffmpeg -i in -af loudnorm=I=-16:TP=-1.5 -ac 1 -b:a 64k out.mp3`` on the same
            input: the same figures, and its time divided by ours (>1: we are faster)

Targets: on -16 +-1 LUFS and <= -1 dBTP, >= 30x real time at 60 s, < 256 MB at 10 min.
With --save the output also goes to bench/output/audio-<date>.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import audio_fixtures as fx  # noqa: E402
from common import hwm_mb  # noqa: E402

TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  # GNU time


def child(src: str, out_dir: str) -> None:
    """Run process() once in this fresh interpreter and print what happened as JSON."""
    from voicemap import audio

    limits = audio.Limits(max_bytes=200 * 1024 * 1024)
    start = time.perf_counter()
    result = audio.process(Path(src), Path(out_dir), limits)
    wall = time.perf_counter() - start
    print(json.dumps({
        "wall": wall, "py_mb": hwm_mb(), "path": str(result.path),
        "duration_s": result.duration_ms / 1000, "lufs": result.loudness_lufs,
        "dbtp": result.true_peak_dbtp,
    }))  # fmt: skip


def wrappers(work: Path, log: Path) -> dict[str, str]:
    """VOICEMAP_FFMPEG / VOICEMAP_FFPROBE scripts that log each child's peak RSS (KB)."""
    env = {}
    if not TIME:
        return env
    for tool in ("ffmpeg", "ffprobe"):
        real = shutil.which(tool)
        script = work / f"{tool}-rss"
        script.write_text(f'#!/bin/sh\nexec {TIME} -a -o "{log}" -f "%M %C" "{real}" "$@"\n')
        script.chmod(0o755)
        env[f"VOICEMAP_{tool.upper()}"] = str(script)
    return env


def max_child_mb(log: Path) -> float | None:
    if not log.exists():
        return None
    values = [int(v) for v in re.findall(r"^(\d+)(?: |$)", log.read_text(), re.M)]
    return max(values) / 1024 if values else None


def step(cmd: str) -> str:
    """Which step of process() an ffmpeg/ffprobe command line (as logged) belongs to."""
    if cmd.split(" ", 1)[0].endswith("ffprobe"):
        return "probe"
    if "libmp3lame" in cmd:
        return "encode"  # the MP3 encoder
    if " -f mp3 -i " in cmd:
        return "verify"
    return "decode"


def children(log: Path) -> list[tuple[float, str]]:
    """(peak RSS in MB, step) of every child logged."""
    if not log.exists():
        return []
    found = re.findall(r"^(\d+) (.*)$", log.read_text(), re.M)
    return [(int(kb) / 1024, step(cmd)) for kb, cmd in found]


def run_voicemap(src: Path, work: Path, repeat: int) -> dict:
    best = None
    for i in range(repeat):
        out = work / f"out-{src.stem}-{i}"
        log = work / f"rss-{src.stem}-{i}.log"
        env = dict(os.environ, **wrappers(work, log))
        res = subprocess.run([sys.executable, __file__, "--child", str(src), str(out)],
                             env=env, capture_output=True, text=True, check=True)  # fmt: skip
        info = json.loads(res.stdout.strip().splitlines()[-1])
        kids = children(log)
        info["child_mb"], info["child_step"] = max(kids, default=(None, None))
        info["export_mb"] = max((mb for mb, s in kids if s == "encode"), default=None)
        if best is None or info["wall"] < best["wall"]:
            prev = best or info
            best = dict(info, py_mb=max(prev["py_mb"], info["py_mb"]))
            for key in ("child_mb", "export_mb"):
                best[key] = max(filter(None, (prev[key], info[key])), default=None)
            if best["child_mb"] != info["child_mb"]:
                best["child_step"] = prev["child_step"]
    return best


def run_loudnorm(src: Path, work: Path, repeat: int) -> dict:
    best = None
    for i in range(repeat):
        out = work / f"loudnorm-{src.stem}-{i}.mp3"
        log = work / f"rss-loudnorm-{src.stem}-{i}.log"
        cmd = [shutil.which("ffmpeg"), "-nostdin", "-hide_banner", "-v", "error", "-y",
               "-i", str(src), "-af", "loudnorm=I=-16:TP=-1.5", "-ac", "1", "-b:a", "64k",
               str(out)]  # fmt: skip
        if TIME:
            cmd = [TIME, "-o", str(log), "-f", "%M", *cmd]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - start
        if best is None or wall < best["wall"]:
            best = {"wall": wall, "path": str(out), "child_mb": max_child_mb(log)}
    best["duration_s"] = fx.duration(Path(best["path"]))
    return best


def make_source(seconds: float, work: Path) -> Path:
    wav = work / f"speech-{int(seconds)}s.wav"
    voice = fx.espeak(fx.TEXT["en"], "en", work / "en.raw.wav")
    voice_zh = fx.espeak(fx.TEXT["zh"], "zh", work / "zh.raw.wav")
    listing = work / "voices.txt"
    listing.write_text(f"file '{voice}'\nfile '{voice_zh}'\n")
    pair = work / "pair.wav"
    fx.ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-af",
              "apad=pad_dur=0.6", str(pair))  # fmt: skip
    noise = 10 ** (-62 / 20) * 3**0.5
    fx.ffmpeg(
        "-stream_loop", "-1", "-i", str(pair), "-f", "lavfi",
        "-i", f"anoisesrc=r=22050:c=pink:a={noise:.6f}:seed=3",
        "-filter_complex",
        "[0:a]adelay=1200,volume=-18dB[s];[s][1:a]amix=inputs=2:duration=first:normalize=0",
        "-t", str(seconds), "-ar", "44100", "-ac", "2", "-c:a", "pcm_s16le", str(wav),
    )  # fmt: skip
    m4a = work / f"speech-{int(seconds)}s.m4a"
    fx.ffmpeg("-i", str(wav), "-c:a", "aac", "-b:a", "128k", "-f", "ipod", str(m4a))
    wav.unlink()
    return m4a


def fmt_mem(py: float | None, ch: float | None, ch_step: str | None = None,
            export: float | None = None) -> str:  # fmt: skip
    if py is None:
        return f"peak mem {ch:.0f} MB" if ch else "peak mem n/a"
    if ch is None:
        return f"peak mem {py:.0f} MB (python only)"
    detail = f" {ch_step}" if ch_step else ""
    if export is not None:
        detail += f"; encoder {export:.0f}"
    return f"peak mem {py + ch:4.0f} MB (python {py:.0f} + ffmpeg {ch:.0f}{detail})"


def label(seconds: float) -> str:
    return f"{seconds / 60:g}min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g}s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", default="10,60,600", help="clip lengths in seconds")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (best time; 1 at 10 min)")
    ap.add_argument("--save", action="store_true", help="also write bench/output/audio-<date>.txt")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    say(f"# bench_audio {dt.datetime.now():%Y-%m-%d %H:%M} on {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, ffmpeg {version.split()[2]}"
        f"{'' if TIME else ' (no /usr/bin/time: ffmpeg memory not measured)'}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        work = Path(tmp)
        for seconds in (float(s) for s in args.cases.split(",")):
            src = make_source(seconds, work)
            repeat = 1 if seconds > 120 else args.repeat
            ours = run_voicemap(src, work, repeat)
            base = run_loudnorm(src, work, repeat)
            o_lufs, o_tp = fx.ebur128(Path(ours["path"]))
            b_lufs, b_tp = fx.ebur128(Path(base["path"]))
            name = label(seconds)
            mem = fmt_mem(ours["py_mb"], ours["child_mb"], ours["child_step"], ours["export_mb"])
            say(f"{name:>5} voicemap  {ours['wall']:6.2f} s  RTF {seconds / ours['wall']:6.1f}x  "
                f"{mem}  "
                f"{o_lufs:6.2f} LUFS {o_tp:6.2f} dBTP  (out {ours['duration_s']:.1f} s)")
            say(f"{name:>5} loudnorm  {base['wall']:6.2f} s  RTF {seconds / base['wall']:6.1f}x  "
                f"{fmt_mem(None, base['child_mb'])}  "
                f"{b_lufs:6.2f} LUFS {b_tp:6.2f} dBTP  (out {base['duration_s']:.1f} s)  "
                f"time ratio loudnorm/voicemap {base['wall'] / ours['wall']:.2f}")  # fmt: skip
    if args.save:
        out = ROOT / "bench" / "output" / f"audio-{dt.date.today():%Y-%m-%d}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        print(f"# written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
