"""voicemap.audio on real recordings made at test time: every accepted format, hostile files,
limits, tags. Loudness and true peak of the published MP3 are checked with ffmpeg's ebur128
filter, a meter independent of ours."""

from __future__ import annotations

import json
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
    pipeline,
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


# --- loudness, true peak, limiter and fades, seen in what is published ------------------------


def speech_float(encoded) -> np.ndarray:
    """The English test speech as float samples at 44.1 kHz, peaking at -6 dBFS."""
    x = fx.pcm16(encoded("en", "wav"), 44100).astype(np.float32) / 32768
    return x * np.float32(0.5 / np.abs(x).max())


def voiced(x: np.ndarray, rate: int = 44100) -> np.ndarray:
    """True where the speech ``x`` is voiced (20 ms RMS within 30 dB of its loudest)."""
    block = rate // 50
    n = len(x) // block * block
    rms = np.sqrt(np.mean(x[:n].reshape(-1, block) ** 2, axis=1))
    mask = np.repeat(rms > rms.max() * 10 ** (-30 / 20), block)
    return np.concatenate([mask, np.zeros(len(x) - n, dtype=bool)])


def test_intersample_peaks_are_held_under_the_true_peak_limit(encoded, tmp_path):
    """A tone at a quarter of the sample rate, 45 degrees off the samples, under the speech:
    its crests fall between samples (3 dB over them). Measured by ffmpeg's own 4x oversampled
    meter, the published file still keeps to -1 dBTP, and we report its true peak right."""
    x = speech_float(encoded)
    t = np.arange(len(x))
    tone = np.sin(2 * np.pi * t / 4 + np.pi / 4).astype(np.float32)
    assert np.abs(tone).max() == pytest.approx(np.sqrt(0.5), abs=1e-3)  # samples miss the crest
    mixed = x + np.float32(0.4) * tone * voiced(x)
    result = audio.process(float_wav(mixed, tmp_path / "tone.wav"), tmp_path / "out")
    lufs, peak = fx.ebur128(result.path)
    assert peak <= -1.0
    assert result.true_peak_dbtp == pytest.approx(peak, abs=0.15)
    assert lufs == pytest.approx(audio.TARGET_LUFS, abs=1.0)


@pytest.mark.parametrize("every_ms", [None, 30])
def test_bursts_far_over_the_speech_are_limited_and_the_speech_reaches_target(
        encoded, tmp_path, every_ms):
    """Plosive-like bursts 20 dB hotter than the speech: a dozen of them, or one every 30 ms
    (where a 50 ms limiter hold never lets go and the pipeline must use its faster one). The
    published file is on -16 LUFS and under -1 dBTP either way."""
    rng = np.random.default_rng(7)
    x = speech_float(encoded) * np.float32(0.1)  # speech peaking at -26 dBFS...
    burst = int(0.03 * 44100) if every_ms is None else int(0.002 * 44100)
    where = np.flatnonzero(voiced(x))
    starts = (rng.choice(where[:-burst], 12, replace=False) if every_ms is None
              else where[:-burst][:: int(every_ms / 1000 * 44100)])
    for s0 in starts:  # ...with bursts at -6 dBFS
        x[s0 : s0 + burst] += rng.uniform(-0.5, 0.5, burst).astype(np.float32)
    result = audio.process(float_wav(x, tmp_path / "bursts.wav"), tmp_path / "out")
    lufs, peak = fx.ebur128(result.path)
    assert peak <= -1.0
    assert lufs == pytest.approx(audio.TARGET_LUFS, abs=1.0)


def test_voice_starting_abruptly_is_faded_in(tmp_path):
    """A recording that starts mid-word at full level is published with a fade-in, not a
    click."""
    rate = 44100
    t = np.arange(rate * 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)))
    result = audio.process(float_wav(tone.astype(np.float32), tmp_path / "cut.wav"),
                           tmp_path / "out")
    y = fx.pcm16(result.path, rate).astype(np.float64)
    onset = int(np.flatnonzero(np.abs(y) > 30)[0])  # the first sound (the encoder's delay)
    ms = rate // 1000

    def rms(at: int) -> float:
        return float(np.sqrt(np.mean(y[at : at + ms] ** 2)))

    fade = int(audio.FADE_MS * ms)
    assert rms(onset) < 0.3 * rms(onset + fade)
    assert rms(onset + fade // 2) < rms(onset + fade)
