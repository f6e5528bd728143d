#!/usr/bin/env python
"""Image pipeline benchmark: ``voicemap.images.process_image`` against naive Pillow.

    .venv/bin/python bench/bench_images.py [--repeat 4] [--save]

Makes a photo-like 12-megapixel JPEG (4000 x 3000, quality 90: gradients, shapes and sensor
noise, with EXIF), then, each in a fresh interpreter, alternating A B B A so that drift on a
shared machine hits both:

  pipeline  ``process_image(src, workdir)``: thumbnail and display renditions
  naive     ``Image.open``, full decode, resize to 1600 px and from that to 400 px, save
            both as JPEG: the same outputs, with the same filters and encoder settings as the
            pipeline, the obvious way (no draft decode)

Each line: wall and CPU time of the call (each the best of --repeat; the interpreter's
start-up and imports are not counted), peak memory of the process (VmHWM: with the imports,
and above them); then the ratios naive/pipeline of CPU time and of wall time, each judged
against the target (both methods run on one core; on a shared machine CPU time hardly moves
with other load while wall time swings by 2x, so trust the CPU figure first). Then the
refusal of a 60,000 x 60,000 PNG header (a 0.4 MB file) by ``process_image``: time and memory.

Targets: pipeline >= 2x faster than naive, peak < 200 MB; the 60,000 x 60,000 header refused
in < 0.1 s. With --save the output also goes to bench/output/images-<date>.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from common import hwm_mb, met  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent


def make_photo(path: Path, width: int = 4000, height: int = 3000) -> Path:
    """A photo-like JPEG: smooth gradients and shapes under per-pixel sensor noise, so it
    compresses like a photograph (several MB at quality 90), not like a flat test card."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(12)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([90 + 80 * y / height, 140 + 60 * y / height, 230 - 90 * y / height], -1)
    base = Image.fromarray(sky.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(base)
    for _ in range(60):
        cx, cy = rng.integers(0, width), rng.integers(height // 3, height)
        r = int(rng.integers(40, 400))
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(3))
    pixels = np.asarray(base).astype(np.int16)
    pixels += rng.normal(0, 9, pixels.shape).astype(np.int16)
    photo = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"
    exif[0x0112] = 1
    photo.save(path, "JPEG", quality=90, exif=exif)
    return path


def png_claiming(width: int, height: int, path: Path) -> Path:
    """A valid 1-bit PNG of ``width`` x ``height`` zeros (IDAT compresses to ~0.4 MB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def child(method: str, src: str, out: str) -> None:
    """Run one method once in this fresh interpreter and print what happened as JSON."""
    from PIL import Image

    from voicemap import errors, images

    Image.init()  # every plugin imported before the clock starts, for both methods

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_mb = hwm_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    result: dict = {}
    if method == "pipeline":
        r = images.process_image(Path(src), out_dir)
        result = {"display": [r.display.width, r.display.height],
                  "thumb": [r.thumb.width, r.thumb.height]}
    elif method == "naive":
        with Image.open(src) as im:
            im.load()
        display = im.resize((1600, 1600 * im.height // im.width), images.DISPLAY_FILTER)
        display.save(out_dir / "display.jpg", "JPEG", quality=images.DISPLAY_QUALITY,
                     optimize=True)
        thumb = display.resize((400, 400 * im.height // im.width), images.THUMB_FILTER,
                               reducing_gap=2.0)
        thumb.save(out_dir / "thumb.jpg", "JPEG", quality=images.THUMB_QUALITY, optimize=True)
        result = {"display": list(display.size), "thumb": list(thumb.size)}
    elif method == "bomb":
        try:
            images.process_image(Path(src), out_dir)
            result = {"refused": None}
        except errors.ImageRejected as exc:
            result = {"refused": exc.code}
        result["left"] = len(list(out_dir.iterdir()))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({"wall": wall, "cpu": cpu, "mb": hwm_mb(), "base_mb": base_mb, **result}))


def run(method: str, src: Path, work: Path, i: int) -> dict:
    out = work / f"out-{method}-{i}"
    res = subprocess.run([sys.executable, __file__, "--child", method, str(src), str(out)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(res.stdout.strip().splitlines()[-1])


def best(runs: list[dict]) -> dict:
    """The fastest wall time and CPU time of ``runs`` (each its own best), the largest peak."""
    return dict(min(runs, key=lambda r: r["wall"]), cpu=min(r["cpu"] for r in runs),
                mb=max(r["mb"] for r in runs), base_mb=min(r["base_mb"] for r in runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=4, help="runs per method (best time)")
    ap.add_argument("--save", action="store_true", help="also write bench/output/images-<date>.txt")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    import PIL
    import pillow_heif

    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"# bench_images {dt.datetime.now():%Y-%m-%d %H:%M} on {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, Pillow {PIL.__version__}, "
        f"pillow-heif {pillow_heif.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        work = Path(tmp)
        photo = make_photo(work / "photo.jpg")
        say(f"# source: 4000 x 3000 JPEG, quality 90, {photo.stat().st_size / 1e6:.1f} MB")
        runs: dict[str, list[dict]] = {"pipeline": [], "naive": []}
        for i in range(args.repeat):
            order = ("pipeline", "naive") if i % 2 == 0 else ("naive", "pipeline")
            for method in order:
                runs[method].append(run(method, photo, work, i))
        ours, naive = best(runs["pipeline"]), best(runs["naive"])
        ratio = naive["cpu"] / ours["cpu"]
        for name, r in (("pipeline", ours), ("naive", naive)):
            d, t = r["display"], r["thumb"]
            say(f"12MP jpeg {name:<8} {r['wall']:6.3f} s wall {r['cpu']:6.3f} s CPU  "
                f"peak mem {r['mb']:4.0f} MB ({r['mb'] - r['base_mb']:4.0f} MB above imports)  "
                f"display {d[0]}x{d[1]} thumb {t[0]}x{t[1]}")
        wall_ratio = naive["wall"] / ours["wall"]
        say(f"12MP jpeg naive/pipeline CPU {ratio:.2f}x wall {wall_ratio:.2f}x  target >= 2x: "
            f"{met(ratio >= 2)} on CPU time, {met(wall_ratio >= 2)} on wall time; peak "
            f"{ours['mb']:.0f} MB  target < 200 MB: {met(ours['mb'] < 200)}")
        bomb = png_claiming(60_000, 60_000, work / "bomb.png")
        refusals = [run("bomb", bomb, work, i) for i in range(args.repeat)]
        b = best(refusals)
        say(f"60000x60000 png header ({bomb.stat().st_size / 1e6:.2f} MB file) refused "
            f"({b['refused']}, {b['left']} files left) in {b['wall'] * 1000:.1f} ms  "
            f"peak mem {b['mb']:.0f} MB ({b['mb'] - b['base_mb']:.0f} MB above imports)  "
            f"target < 0.1 s: {met(b['refused'] == 'too_many_pixels' and b['wall'] < 0.1)}")
    if args.save:
        out = ROOT / "bench" / "output" / f"images-{dt.date.today():%Y-%m-%d}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        print(f"# written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
