"""The Python-only parts of training/preprocess_reference.py: argument handling, shapes, dtype,
normalisation and the pieces that need no sharp to check (PNG decoding, EXIF, flatten, the grey
formula's fixed points). Parity with the service itself: test/preprocess/reference-parity.test.ts."""
from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import preprocess_reference as pr

SCRIPT = Path(pr.__file__).resolve()
FASHION = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "fashion"
GREY = {"height": 28, "width": 28, "channels": 1, "mean": [0.286], "std": [0.353]}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def png(arr: np.ndarray, depth: int = 8, *, filters: tuple[int, ...] = (0,), interlace: bool = False,
        exif: bytes | None = None, trns: bytes | None = None) -> bytes:
    """A PNG of `arr` (H, W[, bands]) with the given scanline filters (cycled over the rows)."""
    arr = np.asarray(arr)
    h, w = arr.shape[:2]
    bands = 1 if arr.ndim == 2 else arr.shape[2]
    rows = arr.astype(">u2" if depth == 16 else np.uint8).reshape(h, -1).view(np.uint8).reshape(h, -1)
    bpp = bands * depth // 8

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    def encode(sub: np.ndarray) -> bytes:
        out, prev = b"", np.zeros(sub.shape[1], np.int64)
        for y, row in enumerate(sub.astype(np.int64)):
            f = filters[y % len(filters)]
            left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
            ul = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
            if f == 0:
                enc = row
            elif f == 1:
                enc = row - left
            elif f == 2:
                enc = row - prev
            elif f == 3:
                enc = row - ((left + prev) >> 1)
            else:
                p = left + prev - ul
                pa, pb, pc = abs(p - left), abs(p - prev), abs(p - ul)
                enc = row - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, ul))
            out += bytes([f]) + bytes((enc & 255).astype(np.uint8))
            prev = row
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in pr._ADAM7:
            sub = arr[y0::dy, x0::dx]
            if sub.size:
                raw += encode(sub.astype(">u2" if depth == 16 else np.uint8).reshape(sub.shape[0], -1)
                              .view(np.uint8).reshape(sub.shape[0], -1))
    else:
        raw = encode(rows)
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[bands]
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, int(interlace)))
    if trns is not None:
        body += chunk(b"tRNS", trns)
    if exif is not None:
        body += chunk(b"eXIf", exif)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def exif(orientation: int, little: bool = True) -> bytes:
    e = "<" if little else ">"
    return (b"II*\x00" if little else b"MM\x00*") + struct.pack(e + "IH", 8, 1) + \
        struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(e + "I", 0)


# ---- the tensor -----------------------------------------------------------------------------


def test_tensor_shape_dtype_and_layout():
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    spec = {"height": 5, "width": 7, "channels": 3, "mean": [0, 0, 0], "std": [1, 1, 1]}
    x = pr.preprocess(png(rgb), spec)
    assert x.dtype == np.float32 and x.shape == (3, 5, 7)
    assert np.allclose(x[:, 0, 0], np.array([10, 20, 30]) / 255)   # CHW: channel planes


def test_normalisation_is_the_services_float64_fold():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    spec = pr.Spec(16, 16, 1, (0.286,), (0.353,))
    x = pr.to_tensor(pixels, spec)
    a, b = 1 / (255 * 0.353), -0.286 / 0.353
    assert np.array_equal(x[0], (pixels[..., 0].astype(np.float64) * a + b).astype(np.float32))
    # the fold is the correctly rounded (p / 255 - mean) / std for these numbers ...
    assert np.array_equal(x[0], ((pixels[..., 0] / 255.0 - 0.286) / 0.353).astype(np.float32))
    # ... which float32 arithmetic (torchvision's ToTensor + Normalize) misses in the last bits
    f32 = (pixels[..., 0].astype(np.float32) / np.float32(255) - np.float32(0.286)) / np.float32(0.353)
    assert not np.array_equal(x[0], f32) and np.abs(x[0] - f32).max() < 1e-6


def test_fashion_fixtures_match_the_golden_tensors():
    golden = json.loads((FASHION / "golden.json").read_text())
    for g in golden["images"][:4]:
        x = pr.preprocess(FASHION / g["file"], GREY)
        assert x.shape == (1, 28, 28)
        assert np.abs(x.ravel() - np.array(g["tensor"], np.float32)).max() <= 1e-3


def test_bytes_and_path_give_the_same_tensor(tmp_path):
    data = png(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28))
    (tmp_path / "a.png").write_bytes(data)
    assert np.array_equal(pr.preprocess(data, GREY), pr.preprocess(tmp_path / "a.png", GREY))
    assert np.array_equal(pr.preprocess(bytearray(data), GREY), pr.preprocess(str(tmp_path / "a.png"), GREY))


# ---- the spec -------------------------------------------------------------------------------


def test_spec_defaults_and_validation():
    assert pr.Spec.of(GREY).colour == "grey" and pr.Spec.of(GREY).fit == "fill"
    assert pr.Spec.of({**GREY, "channels": 3, "mean": [0] * 3, "std": [1] * 3}).colour == "rgb"
    manifest_input = {"name": "input", "layout": "NCHW", **GREY, "fit": "cover", "colour": "grey"}
    assert pr.Spec.of(manifest_input).fit == "cover"
    for bad in ({"channels": 2}, {"mean": [0.1, 0.2]}, {"std": [0]}, {"fit": "stretch"}, {"colour": "bgr"},
                {"height": 0}, {"width": 5000}):
        with pytest.raises(ValueError):
            pr.Spec.of({**GREY, **bad})


def test_a_model_size_the_image_cannot_take_is_an_invalid_image():
    # "inside" keeps the aspect ratio: a 40x20 image cannot fill 28x28 (the service: 400)
    with pytest.raises(pr.InvalidImageError, match="expected 28×28×1"):
        pr.preprocess(png(np.zeros((20, 40), np.uint8)), {**GREY, "fit": "inside"})
    with pytest.raises(pr.InvalidImageError, match="expected 28×28×1"):
        pr.preprocess(png(np.zeros((20, 40), np.uint8)), {**GREY, "channels": 1, "colour": "rgb"})


# ---- sniffing -------------------------------------------------------------------------------


@pytest.mark.parametrize("head,name", [(b"GIF89a", "GIF"), (b"%PDF-1.7", "PDF"), (b"II*\x00", "TIFF"),
                                       (b"BM", "BMP"), (b"\x00\x00\x00\x1cftypavif", "AVIF"),
                                       (b"\x00\x00\x00\x1cftypheic", "HEIF"), (b"  <svg xmlns=", "SVG")])
def test_refused_formats(head, name):
    with pytest.raises(pr.UnsupportedImageError, match=f"image is {name},"):
        pr.preprocess(head + b"\x00" * 64, GREY)


def test_unknown_bytes_are_invalid():
    with pytest.raises(pr.InvalidImageError, match="not a PNG, JPEG or WebP"):
        pr.preprocess(b"hello world", GREY)


# ---- decoding and colour --------------------------------------------------------------------


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("bands", [1, 2, 3, 4])
def test_sixteen_bit_png_decoder(bands, interlace):
    rng = np.random.default_rng(bands)
    arr = rng.integers(0, 65536, (13, 11, bands)).astype(np.uint16)
    d = pr.decode(png(arr[..., 0] if bands == 1 else arr, 16, filters=(0, 1, 2, 3, 4), interlace=interlace))
    assert d.sixteen and d.alpha == (bands in (2, 4)) and d.space == ("grey16" if bands < 3 else "rgb16")
    assert np.array_equal(d.pixels, arr)


def test_sixteen_bit_trns_becomes_alpha():
    arr = np.array([[1000, 2000], [2000, 3000]], np.uint16)
    d = pr.decode(png(arr, 16, trns=struct.pack(">H", 2000)))
    assert d.alpha and d.pixels[..., 1].tolist() == [[65535, 0], [0, 65535]]


def test_flatten_truncates():
    v, a = np.meshgrid(np.arange(256), np.arange(256))
    d = pr.Decoded(np.stack([v, a], axis=2).astype(np.uint8), "b-w", True)
    assert np.array_equal(pr.flatten(d).pixels[..., 0], (v * a) // 255)
    d16 = pr.Decoded(np.array([[[65535, 32768], [1, 65534]]], np.uint16), "grey16", True)
    assert pr.flatten(d16).pixels[..., 0].tolist() == [[32768, 0]]


def test_grey_formula_keeps_grey_levels_and_weights_linear_light():
    v = np.arange(256, dtype=np.uint8)
    assert np.array_equal(pr.srgb_to_grey(np.stack([v, v, v], 1)[None])[0, :, 0], v)
    # pure green: 0.7152 of linear light, back through the sRGB curve: 220, not 0.587 * 255 = 150
    assert pr.srgb_to_grey(np.array([[[0, 255, 0], [255, 0, 0], [0, 0, 255]]], np.uint8))[0, :, 0].tolist() == [220, 127, 76]


def test_exif_orientation_parsing():
    assert [pr.exif_orientation(exif(o)) for o in range(1, 9)] == list(range(1, 9))
    assert pr.exif_orientation(b"Exif\x00\x00" + exif(6, little=False)) == 6
    assert pr.exif_orientation(exif(9)) == 1 and pr.exif_orientation(b"junk") == 1 and pr.exif_orientation(None) == 1


def test_orientation_6_rotates_clockwise_and_swaps_the_target():
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    spec = {"height": 3, "width": 2, "channels": 1, "mean": [0], "std": [1]}
    pixels, _ = pr.preprocess_pixels(png(arr, exif=exif(6)), spec)
    assert pixels[..., 0].tolist() == np.rot90(arr, -1).tolist()


def test_resize_arithmetic_helpers():
    assert pr.resolve_shrink(256, 128, 28, 28, "fill") == (256 / 28, 128 / 28)
    assert pr.resolve_shrink(256, 128, 28, 28, "contain") == (256 / 28, 256 / 28)
    assert pr.resolve_shrink(256, 128, 28, 28, "cover") == (128 / 28, 128 / 28)
    # DCT scaling by 2 from a shrink of 3, by 4 from 5, by 8 from 9: lanczos3 always has work left
    shrinks = (1.9, 2.0, 2.9, 3.0, 4.0, 4.9, 5.0, 8.0, 8.9, 9.0, 20.0)
    assert [pr.jpeg_shrink_on_load(s, s) for s in shrinks] == [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8]
    assert pr.resized_size(256, 192, 256 / 28, 192 / 28) == (28, 28)
    assert pr.resized_size(20, 17, 20 / 28, 17 / 28) == (28, 28)


def test_resize_keeps_a_flat_image_flat_and_sizes_right():
    flat = np.full((97, 131, 3), 77, np.uint8)
    for w, h in ((28, 28), (200, 50), (131, 300), (7, 9)):
        out = pr.resize(flat, 131 / w, 97 / h)
        assert out.shape == (h, w, 3) and (out == 77).all()


# ---- command line ---------------------------------------------------------------------------


def test_cli_writes_the_tensor(tmp_path):
    img = tmp_path / "img.png"
    img.write_bytes(png(np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) % 256))
    out = tmp_path / "x.npy"
    r = run(str(img), "--height", "28", "--width", "28", "--channels", "1", "--mean", "0.2860", "--std", "0.3530",
            "--fit", "cover", "--out", str(out))
    assert r.returncode == 0, r.stderr
    x = np.load(out)
    assert x.dtype == np.float32 and x.shape == (1, 28, 28)
    assert np.array_equal(x, pr.preprocess(img, {**GREY, "fit": "cover"}))


def test_cli_prints_a_summary_without_out(tmp_path):
    img = tmp_path / "img.png"
    img.write_bytes(png(np.zeros((8, 8, 3), np.uint8)))
    r = run(str(img), "--height", "8", "--width", "8", "--channels", "3", "--mean", "0", "0", "0", "--std", "1", "1", "1")
    assert r.returncode == 0 and "tensor float32 (3, 8, 8)" in r.stdout


@pytest.mark.parametrize("mean,std", [
    (["0.1", "0.5", "0.9"], ["0.2", "0.3", "0.4"]),      # argparse's form
    (["0.1,0.5,0.9"], ["0.2,0.3,0.4"]),                  # `npm run models -- add`'s form
    (["0.1, 0.5,0.9"], ["0.2", "0.3,0.4"]),              # spaces after commas, and a mix
])
def test_cli_mean_and_std_as_a_space_or_comma_list(tmp_path, mean, std):
    img = tmp_path / "img.png"
    img.write_bytes(png((np.arange(8 * 8 * 3, dtype=np.uint16).reshape(8, 8, 3) * 5 % 256).astype(np.uint8)))
    out = tmp_path / "x.npy"
    r = run(str(img), "--height", "8", "--width", "8", "--channels", "3", "--mean", *mean, "--std", *std, "--out", str(out))
    assert r.returncode == 0, r.stderr
    spec = {"height": 8, "width": 8, "channels": 3, "mean": [0.1, 0.5, 0.9], "std": [0.2, 0.3, 0.4]}
    assert np.array_equal(np.load(out), pr.preprocess(img, spec))


@pytest.mark.parametrize("args,message", [
    (["x.png", "--height", "1", "--width", "1", "--channels", "3", "--mean", "0.1,,0.2", "--std", "1"],
     "--mean 0.1,,0.2: expected numbers, separated by spaces or commas"),
    (["x.png", "--height", "1", "--width", "1", "--channels", "1", "--mean", "0", "--std", "one"],
     "--std one: expected numbers"),
    ([], "missing image, --height, --width, --channels, --mean, --std"),
    (["x.png", "--height", "28", "--width", "28", "--channels", "1", "--mean", "0.5", "0.5", "--std", "1"],
     "mean and std need one value per channel"),
    (["x.png", "--height", "28", "--width", "28", "--channels", "2", "--mean", "0.5", "--std", "1"], "invalid choice"),
    (["x.png", "--height", "28", "--width", "28", "--channels", "1", "--mean", "0.5", "--std", "1", "--fit", "zoom"],
     "invalid choice"),
])
def test_cli_argument_errors(args, message):
    r = run(*args)
    assert r.returncode == 2 and message in r.stderr


def test_cli_image_errors(tmp_path):
    r = run(str(tmp_path / "missing.png"), "--height", "1", "--width", "1", "--channels", "1", "--mean", "0", "--std", "1")
    assert r.returncode == 2 and "missing.png" in r.stderr
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 32)
    r = run(str(gif), "--height", "1", "--width", "1", "--channels", "1", "--mean", "0", "--std", "1")
    assert r.returncode == 1 and "image is GIF" in r.stderr


def test_batch_mode(tmp_path):
    img = tmp_path / "img.png"
    img.write_bytes(png(np.full((4, 4), 255, np.uint8)))
    jobs = [{"image": str(img), "spec": {**GREY, "height": 4, "width": 4}, "out": str(tmp_path / "a.f32")},
            {"image": str(img), "spec": {**GREY, "fit": "inside", "width": 2}, "out": str(tmp_path / "b.f32")}]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    r = run("--batch", str(tmp_path / "jobs.json"))
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    assert results[0]["ok"] and not results[1]["ok"] and "InvalidImageError" in results[1]["error"]
    x = np.fromfile(tmp_path / "a.f32", "<f4")
    assert x.shape == (16,) and np.allclose(x, (1 - 0.286) / 0.353)


def test_cmyk_without_a_profile_is_refused():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(buf, "JPEG")
    with pytest.raises(pr.ReferenceUnavailableError, match="CMYK JPEG without an embedded ICC profile"):
        pr.preprocess(buf.getvalue(), {**GREY, "height": 8, "width": 8})


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_webp_rescaler_in_numpy_equals_libwebp_on_lossless_images(mode):
    """The fallback (numpy) and libwebp's own scaled decode agree where the fallback claims to."""
    from PIL import Image

    if pr._libwebp() is None:
        pytest.skip("libwebp cannot be loaded through ctypes here")
    rng = np.random.default_rng(3)
    px = rng.integers(0, 256, (61, 83, len(mode)), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px, mode).save(buf, "WEBP", lossless=True)
    full = pr.decode(buf.getvalue()).pixels
    for w, h in ((40, 30), (83, 20), (7, 61), (1, 1)):
        scaled, exact = pr.webp_scaled(buf.getvalue(), full, w, h, True)
        assert exact and np.array_equal(scaled, pr.webp_scaled_from_pixels(full, w, h))
