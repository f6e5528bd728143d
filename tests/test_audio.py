"""voicemap.audio on real recordings made at test time: every accepted format, hostile files,
limits, tags. Loudness and true peak of the published MP3 are checked with ffmpeg's ebur128
filter, a meter independent of ours."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import audio_fixtures as fx
import numpy as np
import pytest
from helpers import mp3_tags
from pydub import AudioSegment

from voicemap import audio
from voicemap.audio import (
    Limits,
    ProbeInfo,
    decode,
    encode,
    loudness,
    pipeline,
    settings,
)
from voicemap.errors import AudioRejected, PayloadTooLarge

pytestmark = pytest.mark.skipif(
    not (fx.ESPEAK and Path(fx.FFMPEG).exists() and Path(fx.FFPROBE).exists()),
    reason="needs espeak-ng, ffmpeg and ffprobe",
)

LEAD_S, TRAIL_S = 1.5, 2.0  # silence made around the speech


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Two raw recordings: quiet English (44.1 kHz stereo, faint hiss) and hot Mandarin
    (48 kHz mono, noisier room), each padded with silence."""
    d = tmp_path_factory.mktemp("sources")
    return {
        "en": fx.speech_wav(d / "en.wav", "en", lead_s=LEAD_S, trail_s=TRAIL_S, gain_db=-22),
        "zh": fx.speech_wav(d / "zh.wav", "zh", lead_s=LEAD_S, trail_s=TRAIL_S, gain_db=-3,
                            rate=48000, channels=1, noise_dbfs=-55),  # fmt: skip
    }


@pytest.fixture(scope="session")
def encoded(sources, tmp_path_factory):
    """Encode a source once per (lang, format) for the whole session."""
    d = tmp_path_factory.mktemp("encoded")
    cache: dict[tuple[str, str], Path] = {}

    def get(lang: str, fmt: str) -> Path:
        if (lang, fmt) not in cache:
            cache[lang, fmt] = fx.encode(sources[lang], fmt, d)
        return cache[lang, fmt]

    return get


@pytest.fixture
def out_dir(tmp_path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path, monkeypatch) -> Path:
    """Point tempfile at an empty folder so each test can check that nothing is left there."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


# --- helpers --------------------------------------------------------------------------------


# ISO/IEC 11172-3 and 13818-3, Layer III: kbit/s by bitrate index (MPEG-1; MPEG-2 and 2.5),
# and Hz by sample-rate index (by version bits: 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5).
LAYER3_KBPS = {3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
               2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
LAYER3_KBPS[0] = LAYER3_KBPS[2]
MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def layer3_frame_length(h: bytes) -> int | None:
    """Bytes in the MPEG Layer III frame whose header is ``h``, or None if it is not one."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version, layer, bitrate, rate = (h[1] >> 3) & 3, (h[1] >> 1) & 3, h[2] >> 4, (h[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate in (0, 15) or rate == 3:
        return None
    per_frame = 144 if version == 3 else 72  # samples per frame / 8
    return per_frame * LAYER3_KBPS[version][bitrate] * 1000 // MPEG_RATES[version][rate] + (
        (h[2] >> 1) & 1)


def mp3_frames(path: Path) -> list[tuple[int, int, int, int]]:
    """(MPEG version bits, layer bits, bitrate index, sample-rate index) of every frame."""
    data = path.read_bytes()
    assert mp3_tags(data) == [], "a published MP3 carries no tag"
    frames, pos = [], 0
    while pos + 4 <= len(data):
        n = layer3_frame_length(data[pos : pos + 4])
        assert n, f"no MPEG frame header at byte {pos} of {len(data)}"
        h = data[pos : pos + 4]
        frames.append(((h[1] >> 3) & 3, (h[1] >> 1) & 3, h[2] >> 4, (h[2] >> 2) & 3))
        pos += n
    return frames


def assert_published(result: audio.ProcessedAudio, out_dir: Path, src: Path) -> None:
    assert list(out_dir.iterdir()) == [result.path]
    info = fx.ffprobe(result.path)
    (stream,) = info["streams"]
    assert info["format"]["format_name"] == "mp3"
    assert stream["codec_name"] == "mp3"
    assert stream["channels"] == 1
    assert int(stream["sample_rate"]) in (32000, 44100, 48000)  # MPEG-1 rates
    assert 64000 <= int(stream["bit_rate"]) <= 96000
    assert not info["format"].get("tags")
    assert not stream.get("tags")
    frames = mp3_frames(result.path)
    assert {f[:2] for f in frames} == {(3, 1)}, "MPEG-1 Layer III"
    assert len({f[2] for f in frames}) == 1, "constant bitrate"
    assert result.sample_rate == int(stream["sample_rate"])
    assert 64 <= result.bitrate_kbps <= 96

    lufs, peak = fx.ebur128(result.path)
    assert abs(lufs - audio.TARGET_LUFS) <= 1.0, lufs
    assert peak <= -1.0, peak
    assert abs(result.loudness_lufs - lufs) < 0.15
    assert abs(result.true_peak_dbtp - peak) < 0.15

    published = fx.duration(result.path)
    assert abs(result.duration_ms / 1000 - published) < 0.06
    # leading/trailing silence trimmed down to the ~200 ms pads
    before = fx.duration(src)
    removed = before - published
    pads = 2 * audio.PAD_S
    assert LEAD_S + TRAIL_S - pads - 0.1 <= removed <= LEAD_S + TRAIL_S - pads + 1.0, removed

    assert len(result.peaks) == 100
    assert all(0.0 <= p <= 1.0 for p in result.peaks)
    assert all(round(p, 3) == p for p in result.peaks)
    assert max(result.peaks) == 1.0
    assert result.peaks[0] < 0.2
    assert result.peaks[-1] < 0.2  # pads and fades at the ends


def rejected(exc_info, code: str, out_dir: Path, tmp: Path) -> str:
    assert exc_info.value.code == code, (exc_info.value.code, exc_info.value.message)
    assert list(out_dir.iterdir()) == []
    assert list(tmp.iterdir()) == []  # the temporary directory was cleaned up
    return exc_info.value.message


# --- accepted formats -----------------------------------------------------------------------

CASES = [
    ("en", "wav", "wav", "pcm_s16le"),
    ("en", "mp3", "mp3", "mp3"),
    ("en", "m4a", "mp4", "aac"),
    ("en", "adts", "aac", "aac"),
    ("en", "ogg_vorbis", "ogg", "vorbis"),
    ("en", "ogg_opus", "ogg", "opus"),
    ("en", "webm_opus", "webm", "opus"),
    ("en", "flac", "flac", "flac"),
    ("en", "ogg_speex", "ogg", "speex"),
    ("en", "amr_nb", "amr", "amr_nb"),
    ("en", "amr_wb", "amr", "amr_wb"),
    ("zh", "wav", "wav", "pcm_s16le"),
    ("zh", "m4a", "mp4", "aac"),
    ("zh", "webm_opus", "webm", "opus"),
    ("zh", "amr_nb", "amr", "amr_nb"),
]


@pytest.mark.parametrize(("lang", "fmt", "kind", "codec"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])  # fmt: skip
def test_accepted_formats(encoded, out_dir, private_tempdir, lang, fmt, kind, codec):
    if fmt == "amr_nb" and not fx.amr_nb_available():
        pytest.skip("needs libopencore-amrnb0 (the AMR-NB encoder)")
    if fmt == "amr_wb" and not fx.amr_wb_available():
        pytest.skip("needs libvo-amrwbenc0 (the AMR-WB encoder)")
    src = encoded(lang, fmt)
    # a misleading name must not matter: the content decides
    renamed = src.with_name(f"upload-{lang}-{fmt}.bin")
    renamed.write_bytes(src.read_bytes())
    result = audio.process(renamed, out_dir)
    assert result.source.format == kind
    assert result.source.codec == codec
    assert_published(result, out_dir, src)
    assert list(private_tempdir.iterdir()) == []


@pytest.mark.parametrize(("setting", "value"), [("PRE_ENCODE_CEILING_DBTP", -0.2),
                                                ("MP3_LOUDNESS_BIAS_LU", 0.8)])
def test_published_file_is_measured_and_corrected(setting, value, encoded, out_dir, tmp_path,
                                                  monkeypatch):  # fmt: skip
    """When the first encode misses (limiter set too high, or a wrong loudness prediction), the
    measurement of the published MP3 drives another encode that lands."""
    monkeypatch.setattr(pipeline, setting, value)
    log = tmp_path / "ffmpeg.log"
    monkeypatch.setenv("VOICEMAP_FFMPEG", str(fx.tool_wrapper(tmp_path / "ffmpeg", fx.FFMPEG, log)))
    result = audio.process(encoded("zh", "wav"), out_dir)
    encodes = [line for line in log.read_text().splitlines() if "libmp3lame" in line]
    assert 2 <= len(encodes) <= audio.MAX_ATTEMPTS
    lufs, peak = fx.ebur128(result.path)
    assert abs(lufs + 16) <= 0.5
    assert peak <= -1.0
    assert list(out_dir.iterdir()) == [result.path]


def test_probe_reports_source(encoded):
    info = audio.probe(encoded("en", "m4a"))
    assert isinstance(info, ProbeInfo)
    assert (info.format, info.codec, info.sample_rate, info.channels) == ("mp4", "aac", 44100, 2)
    assert info.duration_s == pytest.approx(fx.duration(encoded("en", "m4a")), abs=0.05)
    assert not info.duration_estimated
    webm = audio.probe(encoded("en", "webm_opus"))
    assert (webm.format, webm.codec, webm.sample_rate) == ("webm", "opus", 48000)
    if fx.amr_nb_available():
        amr = audio.probe(encoded("en", "amr_nb"))
        assert (amr.format, amr.codec, amr.sample_rate, amr.channels) == ("amr", "amr_nb", 8000, 1)


def test_output_name_is_content_hash_or_stem(encoded, tmp_path):
    a = audio.process(encoded("en", "flac"), tmp_path / "a")
    assert len(a.path.stem) == 32
    assert a.path.suffix == ".mp3"
    b = audio.process(encoded("en", "flac"), tmp_path / "b", stem="clip-1")
    assert b.path == tmp_path / "b" / "clip-1.mp3"
    assert a.path.read_bytes() == b.path.read_bytes()  # deterministic (bitexact, no tags)


# --- metadata is stripped -------------------------------------------------------------------

SECRETS = ["Xiaoming Wang", "Class 3, Chaoyang No.2 Primary", "39.9042", "116.4074",
           "iPhone 15 Pro", "call me 13800138000"]  # fmt: skip


def test_id3_tags_and_cover_art_are_stripped(sources, tmp_path, out_dir):
    cover = fx.png_file(tmp_path / "cover.png")
    src = tmp_path / "tagged.mp3"
    fx.ffmpeg(
        "-i", str(sources["en"]), "-i", str(cover), "-map", "0:a", "-map", "1:v",
        "-c:a", "libmp3lame", "-b:a", "96k", "-c:v", "copy", "-id3v2_version", "3",
        "-metadata", f"title={SECRETS[0]}", "-metadata", f"artist={SECRETS[1]}",
        "-metadata", f"comment={SECRETS[5]}", "-metadata", f"location={SECRETS[2]},{SECRETS[3]}",
        "-metadata", f"encoded_by={SECRETS[4]}", "-metadata:s:v", "title=Album cover",
        str(src),
    )  # fmt: skip
    tags = fx.ffprobe(src)["format"]["tags"]
    assert tags["title"] == SECRETS[0]
    assert SECRETS[2] in json.dumps(tags)
    result = audio.process(src, out_dir)
    assert_published(result, out_dir, src)
    data = result.path.read_bytes()
    for secret in SECRETS + ["Album cover"]:
        assert secret.encode() not in data
    assert b"PNG" not in data
    assert b"ID3" not in data


def test_mp4_tags_and_location_are_stripped(sources, tmp_path, out_dir):
    src = tmp_path / "tagged.m4a"
    fx.ffmpeg(
        "-i", str(sources["zh"]), "-c:a", "aac", "-b:a", "96k",
        "-metadata", f"title={SECRETS[0]}", "-metadata", f"artist={SECRETS[1]}",
        "-metadata", f"comment={SECRETS[5]}",
        "-metadata", f"location=+{SECRETS[2]}+{SECRETS[3]}/",
        "-metadata", f"com.apple.quicktime.location.ISO6709=+{SECRETS[2]}+{SECRETS[3]}/",
        "-metadata", f"com.apple.quicktime.model={SECRETS[4]}",
        "-movflags", "+use_metadata_tags", "-f", "mp4", str(src),
    )  # fmt: skip
    tags = json.dumps(fx.ffprobe(src)["format"]["tags"])
    assert SECRETS[0] in tags
    assert SECRETS[4] in tags
    assert SECRETS[2] in tags
    result = audio.process(src, out_dir)
    assert_published(result, out_dir, src)
    data = result.path.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in data


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("maker", ["text", "html", "png", "zip", "empty", "mp4_video",
                                   "webm_video"])  # fmt: skip
@pytest.mark.parametrize("name", ["voice.mp3", "voice.m4a", "voice.wav"])
def test_not_audio(maker, name, encoded, tmp_path, out_dir, private_tempdir):
    path = tmp_path / name
    if maker == "text":
        fx.text_file(path)
    elif maker == "html":
        fx.html_file(path)
    elif maker == "png":
        fx.png_file(path)
    elif maker == "zip":  # a zip holding a real MP3 is still a zip
        fx.zip_with_audio(encoded("en", "mp3"), path)
    elif maker == "empty":
        path.write_bytes(b"")
    elif maker == "mp4_video":
        fx.video_only(tmp_path / "v.mp4", "mp4").rename(path)
    else:
        fx.video_only(tmp_path / "v.webm", "webm").rename(path)
    with pytest.raises(AudioRejected) as exc:
        audio.process(path, out_dir)
    assert exc.value.status == 422
    message = rejected(exc, "not_audio", out_dir, private_tempdir)
    assert message
    assert "audio" in message.lower() or "empty" in message.lower()


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_truncated_files_are_undecodable(fmt, encoded, tmp_path, out_dir, private_tempdir):
    src = fx.truncated(encoded("en", fmt), tmp_path / f"cut.{fmt}", 0.5)
    with pytest.raises(AudioRejected) as exc:
        audio.process(src, out_dir)
    rejected(exc, "undecodable", out_dir, private_tempdir)


def test_corrupt_body_is_undecodable(encoded, tmp_path, out_dir, private_tempdir):
    """Right magic bytes, garbage after them."""
    src = tmp_path / "junk.ogg"
    src.write_bytes(b"OggS" + os.urandom(20000))
    with pytest.raises(AudioRejected) as exc:
        audio.process(src, out_dir)
    rejected(exc, "undecodable", out_dir, private_tempdir)


def test_too_large_is_refused_before_reading(encoded, tmp_path, out_dir, private_tempdir):
    garbage = tmp_path / "garbage.wav"  # not audio: read, it would be "not_audio"
    garbage.write_bytes(os.urandom(20_000))
    with pytest.raises(PayloadTooLarge):
        audio.process(garbage, out_dir, Limits(max_bytes=10_000))
    src = encoded("en", "wav")
    with pytest.raises(PayloadTooLarge) as exc:
        audio.process(src, out_dir, Limits(max_bytes=10_000))
    assert exc.value.status == 413
    message = rejected(exc, "too_large", out_dir, private_tempdir)
    assert message == "The file is 1.8 MB; the limit is 10 KB."
    assert exc.value.details["max_bytes"] == 10_000


def test_too_long_by_stated_duration_is_refused_without_decoding(
    encoded, out_dir, private_tempdir, monkeypatch
):
    monkeypatch.setattr(pipeline, "_decode", lambda *a: pytest.fail("decoded a too-long file"))
    with pytest.raises(AudioRejected) as exc:
        audio.process(encoded("en", "m4a"), out_dir, Limits(max_duration_s=5))
    message = rejected(exc, "too_long", out_dir, private_tempdir)
    assert "0:05" in message or "5.0 seconds" in message


def test_two_hour_flac_is_refused_from_its_header(tmp_path, out_dir, private_tempdir):
    bomb = fx.flac_bomb(tmp_path / "bomb.flac")
    assert bomb.stat().st_size < 2_000_000
    start = time.monotonic()
    with pytest.raises(AudioRejected) as exc:
        audio.process(bomb, out_dir)
    assert time.monotonic() - start < 3
    message = rejected(exc, "too_long", out_dir, private_tempdir)
    assert "2:00:00" in message
    assert "10:00" in message


def test_lying_wav_header_is_refused(tmp_path, out_dir, private_tempdir):
    """480 KB of 8 kHz PCM whose header claims 100 Hz: 80 minutes that would resample to GBs."""
    bomb = fx.lying_wav(tmp_path / "lie.wav")
    assert bomb.stat().st_size < 500_000
    with pytest.raises(AudioRejected) as exc:
        audio.process(bomb, out_dir)
    rejected(exc, "too_long", out_dir, private_tempdir)


@pytest.mark.parametrize("kind", ["flac", "webm"])
def test_bomb_without_duration_is_stopped_by_the_bounded_decode(
    kind, tmp_path, out_dir, private_tempdir
):
    if kind == "flac":
        bomb = fx.flac_bomb(tmp_path / "bomb.flac", hide_duration=True)
    else:
        bomb = fx.webm_bomb(tmp_path / "bomb.webm", tmp_path)
    assert audio.probe(bomb).duration_s is None  # the container does not say
    with pytest.raises(AudioRejected) as exc:
        audio.process(bomb, out_dir, Limits(max_duration_s=120))
    message = rejected(exc, "too_long", out_dir, private_tempdir)
    assert "2:00" in message


def test_container_understating_its_duration_is_stopped(tmp_path, out_dir, private_tempdir):
    chained = fx.chained_ogg(tmp_path / "chained.ogg", tmp_path)  # says 2 s, holds 62 s
    assert audio.probe(chained).duration_s == pytest.approx(2.0, abs=0.1)
    with pytest.raises(AudioRejected) as exc:
        audio.process(chained, out_dir, Limits(max_duration_s=20))
    message = rejected(exc, "too_long", out_dir, private_tempdir)
    assert message == "The recording is longer than the limit of 20.0 seconds."


def test_bounded_decode_keeps_memory_small(tmp_path):
    """In a fresh interpreter, a 2-hour bomb with no stated duration, at the default 10-minute
    limit, costs no more memory than a legitimate 10-minute recording."""
    bomb = fx.flac_bomb(tmp_path / "bomb.flac", hide_duration=True)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of this (big)
    # pytest process would report pytest's own size.
    code = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from voicemap import audio\n"
        "from voicemap.errors import AudioRejected\n"
        "try:\n"
        "    audio.process(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "except AudioRejected as e:\n"
        "    hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())\n"
        "    print(e.code, int(hwm.group(1)) // 1024)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(bomb), str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    code_, rss_mb = res.stdout.split()
    assert code_ == "too_long"
    assert int(rss_mb) < 160, f"python peaked at {rss_mb} MB"


def test_too_short(tmp_path, out_dir, private_tempdir):
    src = fx.tone(tmp_path / "blip.m4a", 0.5, extra=["-c:a", "aac"])
    with pytest.raises(AudioRejected) as exc:
        audio.process(src, out_dir)
    message = rejected(exc, "too_short", out_dir, private_tempdir)
    assert "at least 1 second" in message


@pytest.mark.parametrize("noise_dbfs", [None, -75.0, -50.0])
def test_silent(noise_dbfs, tmp_path, out_dir, private_tempdir):
    src = fx.silence(tmp_path / "quiet.wav", 4.0, noise_dbfs)
    with pytest.raises(AudioRejected) as exc:
        audio.process(src, out_dir)
    rejected(exc, "silent", out_dir, private_tempdir)


def test_only_clicks_is_refused(tmp_path, out_dir, private_tempdir):
    """Peaks at the ceiling and still far under -16 LUFS: nothing to normalise."""
    with pytest.raises(AudioRejected) as exc:
        audio.process(fx.clicks(tmp_path / "taps.wav"), out_dir)
    assert "clicks" in rejected(exc, "silent", out_dir, private_tempdir)


def test_silk_is_named(tmp_path, out_dir):
    src = tmp_path / "wechat.amr"
    src.write_bytes(b"\x02#!SILK_V3" + os.urandom(2000))
    with pytest.raises(AudioRejected) as exc:
        audio.process(src, out_dir)
    assert exc.value.code == "not_audio"
    assert "SILK" in exc.value.message


def test_missing_ffprobe_is_a_server_error(encoded, out_dir, monkeypatch):
    monkeypatch.setenv("VOICEMAP_FFPROBE", "/nonexistent/ffprobe")
    with pytest.raises(RuntimeError, match="ffprobe"):
        audio.process(encoded("en", "wav"), out_dir)
    assert list(out_dir.iterdir()) == []


# --- pydub and the encoder ------------------------------------------------------------------------


def test_encoder_is_the_ffmpeg_resolved_and_leaves_no_temporary_files(
    encoded, tmp_path, out_dir, private_tempdir, monkeypatch
):
    """The MP3 is encoded by the ffmpeg that VOICEMAP_FFMPEG names, and the pipeline leaves
    nothing in the temporary directory."""
    log = tmp_path / "ffmpeg.log"
    monkeypatch.setenv("VOICEMAP_FFMPEG", str(fx.tool_wrapper(tmp_path / "ffmpeg", fx.FFMPEG, log)))
    src = encoded("zh", "wav")
    result = audio.process(src, out_dir)
    assert_published(result, out_dir, src)
    assert any("libmp3lame" in line for line in log.read_text().splitlines())
    assert list(private_tempdir.iterdir()) == []


def test_published_mp3_is_a_bare_cbr_stream(encoded, tmp_path, private_tempdir):
    """What is published: MPEG-1 Layer III, 44.1 kHz, mono, CBR 64 kbit/s with a Xing
    ("Info") header, no ID3v2 or ID3v1 tag, no metadata, the same bytes every time, nothing
    left in the temp directory."""
    src = encoded("en", "wav")
    first = audio.process(src, tmp_path / "a").path
    second = audio.process(src, tmp_path / "b").path
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert set(mp3_frames(first)) == {(3, 1, 5, 0)}  # MPEG-1, Layer III, 64 kbit/s, 44.1 kHz
    assert data[3] >> 6 == 3  # channel mode: mono
    assert data[21:25] == b"Info"  # the Xing header of a CBR stream, after 17 bytes of side info
    assert data[-128:-125] != b"TAG"
    assert b"ID3" not in data
    info = fx.ffprobe(first)
    assert not info["format"].get("tags")
    assert not info["streams"][0].get("tags")
    assert list(private_tempdir.iterdir()) == []


def test_tag_check_sees_every_kind_of_tag(tmp_path):
    """``mp3_tags`` (what the published-file checks rely on) finds tags that are there."""
    src = tmp_path / "tone.wav"
    fx.ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(src))
    tagged = tmp_path / "tagged.mp3"
    fx.ffmpeg("-i", str(src), "-c:a", "libmp3lame", "-id3v2_version", "3", "-write_id3v1", "1",
              "-metadata", "title=Lily at the museum", str(tagged))  # fmt: skip
    data = tagged.read_bytes()
    assert mp3_tags(data) == ["ID3v2", "ID3v1"]
    ape = b"APETAGEX" + (2000).to_bytes(4, "little") + bytes(20)  # an APEv2 footer
    assert mp3_tags(data[:-128] + ape) == ["ID3v2", "APE"]
    assert mp3_tags(data[:-128] + b"LYRICSBEGINxyz000011LYRICS200") == ["ID3v2", "Lyrics3"]


def test_failed_encode_leaves_nothing_behind(encoded, tmp_path, out_dir, private_tempdir,
                                            monkeypatch):  # fmt: skip
    """When the encoder fails, no partial MP3 and no temporary file is left anywhere, and the
    failure is a server error."""
    wrapper = fx.tool_wrapper(tmp_path / "ffmpeg", fx.FFMPEG, tmp_path / "log",
                              fail_on="libmp3lame")  # fmt: skip
    monkeypatch.setenv("VOICEMAP_FFMPEG", str(wrapper))
    with pytest.raises(RuntimeError, match="MP3 encoding failed"):
        audio.process(encoded("en", "wav"), out_dir)
    assert list(out_dir.iterdir()) == []
    assert list(private_tempdir.iterdir()) == []


def float_wav(samples: np.ndarray, path: Path, rate: int = 44100) -> Path:
    """A 32-bit float WAV of ``samples`` as they are (values over 1.0 and NaN included)."""
    raw = path.with_suffix(".f32")
    raw.write_bytes(samples.astype("<f4").tobytes())
    fx.ffmpeg("-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", str(raw), "-c:a", "pcm_f32le",
              str(path))  # fmt: skip
    raw.unlink()
    return path


def test_overshoot_over_full_scale_is_not_clipped(encoded, tmp_path):
    """A float recording peaking at +6 dBFS (as a decoder's overshoot may) is published as
    the same recording at a quarter of the level: nothing was clipped at full scale."""
    speech_pcm = fx.pcm16(encoded("en", "wav"), 44100).astype(np.float32) / 32768
    quiet = speech_pcm * (0.5 / np.abs(speech_pcm).max())  # peaks at -6 dBFS
    loud = quiet * 4  # the same, peaking at +6 dBFS (exact: a power of two)
    a = audio.process(float_wav(quiet, tmp_path / "quiet.wav"), tmp_path / "a")
    b = audio.process(float_wav(loud, tmp_path / "loud.wav"), tmp_path / "b")
    x = fx.pcm16(a.path, 44100).astype(np.float64)
    y = fx.pcm16(b.path, 44100).astype(np.float64)
    assert len(x) == len(y)
    assert np.sqrt(np.mean((x - y) ** 2)) < 0.01 * np.sqrt(np.mean(x**2))
    assert b.loudness_lufs == pytest.approx(a.loudness_lufs, abs=0.05)


def test_render_applies_gain_limiter_and_pydub_fades():
    n = audio.WORK_RATE * 2
    pcm = np.full(n, 2**29, dtype=np.int32)  # 0.25 at the scale below
    voice = AudioSegment(data=pcm.tobytes(), sample_width=4, frame_rate=audio.WORK_RATE,
                         channels=1)  # fmt: skip
    gains = np.ones(-(-n // settings._BLOCK), dtype=np.float32)
    gains[len(gains) // 2 :] = 0.5  # the limiter halves the second half
    out = encode._render(voice, 2**31, 2.0, gains)
    y = decode._pcm(out)
    fade = int(audio.WORK_RATE * audio.FADE_MS / 1000)
    assert (out.sample_width, out.frame_rate, len(y)) == (2, audio.WORK_RATE, n)
    assert y[fade] == 16384
    assert y[-fade - 1] == 8192  # 0.25 * 2 (* 0.5) in 16 bits
    assert abs(int(y[0])) <= 1
    assert abs(int(y[-1])) <= 100  # pydub's linear fades
    assert y[fade // 2] == pytest.approx(8192, abs=100)
    assert np.all(np.diff(y[:fade].astype(int)) >= 0)
    assert np.all(np.diff(y[-fade:]) <= 0)


def test_published_loudness_agrees_with_pyloudnorm(encoded, out_dir):
    """The published MP3 decoded by pydub and measured by pyloudnorm, a reference meter that is
    not ours, reads where we say it does."""
    pyln = pytest.importorskip("pyloudnorm")
    result = audio.process(encoded("en", "m4a"), out_dir)
    seg = AudioSegment.from_file(result.path, format="mp3")
    assert (seg.frame_rate, seg.channels) == (audio.OUTPUT_RATE, 1)
    x = np.array(seg.get_array_of_samples(), dtype=np.float64) / seg.max_possible_amplitude
    # DeMan: BS.1770's filters designed for the rate (pyloudnorm's default is an approximation)
    lufs = pyln.Meter(seg.frame_rate, filter_class="DeMan").integrated_loudness(x)
    assert lufs == pytest.approx(result.loudness_lufs, abs=0.05)


def test_imports_cleanly_with_warnings_as_errors(tmp_path):
    """pydub warns at import (audioop is deprecated; no ffmpeg on PATH): neither may break
    ``python -W error``, whatever the PATH."""
    empty = tmp_path / "bin"
    empty.mkdir()
    for path in (os.environ.get("PATH", ""), str(empty)):
        res = subprocess.run([sys.executable, "-W", "error", "-c", "import voicemap.audio"],
                             env=dict(os.environ, PATH=path), capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        assert res.returncode == 0, res.stderr


# --- the pieces -----------------------------------------------------------------------------


def test_probe_ignores_names_and_skips_id3(tmp_path, encoded):
    assert audio.probe(encoded("en", "adts")).format == "aac"
    tagged = tmp_path / "x.txt"
    fx.ffmpeg("-i", str(encoded("en", "wav")), "-t", "2", "-c:a", "aac", "-f", "adts",
              "-write_id3v2", "1", "-metadata", "title=t", str(tagged))  # fmt: skip
    assert tagged.read_bytes()[:3] == b"ID3"
    assert audio.probe(tagged).format == "aac"
    (tmp_path / "tty.mp3").write_text("hello\n" * 100)
    with pytest.raises(AudioRejected) as info:
        audio.probe(tmp_path / "tty.mp3")
    assert info.value.code == "not_audio"


def test_meter_agrees_with_pyloudnorm():
    """Our streaming BS.1770 meter against pyloudnorm's reference implementation."""
    pyln = pytest.importorskip("pyloudnorm")
    rate = 44100
    rng = np.random.default_rng(3)
    t = np.arange(rate * 5) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.7 * t))
         + 0.05 * rng.standard_normal(len(t))).astype(np.float32)  # fmt: skip
    x[: rate] *= 0.001  # a quiet second for the gates to drop
    weighted = x.astype(np.float64)
    for b, a in loudness._k_weighting(rate):
        y = np.zeros_like(weighted)
        x1 = x2 = y1 = y2 = 0.0
        for i, v in enumerate(weighted):  # plain difference equation, no scipy
            out = b[0] * v + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
            x2, x1, y2, y1 = x1, v, y1, out
            y[i] = out
        weighted = y
    meter = loudness._Meter(rate)
    for i in range(0, len(x), 30000):  # streamed in odd-sized chunks
        meter.feed(x[i : i + 30000], weighted[i : i + 30000].astype(np.float32))
    lufs, _ = meter.result()
    reference = pyln.Meter(rate, filter_class="DeMan").integrated_loudness(x.astype(np.float64))
    assert lufs == pytest.approx(reference, abs=0.02)


def test_true_peak_catches_intersample_peaks():
    rate = 44100
    t = np.arange(rate)
    x = np.sin(2 * np.pi * (rate / 4) * t / rate + math.pi / 4) * np.hanning(rate) ** 0.1
    x = x.astype(np.float32)  # a tone at fs/4, faded in and out (no step at the edges)
    assert np.abs(x).max() == pytest.approx(math.sqrt(0.5), abs=2e-3)  # samples miss the crest
    meter = loudness._Meter(rate)
    meter.feed(x, x)
    _, peak = meter.result()
    assert peak == pytest.approx(0.0, abs=0.05)


def test_limiter_never_lets_a_block_over_the_ceiling():
    rng = np.random.default_rng(5)
    tp = (rng.random(20000) ** 4).astype(np.float32) * 2.0
    tp[5000:5003] = 8.0  # a sharp spike
    gain = 1.5
    ceiling = np.full(len(tp), 0.8, dtype=np.float32)
    ceiling[12000:12050] = 0.5  # lowered locally, as after an MP3 overshoot there
    gains = loudness._limiter_gains(tp, gain, ceiling)
    assert gains.dtype == np.float32
    assert gains.max() <= 1.0
    for shift in (-1, 0, 1):  # samples interpolate between neighbouring blocks
        neighbour = np.roll(gains, shift)
        neighbour[0 if shift == 1 else -1] = gains[0 if shift == 1 else -1]
        assert np.all(neighbour * gain * tp <= ceiling * (1 + 1e-6))
    quiet = np.full(1000, 0.1, dtype=np.float32)
    assert np.all(loudness._limiter_gains(quiet, gain, ceiling[:1000]) == 1.0)  # nothing to do


def test_gain_solver_reaches_target_through_heavy_limiting():
    rng = np.random.default_rng(7)
    blocks = 105 * 100  # 10 s
    kw = (rng.random(blocks) * 1e-4).astype(np.float64)
    tp = np.sqrt(kw / settings._BLOCK).astype(np.float32) * 3  # crest factor ~10 dB...
    for start in rng.choice(blocks - 30, 12, replace=False):
        tp[start : start + 30] *= 10  # ...and a dozen 30 ms bursts 20 dB hotter (plosives)
    ceiling = np.full(blocks, 10 ** (-1.4 / 20), dtype=np.float32)
    start = 10 ** ((-16 - loudness._predicted_loudness(kw, None, 1.0)) / 20)
    gain, gains = loudness._solve_gain(kw, tp, -16.0, ceiling, start)
    assert loudness._predicted_loudness(kw, gains, gain) == pytest.approx(-16.0, abs=0.02)
    assert gains.min() < 0.7  # it did need the limiter
    assert np.all(gains * gain * tp <= ceiling * (1 + 1e-6))


def test_gain_solver_falls_back_to_the_fast_limiter_for_spikes_everywhere():
    rng = np.random.default_rng(7)
    blocks = 105 * 100
    kw = rng.random(blocks) * 1e-4
    tp = np.sqrt(kw / settings._BLOCK).astype(np.float32) * 3
    tp[rng.random(blocks) < 0.03] *= 10  # a spike every ~30 ms: the 50 ms hold never lets go
    ceiling = np.full(blocks, 10 ** (-1.4 / 20), dtype=np.float32)
    start = 10 ** ((-16 - loudness._predicted_loudness(kw, None, 1.0)) / 20)
    normal = loudness._solve_with(kw, tp, -16.0, ceiling, start, loudness._LIMITER_NORMAL)
    assert loudness._predicted_loudness(kw, normal[1], normal[0]) < -20  # out of reach
    gain, gains = loudness._solve_gain(kw, tp, -16.0, ceiling, start)
    assert loudness._predicted_loudness(kw, gains, gain) == pytest.approx(-16.0, abs=0.02)
    assert np.all(gains * gain * tp <= ceiling * (1 + 1e-6))


def test_local_ceiling_correction():
    ceiling = np.full(105 * 30, 0.85, dtype=np.float32)  # 3 s of blocks
    windows = np.full(300, 0.5, dtype=np.float32)  # 10 ms windows of the published file
    windows[150] = 1.0  # 1.5 s: 0 dBTP, 1 dB over a -1 dBTP goal
    goal = 10 ** (-1.0 / 20)
    assert loudness._lower_where_over(ceiling, windows, goal)
    t = (np.arange(len(ceiling)) + 0.5) * settings._BLOCK / audio.WORK_RATE
    lowered = ceiling < 0.85
    assert t[lowered].min() >= 1.47
    assert t[lowered].max() <= 1.53
    assert 20 * np.log10(0.85 / ceiling.min()) == pytest.approx(1.1, abs=0.01)
    assert not loudness._lower_where_over(ceiling, windows * 0.8, goal)
