"""Image intake: check an uploaded picture, and make safe renditions of it to serve.

Pure module, like :mod:`voicemap.audio`: paths in, a :class:`ProcessedImage` (or an exception
from :mod:`voicemap.errors`) out. No Flask, no database, no storage; the caller archives the
upload and stores the renditions (``storage.py``).

The stages, in the order :func:`process_image` runs them:

1. **Size** of the file (:class:`PayloadTooLarge`, before anything is read).
2. **Type from the content** (:func:`sniff`): magic bytes pick JPEG, PNG, WebP or HEIC/HEIF;
   the name and the declared type are never looked at. Pillow is then allowed to use that one
   decoder only, so a file cannot be "sniffed" as one type and decoded as another.
3. **Pixels from the header**: the width and height Pillow reads from the header (no pixel
   decoded yet) are checked against ``max_pixels``; Pillow's own bomb check is set to the same
   figure and its warning is a refusal too.
4. **Bounded decode** of the first frame only (an animation's other frames are dropped: what
   is served never moves). A JPEG is decoded at 1/2, 1/4 or 1/8 size when the display
   rendition is that much smaller (``Image.draft``: the DCT is scaled, so a 12 MP photo is
   never held at full size).
5. **Orientation** from EXIF applied to the pixels; then **colour**: an embedded ICC profile
   is converted to sRGB (ImageCms), CMYK, palette, grey and 16-bit images become 8-bit RGB,
   and transparency is flattened on white.
6. **Renditions** re-encoded from those pixels as JPEG (every
   browser, WeChat's included, shows it; WebP is not shown by older iOS WebViews) with no
   metadata at all: no EXIF, GPS, XMP, IPTC, ICC profile or comment survives, because none is
   copied. A thumbnail (400 px on the longest side) and a display size (1600 px), never
   upscaled.

Anything else (SVG, HTML, GIF, BMP, TIFF, PDF, AVIF, ...) is refused with a message saying
what the file is and what is accepted.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import ImageRejected, PayloadTooLarge

log = logging.getLogger(__name__)

ACCEPTED_FORMATS = ("jpeg", "png", "webp", "heif")
ACCEPTED_HUMAN = "a JPEG, PNG, WebP or HEIC photo or scan"
MEDIA_TYPE = "image/jpeg"  # every rendition
THUMB_QUALITY = 80
DISPLAY_QUALITY = 85
# To the display size: Pillow's default filter. After a JPEG's draft decode the factor left is
# under 2, where bicubic and Lanczos look alike and bicubic takes 30% less time; larger
# factors (a big PNG) are first reduced by a box filter (reducing_gap).
DISPLAY_FILTER = Image.Resampling.BICUBIC
# From the display size to the thumbnail (a factor near 4): Lanczos keeps small things sharp.
THUMB_FILTER = Image.Resampling.LANCZOS


@dataclass(frozen=True)
class ImageLimits:
    """What an upload may be, and the sizes of its renditions (longest side, in pixels)."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    thumb_px: int = 400
    display_px: int = 1600  # never upscaled


@dataclass(frozen=True)
class Rendition:
    """One file written in the work directory, ready for ``Store.put(kind, path, sha256)``."""

    path: Path
    width: int
    height: int
    media_type: str  # always "image/jpeg"
    sha256: str


@dataclass(frozen=True)
class ProcessedImage:
    """An accepted upload: what it was, its size upright, and its two renditions."""

    source_format: str  # one of ACCEPTED_FORMATS
    width: int  # of the upload, after EXIF orientation
    height: int
    thumb: Rendition
    display: Rendition


_DEFAULT_LIMITS = ImageLimits()
# Pillow's own decompression-bomb check (a warning past this, an error past twice this), read
# at Image.open from the header. The default (about 89 MP) is above our limit; ours is
# enforced explicitly as well, so a larger ImageLimits.max_pixels is still refused by Pillow
# past this figure: raise both together.
Image.MAX_IMAGE_PIXELS = _DEFAULT_LIMITS.max_pixels
# HEIF files may embed thumbnails; one made before an edit (a crop) can show what the edit
# removed, so Pillow's draft mode must never use them.
pillow_heif.register_heif_opener(thumbnails=False)

_ORIENTATION = 0x0112  # the EXIF tag
_PILLOW_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heif": "HEIF"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_GENERIC = {b"mif1", b"msf1", b"mif2"}
# Pillow's errors for files that are damaged, truncated or lie about themselves.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
                  IndexError, TypeError, KeyError, RuntimeError, UnidentifiedImageError)


def sniff(path: Path) -> str | None:
    """The accepted format of ``path`` by its content (magic bytes), or None.

    Returns one of :data:`ACCEPTED_FORMATS`; anything else (GIF, SVG, AVIF, ...) is None.
    """
    with open(path, "rb") as f:
        head = f.read(64)
    return _sniff(head)


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        size = struct.unpack(">I", head[:4])[0]
        major = head[8:12]
        brands = {head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
        if major in _HEIF_BRANDS or (major in _HEIF_GENERIC and brands & _HEIF_BRANDS):
            return "heif"
    return None


def _describe(head: bytes) -> str | None:
    """What a refused file seems to be, for the message (None: no idea)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF"
    if b"<svg" in text or (text.startswith(b"<?xml") and b"svg" in text):
        return "an SVG drawing"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "a web page (HTML)"
    if text.startswith(b"<"):
        return "a text document (XML or HTML)"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"BM"):
        return "a BMP bitmap"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if head[4:8] == b"ftyp" and b"avi" in head[8:32]:
        return "an AVIF image"
    return None


def _rejected(message: str, code: str, **details) -> ImageRejected:
    return ImageRejected(message, code=code, param="file", **details)


def _fmt_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _too_many_pixels(width: int, height: int, limits: ImageLimits) -> ImageRejected:
    return _rejected(
        f"The image is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
        f"the limit is {limits.max_pixels / 1e6:g} megapixels.",
        "too_many_pixels", width=width, height=height, max_pixels=limits.max_pixels)


def _fit(width: int, height: int, longest: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled so that the longest side is at most ``longest``."""
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def process_image(src: Path, workdir: Path,
                  limits: ImageLimits = _DEFAULT_LIMITS) -> ProcessedImage:
    """Check the upload ``src`` and write its thumbnail and display renditions in ``workdir``.

    The two JPEG files (named by kind and hash) are all this leaves in ``workdir``; on any
    error it leaves nothing there. Raises :class:`PayloadTooLarge` (``too_large``) or
    :class:`ImageRejected` with code ``not_image``, ``too_many_pixels`` or ``undecodable``
    (each naming the field ``file``); an ``OSError`` writing ``workdir`` is passed on.
    """
    src, workdir = Path(src), Path(workdir)
    size = src.stat().st_size
    if size > limits.max_bytes:
        raise PayloadTooLarge(
            f"The file is {_fmt_bytes(size)}; the limit is {_fmt_bytes(limits.max_bytes)}.",
            code="too_large", param="file", size_bytes=size, max_bytes=limits.max_bytes)
    with open(src, "rb") as f:
        head = f.read(64)
    if size == 0:
        raise _rejected("The file is empty.", "not_image")
    kind = _sniff(head)
    if kind is None:
        what = _describe(head)
        prefix = f"This file is {what}, not a photo." if what else \
            "This file is not a supported image."
        raise _rejected(f"{prefix} Upload {ACCEPTED_HUMAN}.", "not_image")
    image, width, height = _decode(src, kind, limits)
    thumb_size = _fit(width, height, limits.thumb_px)
    written: list[Path] = []
    try:
        display = _write(image, workdir, "display", DISPLAY_QUALITY, written)
        # From the display rendition: at 4x or more, a box reduction first, then Lanczos.
        small = image.resize(thumb_size, THUMB_FILTER, reducing_gap=2.0)
        thumb = _write(small, workdir, "thumb", THUMB_QUALITY, written)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return ProcessedImage(kind, width, height, thumb, display)


def _decode(src: Path, kind: str, limits: ImageLimits) -> tuple[Image.Image, int, int]:
    """The first frame, upright, in 8-bit sRGB, at most ``display_px`` on its longest side;
    and the upload's upright width and height."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(src, formats=[_PILLOW_FORMAT[kind]]) as im:
                width, height = im.size  # from the header: nothing decoded yet
                if width * height > limits.max_pixels:
                    raise _too_many_pixels(width, height, limits)
                orientation = im.getexif().get(_ORIENTATION, 1)
                target = _fit(width, height, limits.display_px)
                if kind == "jpeg":
                    im.draft(im.mode, target)  # decode at 1/2, 1/4 or 1/8 when that suffices
                im.load()  # the first frame only; animations are never advanced
                image = _upright_srgb(im)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        log.info("image refused by Pillow's bomb check: %s", exc)
        raise _rejected(f"The image has too many pixels; the limit is "
                        f"{limits.max_pixels / 1e6:g} megapixels.", "too_many_pixels",
                        max_pixels=limits.max_pixels) from None
    except MemoryError:
        raise _rejected("The image could not be decoded within the memory allowed.",
                        "undecodable") from None
    except _DECODE_ERRORS as exc:
        log.info("undecodable %s upload: %s: %s", kind, type(exc).__name__, exc)
        raise _rejected("The image could not be decoded; it may be damaged or incomplete.",
                        "undecodable") from None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    target = _fit(width, height, limits.display_px)
    if image.size != target:
        image = image.resize(target, DISPLAY_FILTER, reducing_gap=3.0)
    return image, width, height


_SRGB = ImageCms.createProfile("sRGB")


def _upright_srgb(im: Image.Image) -> Image.Image:
    """``im`` (loaded) rotated as its EXIF says and converted to 8-bit RGB in sRGB, with any
    transparency flattened on white. The result carries no ``info`` (no metadata)."""
    icc = im.info.get("icc_profile")
    # exif_transpose copies even an upright image: only call it when there is work to do.
    out = ImageOps.exif_transpose(im) if im.getexif().get(_ORIENTATION, 1) != 1 else im
    mode = out.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        out = _to_8bit_grey(out)
    elif mode == "1":
        out = out.convert("L")
    elif mode in ("P", "PA"):
        out = out.convert("RGBA" if mode == "PA" or "transparency" in out.info else "RGB")
    elif mode in ("LA", "La", "RGBa"):
        out = out.convert("RGBA")
    if out.mode == "RGBA":
        white = Image.new("RGBA", out.size, (255, 255, 255, 255))
        white.alpha_composite(out)
        out = white.convert("RGB")
    if icc and out.mode in ("RGB", "L", "CMYK"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(out, profile, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            # A profile that does not match the pixels or cannot be read: the pixels as
            # they are (what most viewers would show too).
            log.info("ICC profile ignored: %s", exc)
    if out.mode != "RGB":
        out = out.convert("RGB")
    out.info = {}
    return out


def _to_8bit_grey(im: Image.Image) -> Image.Image:
    """A 16-bit or 32-bit grey image scaled to 8 bits (Pillow's convert would clip it)."""
    import numpy as np

    a = np.asarray(im)
    top = 65535.0 if im.mode.startswith("I;16") or (im.mode == "I" and a.max() > 255) else 255.0
    if im.mode == "F":
        top = max(float(a.max()), 1.0)
    scaled = np.clip(a.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _write(image: Image.Image, workdir: Path, name: str, quality: int,
           written: list[Path]) -> Rendition:
    """Encode ``image`` as a metadata-free JPEG named ``<name>-<sha256>.jpg`` in ``workdir``."""
    buf = io.BytesIO()
    # No exif=, icc_profile=, comment= or xmp=: the encoder writes none of them unless asked,
    # and ``info`` was emptied so that nothing is copied from the source by default.
    # Baseline with optimised Huffman tables: progressive saved 1-2% of the bytes and took
    # twice as long to encode (bench/bench_images.py).
    image.save(buf, "JPEG", quality=quality, optimize=True, subsampling="4:2:0")
    data = buf.getbuffer()
    sha = hashlib.sha256(data).hexdigest()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", suffix=".part", dir=workdir)
    tmp = Path(tmp_name)
    written.append(tmp)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path = workdir / f"{name}-{sha[:32]}.jpg"
    tmp.replace(path)
    written[-1] = path
    return Rendition(path, image.width, image.height, MEDIA_TYPE, sha)
