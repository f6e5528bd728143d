"""The image pipeline (voicemap.images): pure, no database. Every image is made here, at test
time: photos with GPS and orientation in EXIF, PNG, WebP, HEIC, CMYK, alpha, 16-bit grey, and
the refused kinds (headers that lie, truncated files, HTML, SVG, GIF, oversized files)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pillow_heif
import pytest
from PIL import ExifTags, Image, ImageCms

from voicemap.errors import ImageRejected, PayloadTooLarge
from voicemap.images import (
    ImageLimits,
    ProcessedImage,
    Rendition,
    process_image,
    sniff,
)

RED = (220, 20, 30)
BLUE = (30, 60, 200)
GPS_IFD = ExifTags.IFD.GPSInfo
# Every way metadata can ride in an image file, as the bytes that announce it.
METADATA_MARKERS = (b"Exif", b"GPS", b"http://ns.adobe.com/xap", b"Photoshop 3.0", b"8BIM",
                    b"ICC_PROFILE", b"iCCP", b"tEXt", b"iTXt", b"zTXt", b"eXIf",
                    b"secret-comment", b"Tiananmen Sq")


# --- Making images -------------------------------------------------------------------------


def corner_image(size: tuple[int, int] = (300, 200), mode: str = "RGB") -> Image.Image:
    """A blue image with a red block in its top-left corner: where the block ends up tells
    how the image was turned."""
    im = Image.new(mode, size, BLUE if mode == "RGB" else BLUE + (255,))
    block = Image.new(mode, (size[0] // 5, size[1] // 5), RED if mode == "RGB" else RED + (255,))
    im.paste(block, (0, 0))
    return im


def gps_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.ImageDescription] = "Tiananmen Square"
    gps = exif.get_ifd(GPS_IFD)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 27.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 23.0, 27.0)
    return exif


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def with_segments(jpeg: bytes, *segments: bytes) -> bytes:
    """``jpeg`` with ``segments`` inserted right after its SOI marker."""
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


XMP = (b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF "
       b"xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description "
       b"xmlns:exif='http://ns.adobe.com/exif/1.0/' exif:GPSLatitude='39,54.45N'/>"
       b"</rdf:RDF></x:xmpmeta>")
IPTC = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0e\x1c\x02\x78\x00\x0aTiananmen "


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def swapped_primaries_icc() -> bytes:
    """An RGB profile that is sRGB with the red and green primaries swapped: a pixel stored
    as red in it is green in sRGB, so a conversion shows, and a copy of the numbers does not.
    """
    icc = bytearray(srgb_icc())
    count = struct.unpack(">I", icc[128:132])[0]
    entries = {bytes(icc[o:o + 4]): o for o in range(132, 132 + 12 * count, 12)}
    r, g = entries[b"rXYZ"], entries[b"gXYZ"]
    icc[r + 4:r + 12], icc[g + 4:g + 12] = icc[g + 4:g + 12], icc[r + 4:r + 12]
    return bytes(icc)


def photo_with_everything(path: Path, size: tuple[int, int] = (300, 200)) -> Path:
    """A JPEG with orientation 6 and GPS in EXIF, XMP with GPS, IPTC, an ICC profile and a
    comment: everything a phone or an editor may leave in a photo."""
    buf = io.BytesIO()
    corner_image(size).save(buf, "JPEG", quality=95, exif=gps_exif(6), icc_profile=srgb_icc(),
                            comment=b"secret-comment")
    path.write_bytes(with_segments(buf.getvalue(), segment(0xE1, XMP), segment(0xED, IPTC)))
    return path


def save(im: Image.Image, path: Path, fmt: str, **params) -> Path:
    im.save(path, fmt, **params)
    return path


def png_claiming(width: int, height: int, path: Path) -> Path:
    """A tiny PNG whose IHDR (with a valid CRC) claims ``width`` x ``height`` 1-bit pixels,
    followed by a little real data: only the header is big."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    idat = zlib.compress(row * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def near(pixel, colour, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def peek(path: Path | io.BytesIO) -> Image.Image:
    """The image at ``path``, loaded (its first frame) and closed."""
    with Image.open(path) as im:
        im.load()
        copy = im.copy()
        copy.format = im.format
        copy.info = dict(im.info)
        copy.n_frames = getattr(im, "n_frames", 1)
        return copy


def opened(rendition: Rendition) -> Image.Image:
    return peek(rendition.path)


# --- What comes out --------------------------------------------------------------------------


def test_photo_is_turned_upright(tmp_path, work):
    src = photo_with_everything(tmp_path / "photo.jpg")
    result = process_image(src, work)
    display = opened(result.display).convert("RGB")
    w, h = display.size
    # Orientation 6: the stored top-left corner is the upright top-right one.
    assert near(display.getpixel((w - 5, 5)), RED)
    assert near(display.getpixel((5, 5)), BLUE)


def test_photo_dimensions_are_upright(tmp_path, work):
    result = process_image(photo_with_everything(tmp_path / "photo.jpg"), work)
    assert (result.width, result.height) == (200, 300)
    assert (result.display.width, result.display.height) == (200, 300)


def test_result_describes_the_renditions(tmp_path, work):
    result = process_image(photo_with_everything(tmp_path / "photo.jpg"), work)
    assert isinstance(result, ProcessedImage)
    assert result.source_format == "jpeg"
    assert result.thumb.media_type == "image/jpeg"
    assert result.display.media_type == "image/jpeg"
    assert opened(result.thumb).format == "JPEG"
    assert opened(result.display).size == (result.display.width, result.display.height)


def test_renditions_are_named_and_hashed_by_their_content(tmp_path, work):
    import hashlib

    result = process_image(photo_with_everything(tmp_path / "photo.jpg"), work)
    for rendition in (result.thumb, result.display):
        assert rendition.path.parent == work
        assert hashlib.sha256(rendition.path.read_bytes()).hexdigest() == rendition.sha256


def test_only_the_two_renditions_are_left_in_workdir(tmp_path, work):
    result = process_image(photo_with_everything(tmp_path / "photo.jpg"), work)
    assert files(work) == sorted([result.thumb.path.name, result.display.path.name])


@pytest.mark.parametrize("which", ["thumb", "display"])
@pytest.mark.parametrize("marker", METADATA_MARKERS)
def test_no_metadata_byte_is_served(tmp_path, work, which, marker):
    result = process_image(photo_with_everything(tmp_path / "photo.jpg"), work)
    assert marker not in getattr(result, which).path.read_bytes()


@pytest.mark.parametrize("which", ["thumb", "display"])
def test_pillow_finds_no_metadata_in_renditions(tmp_path, work, which):
    result = process_image(photo_with_everything(tmp_path / "photo.jpg"), work)
    im = opened(getattr(result, which))
    assert dict(im.getexif()) == {}
    assert set(im.info) <= {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi",
                            "progressive", "progression"}


def test_the_test_photo_does_carry_the_metadata(tmp_path):
    """The check above means something: the input has every marker it looks for."""
    data = photo_with_everything(tmp_path / "photo.jpg").read_bytes()
    for marker in (b"Exif", b"http://ns.adobe.com/xap", b"Photoshop 3.0", b"ICC_PROFILE",
                   b"secret-comment", b"Tiananmen Sq"):
        assert marker in data, marker
    with Image.open(io.BytesIO(data)) as im:
        gps = im.getexif().get_ifd(GPS_IFD)
    assert gps[ExifTags.GPS.GPSLatitudeRef] == "N"


def test_large_photo_gets_display_and_thumbnail_sizes(tmp_path, work):
    src = save(corner_image((3200, 2400)), tmp_path / "big.jpg", "JPEG", quality=90)
    result = process_image(src, work)
    assert (result.width, result.height) == (3200, 2400)
    assert (result.display.width, result.display.height) == (1600, 1200)
    assert (result.thumb.width, result.thumb.height) == (400, 300)


def test_large_photo_keeps_its_picture_when_decoded_at_reduced_size(tmp_path, work):
    src = save(corner_image((3200, 2400)), tmp_path / "big.jpg", "JPEG", quality=90)
    display = opened(process_image(src, work).display).convert("RGB")
    assert near(display.getpixel((10, 10)), RED)
    assert near(display.getpixel((1590, 1190)), BLUE)


def test_large_rotated_photo_is_reduced_upright(tmp_path, work):
    src = photo_with_everything(tmp_path / "big.jpg", size=(4000, 3000))
    result = process_image(src, work)
    assert (result.display.width, result.display.height) == (1200, 1600)
    assert near(opened(result.display).convert("RGB").getpixel((1190, 10)), RED)


def test_small_image_is_never_upscaled(tmp_path, work):
    src = save(corner_image((120, 90)), tmp_path / "small.png", "PNG")
    result = process_image(src, work)
    assert (result.display.width, result.display.height) == (120, 90)
    assert (result.thumb.width, result.thumb.height) == (120, 90)


def test_custom_rendition_sizes(tmp_path, work):
    src = save(corner_image((1000, 500)), tmp_path / "wide.png", "PNG")
    result = process_image(src, work, ImageLimits(thumb_px=100, display_px=600))
    assert (result.thumb.width, result.thumb.height) == (100, 50)
    assert (result.display.width, result.display.height) == (600, 300)


def test_png(tmp_path, work):
    result = process_image(save(corner_image(), tmp_path / "a.png", "PNG"), work)
    assert result.source_format == "png"
    assert near(opened(result.display).getpixel((5, 5)), RED)


def test_webp(tmp_path, work):
    result = process_image(save(corner_image(), tmp_path / "a.webp", "WEBP", quality=90),
                           work)
    assert result.source_format == "webp"
    assert near(opened(result.display).getpixel((5, 5)), RED)


def test_heic_from_an_iphone_like_encoder(tmp_path, work):
    src = tmp_path / "IMG_0001.HEIC"
    pillow_heif.from_pillow(corner_image()).save(src, quality=90, exif=gps_exif(1).tobytes())
    result = process_image(src, work)
    assert result.source_format == "heif"
    assert near(opened(result.display).getpixel((5, 5)), RED)


def test_heic_loses_its_gps(tmp_path, work):
    src = tmp_path / "IMG_0001.HEIC"
    pillow_heif.from_pillow(corner_image()).save(src, quality=90, exif=gps_exif(1).tobytes())
    assert b"Exif" in src.read_bytes()
    result = process_image(src, work)
    assert b"Exif" not in result.display.path.read_bytes()


def test_heic_is_turned_upright(tmp_path, work):
    src = tmp_path / "IMG_0002.HEIC"
    pillow_heif.from_pillow(corner_image()).save(src, quality=90, exif=gps_exif(6).tobytes())
    result = process_image(src, work)
    display = opened(result.display)
    assert (result.width, result.height) == (200, 300)
    assert near(display.getpixel((195, 5)), RED)


def test_cmyk_jpeg_becomes_rgb_with_its_colours(tmp_path, work):
    im = Image.new("CMYK", (200, 100), (0, 230, 220, 30))  # a red in ink
    src = save(im, tmp_path / "print.jpg", "JPEG", quality=95)
    assert peek(src).mode == "CMYK"
    display = opened(process_image(src, work).display)
    assert display.mode == "RGB"
    r, g, b = display.getpixel((100, 50))
    assert r > 180
    assert g < 60
    assert b < 60


def test_png_alpha_is_flattened_on_white(tmp_path, work):
    im = corner_image(mode="RGBA")
    im.paste((0, 0, 0, 0), (150, 0, 300, 200))  # the right half fully transparent
    result = process_image(save(im, tmp_path / "cut.png", "PNG"), work)
    display = opened(result.display)
    assert display.mode == "RGB"
    assert near(display.getpixel((250, 100)), (255, 255, 255), tolerance=3)
    assert near(display.getpixel((100, 100)), BLUE)


def test_palette_png_with_transparency(tmp_path, work):
    im = corner_image().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    transparent = im.getpixel((200, 100))
    src = save(im, tmp_path / "pal.png", "PNG", transparency=transparent)
    display = opened(process_image(src, work).display)
    assert near(display.getpixel((200, 100)), (255, 255, 255), tolerance=3)
    assert near(display.getpixel((5, 5)), RED)


def test_sixteen_bit_grey_png_keeps_its_tones(tmp_path, work):
    import numpy as np

    a = np.full((64, 64), 32768, dtype=np.uint16)
    src = save(Image.fromarray(a), tmp_path / "grey16.png", "PNG")
    assert peek(src).mode.startswith("I")
    r, g, b = opened(process_image(src, work).display).getpixel((32, 32))
    assert 118 <= r <= 138
    assert r == g == b


def test_embedded_profile_is_converted_not_copied(tmp_path, work):
    src = save(corner_image(), tmp_path / "icc.png", "PNG", icc_profile=srgb_icc())
    assert "icc_profile" in peek(src).info
    display = opened(process_image(src, work).display)
    assert "icc_profile" not in display.info
    assert near(display.getpixel((5, 5)), RED)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_colours_are_converted_to_srgb_through_the_embedded_profile(tmp_path, work, fmt):
    src = save(Image.new("RGB", (60, 40), RED), tmp_path / "wide", fmt,
               icc_profile=swapped_primaries_icc(), quality=95)
    r, g, b = opened(process_image(src, work).display).getpixel((30, 20))
    assert g > 180
    assert r < 60


def test_a_profile_that_does_not_fit_the_pixels_is_ignored(tmp_path, work):
    # An RGB profile on a grey image: LittleCMS refuses the pair; the grey is kept as it is.
    grey = Image.new("L", (60, 40), 100)
    src = save(grey, tmp_path / "grey.png", "PNG", icc_profile=srgb_icc())
    assert "icc_profile" in peek(src).info
    r, g, b = opened(process_image(src, work).display).getpixel((30, 20))
    assert 95 <= r <= 105


def test_type_comes_from_content_not_name(tmp_path, work):
    src = save(corner_image(), tmp_path / "really-a-png.jpg", "PNG")
    assert sniff(src) == "png"
    assert process_image(src, work).source_format == "png"


@pytest.mark.parametrize(("fmt", "expected"), [("JPEG", "jpeg"), ("PNG", "png"),
                                               ("WEBP", "webp"), ("GIF", None),
                                               ("BMP", None), ("TIFF", None)])
def test_sniff(tmp_path, fmt, expected):
    assert sniff(save(corner_image(), tmp_path / "x", fmt)) == expected


def test_sniff_heic(tmp_path):
    src = tmp_path / "x"
    pillow_heif.from_pillow(corner_image()).save(src, format="HEIF", quality=50)
    assert sniff(src) == "heif"


def test_animated_webp_keeps_only_its_first_frame(tmp_path, work):
    frames = [Image.new("RGB", (80, 60), RED), Image.new("RGB", (80, 60), BLUE)]
    src = tmp_path / "anim.webp"
    frames[0].save(src, "WEBP", save_all=True, append_images=frames[1:], duration=100,
                   loop=0, lossless=True)
    assert peek(src).n_frames == 2
    display = opened(process_image(src, work).display)
    assert display.n_frames == 1
    assert near(display.getpixel((40, 30)), RED)


def test_animated_png_keeps_only_its_first_frame(tmp_path, work):
    frames = [Image.new("RGB", (80, 60), RED), Image.new("RGB", (80, 60), BLUE)]
    src = tmp_path / "anim.png"
    frames[0].save(src, "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert peek(src).n_frames == 2
    assert near(opened(process_image(src, work).display).getpixel((40, 30)), RED)


# --- What is refused -------------------------------------------------------------------------


def refused(src: Path, work: Path, limits: ImageLimits | None = None) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        process_image(src, work, limits or ImageLimits())
    assert files(work) == []
    return info.value


@pytest.mark.parametrize("size", [(60_000, 60_000), (8000, 7000), (7072, 7072)])
def test_header_claiming_too_many_pixels(tmp_path, work, size):
    src = png_claiming(*size, tmp_path / "bomb.png")
    assert src.stat().st_size < 5_000_000
    assert refused(src, work).code == "too_many_pixels"


def test_pixel_limit_is_the_one_given(tmp_path, work):
    src = save(corner_image((100, 100)), tmp_path / "a.png", "PNG")
    error = refused(src, work, ImageLimits(max_pixels=9_999))
    assert error.code == "too_many_pixels"
    assert error.details["max_pixels"] == 9_999


def test_just_under_the_pixel_limit_is_accepted(tmp_path, work):
    src = save(corner_image((100, 100)), tmp_path / "a.png", "PNG")
    assert process_image(src, work, ImageLimits(max_pixels=10_000)).width == 100


def test_truncated_jpeg(tmp_path, work):
    whole = save(corner_image((640, 480)), tmp_path / "whole.jpg", "JPEG").read_bytes()
    src = tmp_path / "cut.jpg"
    src.write_bytes(whole[: len(whole) // 2])
    assert refused(src, work).code == "undecodable"


def test_truncated_png(tmp_path, work):
    whole = save(corner_image((640, 480)), tmp_path / "whole.png", "PNG").read_bytes()
    src = tmp_path / "cut.png"
    src.write_bytes(whole[: len(whole) // 2])
    assert refused(src, work).code == "undecodable"


def test_html_named_jpg(tmp_path, work):
    src = tmp_path / "photo.jpg"
    src.write_text("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")
    error = refused(src, work)
    assert error.code == "not_image"
    assert "HTML" in error.message


def test_svg_with_a_script(tmp_path, work):
    src = tmp_path / "drawing.svg"
    src.write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
                   'height="10"><script>alert(document.cookie)</script>'
                   '<rect width="10" height="10"/></svg>')
    error = refused(src, work)
    assert error.code == "not_image"
    assert "SVG" in error.message


def test_gif_animation(tmp_path, work):
    frames = [Image.new("P", (40, 40), 1), Image.new("P", (40, 40), 2)]
    src = tmp_path / "anim.gif"
    frames[0].save(src, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    error = refused(src, work)
    assert error.code == "not_image"
    assert "GIF" in error.message


def test_empty_file(tmp_path, work):
    src = tmp_path / "empty.jpg"
    src.write_bytes(b"")
    assert refused(src, work).code == "not_image"


def test_jpeg_magic_with_garbage_after_it(tmp_path, work):
    src = tmp_path / "fake.jpg"
    src.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 100)
    assert refused(src, work).code == "undecodable"


def test_refusals_name_the_file_field(tmp_path, work):
    src = tmp_path / "page.jpg"
    src.write_text("<html></html>")
    error = refused(src, work)
    assert error.details["param"] == "file"


def test_refusal_status_is_422():
    assert ImageRejected("x").status == 422


def test_file_over_20_mb(tmp_path, work):
    src = tmp_path / "huge.jpg"
    with open(src, "wb") as f:  # sparse: a real JPEG header, then a hole
        f.write(save(corner_image(), tmp_path / "a.jpg", "JPEG").read_bytes())
        f.truncate(20 * 1024 * 1024 + 1)
    with pytest.raises(PayloadTooLarge) as info:
        process_image(src, work)
    assert info.value.status == 413
    assert info.value.details["param"] == "file"
    assert files(work) == []


def test_file_of_exactly_20_mb_is_not_refused_for_its_size(tmp_path, work):
    src = tmp_path / "padded.png"
    with open(src, "wb") as f:  # a PNG followed by zeros up to the limit: still a PNG
        f.write(save(corner_image(), tmp_path / "a.png", "PNG").read_bytes())
        f.truncate(20 * 1024 * 1024)
    assert process_image(src, work).source_format == "png"


def test_a_failed_write_leaves_nothing(tmp_path):
    src = save(corner_image(), tmp_path / "a.png", "PNG")
    with pytest.raises(OSError):
        process_image(src, tmp_path / "no-such-dir")
    assert not (tmp_path / "no-such-dir").exists()
