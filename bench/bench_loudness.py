#!/usr/bin/env python
"""Loudness stage benchmark: our meter and limiter against a two-pass ffmpeg normalisation.

    .venv/bin/python bench/bench_loudness.py [--cases 10,60,600] [--repeat 1]

On the speech-like M4A recordings of bench_audio.py (10 s, 60 s, 10 min), one line per method:

  voicemap   ``process()`` (probe, bounded decode, trim, our BS.1770 meter, look-ahead
             limiter on a 4x oversampled true peak, encode, verify), as in bench_audio.py
  2p-lnorm   two ffmpeg passes: ``loudnorm=print_format=json`` measures, then ``loudnorm`` with
             the measured values and ``linear=true`` applies one gain (loudnorm falls back to
             its dynamic mode when that gain would break the true-peak target: the line says
             which mode it used), resampled to 44.1 kHz and encoded as our MP3
  2p-limit   two ffmpeg passes: ``loudnorm`` measures, then ``volume`` (the gain to -16 LUFS)
             and ``alimiter`` run at 4x the rate (a true-peak limiter of sorts), then the MP3

All encode with our settings (libmp3lame, CBR 64 kbit/s, 44.1 kHz mono, -compression_level 7).
The two-pass methods do not trim silence and do not check or correct the published file.
Each line: wall time (both passes), x real time, peak memory (largest ffmpeg by /usr/bin/time,
plus Python for voicemap), then LUFS and dBTP of the published MP3 measured independently by
ffmpeg's ebur128 (peak=true, 4x oversampled true peak), and whether the targets are met:
-16 +-1 LUFS, <= -1 dBTP, >= 30x real time at 60 s, < 256 MB at 10 min.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import bench_audio as ba  # also puts tests/ on sys.path
from bench_audio import fx

TARGET_I, TARGET_TP, LRA = -16.0, -1.5, 20.0
ENCODE = ["-ar", "44100", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k",
          "-compression_level", "7", "-map_metadata", "-1", "-id3v2_version", "0",
          "-write_id3v1", "0", "-fflags", "+bitexact", "-flags:a", "+bitexact"]  # fmt: skip


def ffmpeg_timed(args: list[str], log: Path) -> subprocess.CompletedProcess:
    cmd = [shutil.which("ffmpeg"), "-nostdin", "-hide_banner", "-y", *args]
    if ba.TIME:
        cmd = [ba.TIME, "-a", "-o", str(log), "-f", "%M", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=True)


def measure_pass(src: Path, log: Path) -> dict:
    """Pass 1: loudnorm's own measurement (BS.1770 integrated loudness, true peak, LRA)."""
    flt = f"aformat=channel_layouts=mono,loudnorm=I={TARGET_I}:TP={TARGET_TP}:LRA={LRA}"
    res = ffmpeg_timed(["-i", str(src), "-af", f"{flt}:print_format=json", "-f", "null", "-"], log)
    return json.loads(re.search(r"\{[^{}]*\}\s*$", res.stderr).group(0))


def two_pass_loudnorm(src: Path, out: Path, log: Path) -> str:
    m = measure_pass(src, log)
    flt = (
        f"aformat=channel_layouts=mono,loudnorm=I={TARGET_I}:TP={TARGET_TP}:LRA={LRA}"
        f":measured_I={m['input_i']}:measured_TP={m['input_tp']}:measured_LRA={m['input_lra']}"
        f":measured_thresh={m['input_thresh']}:offset={m['target_offset']}:linear=true"
        ":print_format=json,aresample=44100"
    )
    res = ffmpeg_timed(["-i", str(src), "-af", flt, *ENCODE, str(out)], log)
    second = json.loads(re.search(r"\{[^{}]*\}\s*$", res.stderr).group(0))
    return second.get("normalization_type", "?")


def two_pass_limiter(src: Path, out: Path, log: Path) -> str:
    m = measure_pass(src, log)
    gain_db = TARGET_I - float(m["input_i"])
    limit = 10 ** (TARGET_TP / 20)
    flt = (
        f"aformat=channel_layouts=mono,volume={gain_db:.2f}dB,aresample=176400,"
        f"alimiter=limit={limit:.4f}:attack=5:release=50:level=0,aresample=44100"
    )
    ffmpeg_timed(["-i", str(src), "-af", flt, *ENCODE, str(out)], log)
    return f"gain {gain_db:+.1f} dB"


def run_ffmpeg_method(fn, src: Path, work: Path, repeat: int) -> dict:
    best = None
    for i in range(repeat):
        out = work / f"{fn.__name__}-{src.stem}-{i}.mp3"
        log = work / f"rss-{fn.__name__}-{src.stem}-{i}.log"
        start = time.perf_counter()
        note = fn(src, out, log)
        wall = time.perf_counter() - start
        if best is None or wall < best["wall"]:
            best = {"wall": wall, "path": out, "mb": ba.max_child_mb(log), "note": note}
    return best


def verdict(seconds: float, lufs: float, tp: float, rtf: float, mb: float | None) -> str:
    misses = []
    if abs(lufs - (-16.0)) > 1.0:
        misses.append("LUFS")
    if tp > -1.0:
        misses.append("dBTP")
    if seconds == 60 and rtf < 30:
        misses.append("speed")
    if seconds >= 600 and (mb is None or mb >= 256):
        misses.append("memory")
    return "meets targets" if not misses else "misses " + ",".join(misses)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", default="10,60,600", help="clip lengths in seconds")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (best time)")
    args = ap.parse_args()
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    print(f"# bench_loudness on {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, ffmpeg {version.split()[2]}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-loudness-") as tmp:
        work = Path(tmp)
        for seconds in (float(s) for s in args.cases.split(",")):
            src = ba.make_source(seconds, work)
            name = ba.label(seconds)
            ours = ba.run_voicemap(src, work, args.repeat)
            mb = (ours["py_mb"] or 0) + (ours["child_mb"] or 0)
            split = f"python {ours['py_mb']:.0f} + ffmpeg {ours['child_mb'] or 0:.0f}"
            rows = [("voicemap", ours["wall"], Path(ours["path"]), mb, split)]
            for label, fn in (("2p-lnorm", two_pass_loudnorm), ("2p-limit", two_pass_limiter)):
                r = run_ffmpeg_method(fn, src, work, args.repeat)
                rows.append((label, r["wall"], r["path"], r["mb"], r["note"]))
            for label, wall, path, mem, note in rows:
                lufs, tp = fx.ebur128(path)
                rtf = seconds / wall
                mem_s = f"{mem:4.0f} MB" if mem else " n/a"
                print(f"{name:>5} {label:<9} {wall:6.2f} s  RTF {rtf:6.1f}x  peak mem {mem_s}  "
                      f"{lufs:6.2f} LUFS {tp:6.2f} dBTP  {verdict(seconds, lufs, tp, rtf, mem)}"
                      f"  ({note})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
