"""Reference implementation of the service's image preprocessing (docs/preprocessing.md).

isomax-serve turns an uploaded image into a Float32 NCHW tensor with sharp (libvips):

    sharp(bytes, {failOn: 'warning'}).autoOrient().flatten({background: '#000000'})
      .greyscale() | .toColourspace('srgb')          # grey model | RGB model
      .resize(width, height, {fit, background: '#000000'})   # lanczos3
      .raw()  ->  (pixel / 255 - mean[c]) / std[c], CHW

This module redoes every step with numpy and PIL (only for the compressed-data decoders), so
that a user can compute the tensor the service computes, without Node:

    /usr/bin/python3 training/preprocess_reference.py IMAGE --height 28 --width 28 --channels 1 \\
        --mean 0.2860 --std 0.3530 [--fit fill] [--colour grey] [--out tensor.npy]

    from preprocess_reference import preprocess
    x = preprocess("shoe.png", {"height": 28, "width": 28, "channels": 1,
                                "mean": [0.286], "std": [0.353]})   # float32, (C, H, W)

What is bit-identical to the service and what is not is in docs/preprocessing.md, and
test/preprocess/reference-parity.test.ts checks it: identical for PNG, JPEG and WebP, at the
model's size or resized (libvips' box shrink + lanczos3 reduce and bicubic enlarge are redone
in the same integer arithmetic, shrink-on-load included), with alpha, palettes, 16-bit samples,
EXIF orientation and RGB/grey ICC profiles. Not reproduced: CMYK JPEGs (approximate with an
embedded profile, refused without one).

Needs numpy and PIL (Debian: python3-numpy python3-pil); no other package. libwebp and lcms2
(which python3-pil installs) are also called directly through ctypes, where PIL has no API.
"""
from __future__ import annotations

import argparse
import base64
import ctypes
import ctypes.util
import io
import json
import math
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

try:
    from PIL import Image
except ImportError:  # pragma: no cover - reported by _need_pil()
    Image = None  # type: ignore[assignment]

__all__ = ["Spec", "preprocess", "preprocess_pixels", "to_tensor", "UnsupportedImageError", "InvalidImageError",
           "ReferenceUnavailableError"]

FITS = ("fill", "contain", "cover", "inside", "outside")
F32 = np.float32


class UnsupportedImageError(ValueError):
    """A format the service refuses (415): anything but PNG, JPEG and WebP."""


class InvalidImageError(ValueError):
    """Bytes the service cannot turn into a tensor for this spec (400)."""


class ReferenceUnavailableError(ValueError):
    """An image the service accepts but this reference cannot reproduce (see the message)."""


# --------------------------------------------------------------------------------------------
# The model input spec (models/manifest.json, "input").


@dataclass(frozen=True)
class Spec:
    height: int
    width: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fit: str = "fill"
    colour: str = ""

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError("channels must be 1 or 3")
        if not self.colour:
            object.__setattr__(self, "colour", "grey" if self.channels == 1 else "rgb")
        if self.colour not in ("grey", "rgb"):
            raise ValueError("colour must be 'grey' or 'rgb'")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(FITS)}")
        if not (1 <= self.height <= 4096 and 1 <= self.width <= 4096):
            raise ValueError("height and width must be 1..4096")
        mean, std = tuple(float(m) for m in self.mean), tuple(float(s) for s in self.std)
        if len(mean) != self.channels or len(std) != self.channels:
            raise ValueError("mean and std need one value per channel")
        if any(not s > 0 or not math.isfinite(s) for s in std) or not all(math.isfinite(m) for m in mean):
            raise ValueError("std must be > 0 and mean finite")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def of(cls, spec: "Spec | Mapping[str, Any]") -> "Spec":
        """A Spec from a Spec, or from a manifest "input" object (extra keys ignored)."""
        if isinstance(spec, Spec):
            return spec
        return cls(height=int(spec["height"]), width=int(spec["width"]), channels=int(spec["channels"]),
                   mean=tuple(spec["mean"]), std=tuple(spec["std"]), fit=spec.get("fit", "fill"),
                   colour=spec.get("colour", ""))


# --------------------------------------------------------------------------------------------
# Sniffing (src/preprocess/sniff.ts): by magic bytes, never by name or media type.


def sniff(data: bytes) -> str:
    """'png', 'jpeg' or 'webp'; raises as src/preprocess/sniff.ts decides (same order, same names)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    refused = None
    if data[:5] == b"%PDF-":
        refused = "PDF"
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        refused = "GIF"
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        refused = "TIFF"
    elif data[:2] == b"BM":
        refused = "BMP"
    elif data[4:8] == b"ftyp":
        refused = "AVIF" if data[8:11] == b"avi" else "HEIF"
    elif data[:6] == b"\x00\x00\x00\x0cjP":
        refused = "JPEG 2000"
    elif data[:2] == b"\xff\x0a" or data[:8] == b"\x00\x00\x00\x0cJXL ":
        refused = "JPEG XL"
    else:
        head = data[:512].decode("latin-1").lstrip("\ufeff").lstrip().lower()
        if head.startswith("<svg") or (head.startswith("<?xml") and "<svg" in head):
            refused = "SVG"
    if refused:
        raise UnsupportedImageError(f"image is {refused}, which this service does not decode; send PNG, JPEG or WebP")
    raise InvalidImageError("image is not a PNG, JPEG or WebP image")


# --------------------------------------------------------------------------------------------
# Decoded image: what libvips holds after the loader.


@dataclass
class Decoded:
    pixels: np.ndarray          # (H, W, bands), uint8 or uint16 (16-bit PNG)
    space: str                  # 'b-w' | 'srgb' | 'grey16' | 'rgb16' | 'cmyk'
    alpha: bool                 # last band is alpha
    orientation: int = 1        # EXIF orientation 1..8
    icc: bytes | None = None    # embedded ICC profile
    exact: bool = True          # False where this module only approximates sharp
    notes: list[str] = field(default_factory=list)
    lossless: bool = True       # False for a lossy WebP (its shrink-on-load needs libwebp)

    @property
    def sixteen(self) -> bool:
        return self.pixels.dtype == np.uint16


def _need_pil() -> None:
    if Image is None:
        raise RuntimeError("PIL is needed to decode JPEG and WebP (Debian: apt-get install python3-pil)")


def exif_orientation(blob: bytes | None) -> int:
    """Orientation (tag 0x0112) from IFD0 of an EXIF blob, as libvips reads it: 1 when absent or
    outside 1..8. The blob may start with the "Exif\\0\\0" header or directly with the TIFF one."""
    if not blob:
        return 1
    if blob.startswith(b"Exif\x00\x00"):
        blob = blob[6:]
    if len(blob) < 8 or blob[:2] not in (b"II", b"MM"):
        return 1
    e = "<" if blob[:2] == b"II" else ">"
    try:
        ifd = struct.unpack_from(e + "I", blob, 4)[0]
        count = struct.unpack_from(e + "H", blob, ifd)[0]
        for k in range(count):
            tag, typ, _ = struct.unpack_from(e + "HHI", blob, ifd + 2 + 12 * k)
            if tag != 0x0112:
                continue
            if typ == 3:
                value = struct.unpack_from(e + "H", blob, ifd + 2 + 12 * k + 8)[0]
            elif typ == 4:
                value = struct.unpack_from(e + "I", blob, ifd + 2 + 12 * k + 8)[0]
            else:
                return 1
            return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


# ---- PNG ---------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        chunks.append((kind, data[pos + 8: pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _unfilter(raw: bytes, height: int, row_bytes: int, bpp: int) -> np.ndarray:
    """PNG scanline unfiltering, (height, row_bytes) uint8. Only for 16-bit PNGs (PIL reduces those
    to 8 bits); None/Sub/Up rows are vectorised, Average/Paeth rows are a Python loop."""
    out = np.zeros((height, row_bytes), np.uint8)
    prior = np.zeros(row_bytes, np.uint8)
    stride = row_bytes + 1
    if len(raw) < stride * height:
        raise InvalidImageError("image could not be decoded: PNG data is truncated")
    for y in range(height):
        ftype = raw[y * stride]
        line = np.frombuffer(raw, np.uint8, row_bytes, y * stride + 1)
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:
            cur = (np.cumsum(line.reshape(-1, bpp).astype(np.int64), axis=0) & 255).astype(np.uint8).ravel()
        elif ftype == 2:
            cur = line + prior
        elif ftype in (3, 4):
            cur_l = bytearray(line.tobytes())
            up = prior.tobytes()
            for i in range(row_bytes):
                a = cur_l[i - bpp] if i >= bpp else 0
                b = up[i]
                if ftype == 3:
                    cur_l[i] = (cur_l[i] + ((a + b) >> 1)) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                    cur_l[i] = (cur_l[i] + pred) & 255
            cur = np.frombuffer(bytes(cur_l), np.uint8)
        else:
            raise InvalidImageError("image could not be decoded: bad PNG filter type")
        out[y] = cur
        prior = out[y]
    return out


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _decode_png16(width: int, height: int, colour_type: int, interlace: int, idat: bytes) -> np.ndarray:
    bands = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour_type)
    if bands is None:
        raise InvalidImageError("image could not be decoded: bad PNG colour type for 16 bits")
    raw = zlib.decompress(idat)
    bpp = 2 * bands
    if not interlace:
        rows = _unfilter(raw, height, width * bpp, bpp)
        return rows.view(">u2").reshape(height, width, bands).astype(np.uint16)
    out = np.zeros((height, width, bands), np.uint16)
    pos = 0
    for x0, y0, dx, dy in _ADAM7:
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w <= 0 or h <= 0:
            continue
        n = h * (w * bpp + 1)
        rows = _unfilter(raw[pos: pos + n], h, w * bpp, bpp)
        pos += n
        out[y0::dy, x0::dx] = rows.view(">u2").reshape(h, w, bands)
    return out


def _decode_png(data: bytes) -> Decoded:
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR":
        raise InvalidImageError("image could not be decoded: no PNG header")
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1][:13])
    info = {kind: body for kind, body in chunks if kind in (b"tRNS", b"PLTE", b"eXIf", b"iCCP")}
    icc = None
    if b"iCCP" in info:
        body = info[b"iCCP"]
        icc = zlib.decompress(body[body.index(b"\x00") + 2:])
    orientation = exif_orientation(info.get(b"eXIf"))
    trns = info.get(b"tRNS")
    if depth == 16:
        # libpng keeps 16 bits (libvips: RGB16 / GREY16); tRNS becomes a 16-bit alpha band.
        px = _decode_png16(width, height, colour_type, interlace, b"".join(b for k, b in chunks if k == b"IDAT"))
        grey = colour_type in (0, 4)
        if trns is not None and colour_type in (0, 2):
            key = np.frombuffer(trns, ">u2")[: 1 if grey else 3].astype(np.uint16)
            a = np.where((px == key).all(axis=2), 0, 65535).astype(np.uint16)
            px = np.concatenate([px, a[..., None]], axis=2)
        return Decoded(px, "grey16" if grey else "rgb16", px.shape[2] in (2, 4), orientation, icc)
    _need_pil()
    im = Image.open(io.BytesIO(data))
    im.load()
    arr = np.asarray(im)
    if colour_type == 3:
        # Palette: expanded to RGB, tRNS to an alpha band (libpng png_set_palette_to_rgb / tRNS_to_alpha).
        pal = np.frombuffer(info[b"PLTE"], np.uint8).reshape(-1, 3)
        pal = np.concatenate([pal, np.zeros((256 - len(pal), 3), np.uint8)]) if len(pal) < 256 else pal[:256]
        px = pal[arr]
        if trns is not None:
            alpha = np.full(256, 255, np.uint8)
            t = np.frombuffer(trns, np.uint8)[:256]
            alpha[: len(t)] = t
            px = np.concatenate([px, alpha[arr][..., None]], axis=2)
        return Decoded(np.ascontiguousarray(px), "srgb", trns is not None, orientation, icc)
    if im.mode == "1":
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = arr[..., None]
    arr = arr.astype(np.uint8)
    grey = colour_type in (0, 4)
    if trns is not None and colour_type in (0, 2):
        scale = {1: 255, 2: 85, 4: 17, 8: 1}[depth]
        key = np.frombuffer(trns, ">u2")[: 1 if grey else 3].astype(np.int64) * scale
        a = np.where((arr == key).all(axis=2), 0, 255).astype(np.uint8)
        arr = np.concatenate([arr, a[..., None]], axis=2)
    return Decoded(np.ascontiguousarray(arr), "b-w" if grey else "srgb", arr.shape[2] in (2, 4), orientation, icc)


# ---- JPEG and WebP -------------------------------------------------------------------------


def _decode_jpeg(data: bytes, shrink: int = 1) -> Decoded:
    """libjpeg-turbo through PIL. PIL's decode equals sharp's (both libjpeg-turbo, islow IDCT,
    fancy upsampling); shrink-on-load (DCT scaling by 2, 4, 8) is PIL's draft()."""
    _need_pil()
    im = Image.open(io.BytesIO(data))
    full_w, full_h = im.size
    if shrink > 1:
        im.draft(im.mode, (full_w // shrink, full_h // shrink))
        if im.size != (-(-full_w // shrink), -(-full_h // shrink)):
            raise RuntimeError(f"PIL's JPEG draft gave {im.size}, not a 1/{shrink} scale of {(full_w, full_h)}")
    im.load()
    # libvips rounds the scaled size down (drops the last partial column and row, PIL keeps them).
    w, h = full_w // shrink, full_h // shrink
    arr = np.asarray(im)[:h, :w]
    icc = im.info.get("icc_profile") or None
    orientation = exif_orientation(im.info.get("exif"))
    if im.mode == "L":
        return Decoded(np.ascontiguousarray(arr[..., None]), "b-w", False, orientation, icc)
    if im.mode == "CMYK":
        # libvips returns CMYK inverted as Adobe writes it; PIL undoes the Adobe inversion too.
        return Decoded(np.ascontiguousarray(arr), "cmyk", False, orientation, icc)
    if im.mode != "RGB":
        arr = np.asarray(im.convert("RGB"))[:h, :w]
    return Decoded(np.ascontiguousarray(arr), "srgb", False, orientation, icc)


def _decode_webp(data: bytes) -> Decoded:
    _need_pil()
    im = Image.open(io.BytesIO(data))
    im.load()
    if im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    arr = np.ascontiguousarray(np.asarray(im))
    d = Decoded(arr, "srgb", im.mode == "RGBA", exif_orientation(im.info.get("exif")), im.info.get("icc_profile") or None)
    d.lossless = _webp_chunk(data, b"VP8L")
    return d


def _webp_chunk(data: bytes, fourcc: bytes) -> bool:
    """Whether the RIFF container holds a chunk `fourcc` (VP8L: lossless, VP8: lossy)."""
    pos = 12
    while pos + 8 <= len(data):
        if data[pos: pos + 4] == fourcc:
            return True
        pos += 8 + struct.unpack_from("<I", data, pos + 4)[0] + (data[pos + 4] & 1)
    return False


# --------------------------------------------------------------------------------------------
# Colour: ICC import (approximate), flatten, greyscale (exact), 16 -> 8 bits (exact).

# libvips' built-in profiles (libvips/colour/profiles), the destinations of sharp's import.
_SRGB_ICM = base64.b64decode(
    "AAAB4GxjbXMEIAAAbW50clJHQiBYWVogB+IAAwAUAAkADgAdYWNzcE1TRlQAAAAAc2F3c2N0cmwAAAAAAAAAAAAAAAAAAPbWAAEA"
    "AAAA0y1oYW5keem/Vlo+AbaDI4VVRvdPqgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAKZGVzYwAAAPwAAAAkY3BydAAA"
    "ASAAAAAid3RwdAAAAUQAAAAUY2hhZAAAAVgAAAAsclhZWgAAAYQAAAAUZ1hZWgAAAZgAAAAUYlhZWgAAAawAAAAUclRSQwAAAcAA"
    "AAAgZ1RSQwAAAcAAAAAgYlRSQwAAAcAAAAAgbWx1YwAAAAAAAAABAAAADGVuVVMAAAAIAAAAHABzAFIARwBCbWx1YwAAAAAAAAAB"
    "AAAADGVuVVMAAAAGAAAAHABDAEMAMAAAWFlaIAAAAAAAAPbWAAEAAAAA0y1zZjMyAAAAAAABDD8AAAXd///zJgAAB5AAAP2S///7"
    "of///aIAAAPcAADAcVhZWiAAAAAAAABvoAAAOPIAAAOPWFlaIAAAAAAAAGKWAAC3iQAAGNpYWVogAAAAAAAAJKAAAA+FAAC2xHBh"
    "cmEAAAAAAAMAAAACZmkAAPKnAAANWQAAE9AAAApb")
_P3_ICM = base64.b64decode(
    "AAAB4GxjbXMEIAAAbW50clJHQiBYWVogB+IAAwAUAAkADgAdYWNzcE1TRlQAAAAAc2F3c2N0cmwAAAAAAAAAAAAAAAAAAPbWAAEA"
    "AAAA0y1oYW5kguKocouKP/clPrmS7iTWrgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAKZGVzYwAAAPwAAAAkY3BydAAA"
    "ASAAAAAid3RwdAAAAUQAAAAUY2hhZAAAAVgAAAAsclhZWgAAAYQAAAAUZ1hZWgAAAZgAAAAUYlhZWgAAAawAAAAUclRSQwAAAcAA"
    "AAAgZ1RSQwAAAcAAAAAgYlRSQwAAAcAAAAAgbWx1YwAAAAAAAAABAAAADGVuVVMAAAAIAAAAHABzAFAAMwBDbWx1YwAAAAAAAAAB"
    "AAAADGVuVVMAAAAGAAAAHABDAEMAMAAAWFlaIAAAAAAAAPbWAAEAAAAA0y1zZjMyAAAAAAABDEIAAAXe///zJQAAB5MAAP2Q///7"
    "of///k4AAAOaAADAFFhZWiAAAAAAAACD3wAAPb8AAAAAWFlaIAAAAAAAAEq/AACxNwAACrVYWVogAAAAAAAAKDgAABEKAADIeHBh"
    "cmEAAAAAAAMAAAACZmkAAPKnAAANWQAAE9AAAApb")


_LCMS: list[Any] = []
# lcms2.h pixel types: COLORSPACE_SH(PT_GRAY 3 | PT_RGB 4 | PT_CMYK 6) | CHANNELS_SH(n) | BYTES_SH(b)
_LCMS_TYPE = {(1, 1): 0x30009, (1, 2): 0x3000A, (3, 1): 0x40019, (3, 2): 0x4001A, (4, 1): 0x60021, (4, 2): 0x60022}


def _lcms() -> Any:
    """The C library lcms2 (Debian: liblcms2-2, a dependency of python3-pil), or None."""
    if not _LCMS:
        lib = None
        names = [ctypes.util.find_library("lcms2"), "liblcms2.so.2", "liblcms2.2.dylib"]
        if Image is not None:
            names += [str(p) for p in Path(Image.__file__).parent.parent.glob("*[Pp]illow*.libs/liblcms2*")]
        for name in filter(None, names):
            try:
                lib = ctypes.CDLL(name)
                lib.cmsOpenProfileFromMem.restype = ctypes.c_void_p
                lib.cmsOpenProfileFromMem.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
                lib.cmsCreateTransform.restype = ctypes.c_void_p
                lib.cmsCreateTransform.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32,
                                                   ctypes.c_uint32, ctypes.c_uint32]
                lib.cmsDoTransform.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
                lib.cmsDeleteTransform.argtypes = [ctypes.c_void_p]
                lib.cmsCloseProfile.argtypes = [ctypes.c_void_p]
                lib.cmsGetColorSpace.argtypes = [ctypes.c_void_p]
                lib.cmsGetColorSpace.restype = ctypes.c_uint32
                break
            except (OSError, AttributeError):
                lib = None
        _LCMS.append(lib)
    return _LCMS[0]


def _lcms_transform(px: np.ndarray, icc: bytes, dest: bytes) -> np.ndarray:
    """vips_icc_transform as sharp calls it: one lcms transform from the embedded profile to
    libvips' sRGB / P3 profile, perceptual intent, cmsFLAGS_NOCACHE, 8 or 16 bits in and out."""
    lib = _lcms()
    depth = 2 if px.dtype == np.uint16 else 1
    sig = {0x47524159: 1, 0x52474220: 3, 0x434D594B: 4}   # 'GRAY', 'RGB ', 'CMYK'
    src = lib.cmsOpenProfileFromMem(icc, len(icc))
    dst = lib.cmsOpenProfileFromMem(dest, len(dest))
    try:
        if not src or not dst:
            raise ValueError("lcms cannot read the profile")
        if sig.get(lib.cmsGetColorSpace(src)) != px.shape[2]:
            raise ValueError("the profile does not fit the image's bands")
        xform = lib.cmsCreateTransform(src, _LCMS_TYPE[(px.shape[2], depth)], dst, _LCMS_TYPE[(3, depth)], 0, 0x0040)
        if not xform:
            raise ValueError("lcms cannot make the transform")
        try:
            inp = np.ascontiguousarray(px)
            out = np.empty(px.shape[:2] + (3,), px.dtype)
            lib.cmsDoTransform(xform, inp.ctypes.data, out.ctypes.data, px.shape[0] * px.shape[1])
        finally:
            lib.cmsDeleteTransform(xform)
    finally:
        for h in (src, dst):
            if h:
                lib.cmsCloseProfile(h)
    return out


def _icc_import(d: Decoded) -> Decoded:
    """sharp converts an image with an embedded ICC profile to sRGB (8-bit) or Display P3 (16-bit
    RGB!) with lcms, perceptual intent, skipping 16-bit grey; a CMYK image without a profile
    through libvips' CMYK profile, which is not available here. Done with the same lcms call
    (ctypes), so identical as long as both lcms versions compute alike; PIL's ImageCms (8-bit
    only) when the library cannot be loaded."""
    if d.space == "grey16" or (d.icc is None and d.space != "cmyk"):
        return d
    if d.icc is None:
        raise ReferenceUnavailableError(
            "CMYK JPEG without an embedded ICC profile: sharp converts it with libvips' built-in CMYK "
            "profile, which this reference does not have (PIL's formula is off by up to 124 levels); "
            "convert the image to sRGB first")
    px, alpha = (d.pixels[..., :-1], d.pixels[..., -1:]) if d.alpha else (d.pixels, None)
    dest = _P3_ICM if d.space == "rgb16" else _SRGB_ICM
    notes = list(d.notes)
    try:
        if _lcms() is not None:
            rgb = _lcms_transform(px, d.icc, dest)
        else:
            rgb = _pil_icc(px, d.icc, dest)
            notes.append("ICC profile converted with PIL's ImageCms (no liblcms2 found): approximate")
    except Exception as err:  # sharp warns "Invalid embedded profile" and carries on without it
        if d.space == "cmyk":
            raise ReferenceUnavailableError(f"CMYK JPEG whose ICC profile lcms refuses: {err}") from err
        notes.append(f"ICC profile not applied (sharp: 'Invalid embedded profile'): {err}")
        return Decoded(d.pixels, d.space, d.alpha, d.orientation, None, d.exact, notes)
    exact = d.exact and _lcms() is not None and d.space != "cmyk"
    if d.space == "cmyk":
        notes.append("CMYK profile: this lcms and sharp's differ on CLUT profiles (up to 24 levels measured)")
    pixels = rgb if alpha is None else np.concatenate([rgb, alpha], axis=2)
    space = "rgb16" if d.sixteen else "srgb"
    return Decoded(np.ascontiguousarray(pixels), space, d.alpha, d.orientation, None, exact, notes)


def _pil_icc(px: np.ndarray, icc: bytes, dest: bytes) -> np.ndarray:
    """The fallback: PIL's ImageCms, 8 bits only (a 16-bit image goes through its top byte)."""
    from PIL import ImageCms

    sixteen = px.dtype == np.uint16
    px8 = (px >> 8).astype(np.uint8) if sixteen else px
    mode = {1: "L", 3: "RGB", 4: "CMYK"}[px.shape[2]]
    im = Image.fromarray(px8[..., 0] if mode == "L" else px8, mode)
    out = np.asarray(ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                               ImageCms.ImageCmsProfile(io.BytesIO(dest)), renderingIntent=0,
                                               outputMode="RGB"))
    return out.astype(np.uint16) * 257 if sixteen else out


def flatten(d: Decoded) -> Decoded:
    """Alpha onto black, libvips vips_flatten: floor(v * alpha / max_alpha) in double arithmetic,
    max_alpha 255 (8-bit) or 65535 (16-bit). Truncates: 255 * 128 / 255 = 128, 1 * 254 / 255 = 0."""
    if not d.alpha:
        return d
    px = d.pixels
    alpha = px[..., -1:].astype(np.float64)
    flat = np.floor(px[..., :-1].astype(np.float64) * alpha / (65535.0 if d.sixteen else 255.0))
    return Decoded(flat.astype(px.dtype), d.space, False, d.orientation, d.icc, d.exact, d.notes)


_TABLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _libm_powf() -> Any:
    """The C library's powf, which libvips calls. numpy's float32 np.power does not (on CPUs with
    AVX-512, numpy 1.24 dispatches to its own SIMD routine, which differs from glibc's powf in
    13,384 of 65,536 table entries), so the tables call it through ctypes: the same function the
    service's libvips calls, whatever the CPU."""
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    lib.powf.restype = ctypes.c_float
    lib.powf.argtypes = [ctypes.c_float, ctypes.c_float]
    return lib.powf


def _powf(base: np.ndarray, exponent: np.float32) -> np.ndarray:
    powf = _libm_powf()
    e = float(exponent)
    return np.array([powf(float(b), e) for b in base.astype(F32)], dtype=F32)


def srgb_tables(rng: int) -> tuple[np.ndarray, np.ndarray]:
    """libvips' calcul_tables (colour/LabQ2sRGB.c), in float32 as C computes them: Y2v (linear ->
    sRGB code, rintf, one extra entry) and v2Y (sRGB code -> linear), with libm's powf (_powf)."""
    if rng not in _TABLES:
        i = np.arange(rng)
        f = (i.astype(F32) / F32(rng - 1)).astype(F32)
        f64 = f.astype(np.float64)            # C compares the float with a double constant
        enc = np.where(f64 <= 0.0031308, F32(12.92) * f,
                       F32(1.055) * _powf(f, F32(F32(1.0) / F32(2.4))) - F32(0.055)).astype(F32)
        y2v = np.rint((F32(rng - 1) * enc).astype(F32)).astype(np.int64)
        lin = np.where(f64 <= 0.04045, f / F32(12.92),
                       _powf(((f + F32(0.055)) / F32(1.055)).astype(F32), F32(2.4))).astype(F32)
        _TABLES[rng] = (np.append(y2v, y2v[-1]), lin)
    return _TABLES[rng]


def srgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """sharp's greyscale() on sRGB (libvips sRGB -> scRGB -> B_W): each code to linear light by the
    sRGB curve (v2Y table), Y = 0.2126 R + 0.7152 G + 0.0722 B in float32, back to an sRGB code by
    linear interpolation in a 256-entry table (Y2v), rintf. 16-bit input uses the 65536-entry
    linear table and the same 8-bit output table. Exact over all 2^24 8-bit colours."""
    _, v2y = srgb_tables(65536 if rgb.dtype == np.uint16 else 256)
    y2v, _ = srgb_tables(256)
    r, g, b = (v2y[rgb[..., k]] for k in range(3))
    y = (F32(0.2126) * r + F32(0.7152) * g).astype(F32)
    y = (y + F32(0.0722) * b).astype(F32)
    yf = np.clip((y * F32(255)).astype(F32), F32(0), F32(255))
    yi = yf.astype(np.int64)
    lo = y2v[yi]
    v = (lo.astype(F32) + (y2v[yi + 1] - lo).astype(F32) * (yf - yi.astype(F32)).astype(F32)).astype(F32)
    return np.rint(v).astype(np.uint8)[..., None]


def greyscale(d: Decoded) -> Decoded:
    if d.space == "b-w":
        return d
    rgb = np.repeat(d.pixels, 3, axis=2) if d.space == "grey16" else d.pixels
    return Decoded(srgb_to_grey(rgb), "b-w", False, d.orientation, d.icc, d.exact, d.notes)


# --------------------------------------------------------------------------------------------
# Resize: libvips vips_resize (8.18) with kernel lanczos3 and gap 2.0, as sharp calls it.
#
# Downsizing an axis of length L to `out` pixels: vips_reduce{v,h}. When n = floor(L / out / 2)
# is 2 or more, first a box shrink by n (vips_shrink{v,h}, "ceil": the last partial block is
# averaged with copies of the edge pixel), then a lanczos3 reduce by the residual s' = s / n:
# 2 * rint(3 s') + 1 taps, sampled at X = (x + 0.5) s' - 0.5 - offset, masks quantised to 1/64
# pixel and coefficients to 1/4096 (12-bit fixed point, rounded sum, clipped). Vertical first.
# Enlarging an axis: vips_affine with the bicubic (Catmull-Rom) interpolator, 12-bit fixed
# point too. Every detail below mirrors libvips/resample/{resize,reduceh,reducev,shrinkh,
# shrinkv,affine,bicubic}.c, including which float64 operations happen in which order.

TRANSFORM_SCALE = 64          # VIPS_TRANSFORM_SCALE: mask positions per pixel
INTERPOLATE_SHIFT = 12        # VIPS_INTERPOLATE_SHIFT: fixed-point coefficient bits
GAP = 2.0                     # vips_resize's default reducing gap
LINECACHE = 10                # reducev's sequential line cache: tile height of its requests


def _round_uint(x: float) -> int:
    return int(x + 0.5)       # VIPS_ROUND_UINT


def _rint(x: float) -> int:
    return int(round(x))      # C rint: round half to even, like Python's round on floats


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos3(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3 <= x <= 3 else 0.0


def _reduce_masks(n: int, shrink: float) -> np.ndarray:
    """(65, n) int16-valued masks: calculate_coefficients() then (short)(c * 4096)."""
    masks = np.zeros((TRANSFORM_SCALE + 1, n), np.int64)
    for t in range(TRANSFORM_SCALE + 1):
        x = float(F32(t) / F32(TRANSFORM_SCALE))
        half = x + n / 2.0 - 1
        c, total = [], 0.0
        for i in range(n):
            v = _lanczos3((i - half) / shrink)
            c.append(v)
            total += v
        masks[t] = [int((v / total) * (1 << INTERPOLATE_SHIFT)) for v in c]
    return masks


def _box_shrink(img: np.ndarray, axis: int, n: int) -> np.ndarray:
    """vips_shrinkv / vips_shrinkh with ceil: edge-extend to a multiple of n, average blocks.
    uchar: ((sum + n/2) * floor(2^32 / (256 n))) >> 24; ushort: (sum + n/2) / n."""
    size = img.shape[axis]
    out = -(-size // n)
    pad = out * n - size
    if pad:
        edge = np.take(img, [size - 1] * pad, axis=axis)
        img = np.concatenate([img, edge], axis=axis)
    shape = list(img.shape)
    shape[axis: axis + 1] = [out, n]
    total = img.reshape(shape).sum(axis=axis + 1, dtype=np.int64)
    if img.dtype == np.uint8:
        mult = (1 << 32) // (256 * n)
        return (((total + n // 2) * mult) >> 24).astype(np.uint8)
    return ((total + n // 2) // n).astype(img.dtype)


def _positions(step: float, offset: float, start: int, stop: int, tile: int | None) -> list[float]:
    """Sample positions of output pixels [start, stop) as libvips computes them: the first pixel
    of a region at (first + 0.5) * step + shift (reduce) and each next one by adding the step, a
    region starting at `start` or, with `tile`, at each multiple of it (reducev's line cache).
    The float64 rounding of that sum decides the 1/64-pixel mask, so the order matters."""
    out, x = [], 0.0
    k = start if tile is None else start - start % tile
    while k < stop:
        if k == start or (tile is not None and k % tile == 0):
            x = (k + 0.5) * step - 0.5 - offset
        if k >= start:
            out.append(x)
        x += step
        k += 1
    return out


def _reduce_axis(img: np.ndarray, axis: int, shrink: float, start: int = 0, stop: int | None = None,
                 tile: int | None = None) -> np.ndarray:
    """vips_reduceh (axis 1) / vips_reducev (axis 0) by `shrink` >= 1 with gap 2. Outputs
    [start, stop) of the axis: libvips computes a pixel's position by adding the step to the
    position of the first pixel of the region it was asked for (a crop's left edge, or the top of
    reducev's 10-line cache tile), and the float64 sum decides the 1/64-pixel mask."""
    size = img.shape[axis]
    out_size = _round_uint(size / shrink)
    extra = out_size * shrink - size
    residual = shrink
    int_shrink = max(1, math.floor(size / out_size / GAP))
    if int_shrink > 1:
        img = _box_shrink(img, axis, int_shrink)
        residual /= int_shrink
        extra /= int_shrink
    stop = out_size if stop is None else stop
    if residual == 1.0:
        return np.take(img, range(start, stop), axis=axis)
    n = 2 * _rint(3 * residual) + 1
    offset = (1 + extra) / 2.0 - 1
    masks = _reduce_masks(n, residual)
    before = math.ceil(n / 2.0) - 1
    first, tx = [], []
    for k, x in zip(range(start, stop), _positions(residual, offset, start, stop, tile)):
        first.append(int(x))
        tx.append((int(x * TRANSFORM_SCALE * 2) & (TRANSFORM_SCALE * 2 - 1)) + 1 >> 1)
    first_a = np.array(first)
    coeffs = masks[np.array(tx)]
    limit = img.shape[axis] - 1
    acc = None
    for i in range(n):
        idx = np.clip(first_a + i - before, 0, limit)
        term = np.take(img, idx, axis=axis).astype(np.int64)
        c = coeffs[:, i].reshape([-1 if a == axis else 1 for a in range(img.ndim)])
        acc = term * c if acc is None else acc + term * c
    maxval = 255 if img.dtype == np.uint8 else 65535
    return np.clip((acc + (1 << (INTERPOLATE_SHIFT - 1))) >> INTERPOLATE_SHIFT, 0, maxval).astype(img.dtype)



def _catmull_masks() -> tuple[np.ndarray, np.ndarray]:
    """vips_bicubic_matrixf / matrixi: Catmull-Rom at 65 positions; int = (int)(f * 4096)."""
    f = np.zeros((TRANSFORM_SCALE + 1, 4))
    for t in range(TRANSFORM_SCALE + 1):
        x = float(F32(t) / F32(TRANSFORM_SCALE))
        cr1 = 1. - x
        cr2 = -.5 * x
        cr3 = cr1 * cr2
        cone = cr1 * cr3
        cfou = x * cr3
        cr4 = cfou - cone
        ctwo = cr1 - cone + cr4
        cthr = x - cfou - cr4
        f[t] = (cone, ctwo, cthr, cfou)
    return f, np.trunc(f * (1 << INTERPOLATE_SHIFT)).astype(np.int64)


def _affine_taps(pos: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """First stencil pixel (padded coordinates) and mask index for each interpolation position."""
    first = np.array([math.floor(p) - 1 for p in pos])
    tx = np.array([((int(p * TRANSFORM_SCALE * 2) & (TRANSFORM_SCALE * 2 - 1)) + 1) >> 1 for p in pos])
    return first, tx


def _enlarge(img: np.ndarray, hscale: float, vscale: float, xs: tuple[int, int]) -> np.ndarray:
    """vips_affine(hscale, 0, 0, vscale) with the bicubic interpolator as vips_resize calls it
    (idx = idy = 0.5, extend copy): input position x * (1/scale) - 0.5, the input padded by 2
    pixels left/top and 3 right/bottom. An axis with scale 1.0 is still interpolated, at half a
    pixel: enlarging one axis shifts and softens the other by half an input pixel. Output
    columns xs = [start, stop): positions along a row are accumulated from the region's left."""
    h, w = img.shape[:2]
    det = hscale * vscale - 0.0 * 0.0
    tmp = 1.0 / det
    ia, id_ = tmp * vscale, tmp * hscale
    out_w, out_h = int(w * hscale + 0.5), int(h * vscale + 0.5)   # VIPS_ROUND_INT of the corners
    x = ((ia * xs[0] + (-tmp * 0.0) * 0.0) + 0.5) + 1
    xpos = []
    for _ in range(*xs):
        xpos.append(x)
        x += ia
    ypos = [((((-tmp * 0.0) * xs[0]) + id_ * y) + 0.5) + 1 for y in range(out_h)]
    if any(math.floor(p) < 1 or math.floor(p) > w + 1 for p in xpos) or \
            any(math.floor(p) < 1 or math.floor(p) > h + 1 for p in ypos):
        raise NotImplementedError("affine background pixels: not reached by vips_resize")
    padded = np.pad(img, ((2, 3), (2, 3), (0, 0)), mode="edge")
    f_masks, i_masks = _catmull_masks()
    x0, tx = _affine_taps(xpos)
    y0, ty = _affine_taps(ypos)
    if img.dtype == np.uint8:
        rows = sum(padded[:, x0 + j].astype(np.int64) * i_masks[tx, j][None, :, None] for j in range(4))
        rows = (rows + 2048) >> INTERPOLATE_SHIFT
        out = sum(rows[y0 + k] * i_masks[ty, k][:, None, None] for k in range(4))
        out = np.clip((out + 2048) >> INTERPOLATE_SHIFT, 0, 255).astype(np.uint8)
    else:
        cx = f_masks[tx]
        rows = padded[:, x0].astype(np.float64) * cx[None, :, 0, None]
        for j in range(1, 4):
            rows = rows + padded[:, x0 + j].astype(np.float64) * cx[None, :, j, None]
        cy = f_masks[ty]
        out = rows[y0] * cy[:, 0, None, None]
        for k in range(1, 4):
            out = out + rows[y0 + k] * cy[:, k, None, None]
        out = np.clip(out, 0, 65535).astype(np.uint16)   # truncation, as the C cast
    assert out.shape[0] == out_h and out_w >= xs[1]
    return out


def resize(img: np.ndarray, hshrink: float, vshrink: float, xs: tuple[int, int] | None = None) -> np.ndarray:
    """sharp's image.resize(1 / hshrink, {vscale: 1 / vshrink, kernel: lanczos3}) = vips_resize
    (gap 2.0): reducev, then reduceh, then bicubic enlargement if an axis must grow. xs: the
    output columns a later crop keeps (sharp's cover), which is where libvips starts its rows."""
    hscale, vscale = 1.0 / hshrink, 1.0 / vshrink
    h, w = img.shape[:2]
    hscale = max(hscale, 1.0 / w)
    vscale = max(vscale, 1.0 / h)
    enlarge = hscale > 1.0 or vscale > 1.0
    if vscale < 1.0:
        img = _reduce_axis(img, 0, 1.0 / vscale, tile=LINECACHE)
    if hscale < 1.0:
        if xs is not None and not enlarge:
            img, xs = _reduce_axis(img, 1, 1.0 / hscale, xs[0], xs[1]), None
        else:
            img = _reduce_axis(img, 1, 1.0 / hscale)
    if enlarge:
        ah, av = (hscale if hscale > 1.0 else 1.0), (vscale if vscale > 1.0 else 1.0)
        window = xs if xs is not None else (0, int(img.shape[1] * ah + 0.5))
        img, xs = _enlarge(img, ah, av, window), None
    return img if xs is None else img[:, xs[0]:xs[1]]


# --------------------------------------------------------------------------------------------
# WebP shrink-on-load: sharp asks libwebp (1.6) for a smaller image; libwebp's WebPRescaler
# (src/utils/rescaler_utils.c, src/dsp/rescaler.c: area averaging in 32-bit fixed point). A
# lossless image is rescaled as premultiplied ARGB (vp8l_dec.c), a lossy one as its Y, U and V
# planes before the colour conversion. webp_scaled() calls libwebp itself (ctypes) as libvips
# does; the numpy rescaler is its fallback, exact for lossless images only.

_RFIX = 32
_MASK32 = (1 << 32) - 1


def _frac(x: int, y: int) -> int:
    return ((x << _RFIX) // y) & _MASK32        # WEBP_RESCALER_FRAC


def _mult_fix(x: np.ndarray, y: int) -> np.ndarray:
    return ((x.astype(np.uint64) * np.uint64(y) + np.uint64(1 << (_RFIX - 1))) >> np.uint64(_RFIX))


def _webp_rescale(px: np.ndarray, dst_w: int, dst_h: int) -> np.ndarray:
    """WebPRescaler, shrinking path, on (H, W, C) uint8: ImportRowShrink per source row,
    ExportRowShrink whenever a destination row is complete."""
    src_h, src_w, ch = px.shape
    x_add, x_sub, y_add, y_sub = src_w, dst_w, src_h, dst_h
    fx_scale = _frac(1, x_sub)
    ratio = (dst_h << _RFIX) // (x_add * y_add)
    fxy_scale = ratio if ratio == ratio & _MASK32 else 0
    fy_scale = _frac(1, y_sub)
    # The horizontal pass is the same walk for every row: do it for all rows at once.
    src = px.astype(np.uint64).transpose(1, 0, 2)          # (W, H, C)
    frow_all = np.zeros((dst_w, src_h, ch), np.uint64)
    total = np.zeros((src_h, ch), np.uint64)
    accum, x_in = 0, 0
    for x_out in range(dst_w):
        base = np.zeros((src_h, ch), np.uint64)
        accum += x_add
        while accum > 0:
            accum -= x_sub
            base = src[x_in]
            total = (total + base) & np.uint64(_MASK32)
            x_in += 1
        frac = (base * np.uint64(-accum)) & np.uint64(_MASK32)
        frow_all[x_out] = (total * np.uint64(x_sub) - frac) & np.uint64(_MASK32)
        total = _mult_fix(frac, fx_scale) & np.uint64(_MASK32)
    frow_all = frow_all.transpose(1, 0, 2)                   # (H, W', C)
    out = np.zeros((dst_h, dst_w, ch), np.uint8)
    irow = np.zeros((dst_w, ch), np.uint64)
    y_accum, dst_y = y_add, 0

    def export(frow: np.ndarray) -> None:
        nonlocal irow, y_accum, dst_y
        yscale = (fy_scale * (-y_accum)) & _MASK32
        if fxy_scale == 0:                                   # src 1 px wide and tall as dst
            v = irow.copy()
            irow = np.zeros_like(irow)
        elif yscale:
            frac = (frow * np.uint64(yscale)) >> np.uint64(_RFIX)
            v = _mult_fix((irow - frac) & np.uint64(_MASK32), fxy_scale)
            irow = frac
        else:
            v = _mult_fix(irow, fxy_scale)
            irow = np.zeros_like(irow)
        out[dst_y] = np.minimum(v, 255).astype(np.uint8)
        y_accum += y_add
        dst_y += 1

    frow = np.zeros((dst_w, ch), np.uint64)
    for y in range(src_h):
        while dst_y < dst_h and y_accum <= 0:
            export(frow)
        frow = frow_all[y]
        irow = (irow + frow) & np.uint64(_MASK32)
        y_accum -= y_sub
    while dst_y < dst_h and y_accum <= 0:
        export(frow)
    return out


def _mult_argb(px: np.ndarray, inverse: bool) -> np.ndarray:
    """WebPMultARGBRow: colour times alpha (or divided), 24-bit fixed point; alpha 0 -> all 0."""
    a = px[..., 3].astype(np.uint64)
    if inverse:
        scale = np.where(a > 0, (np.uint64(255 << 24) // np.maximum(a, np.uint64(1))), np.uint64(0))
    else:
        scale = a * np.uint64((1 << 24) // 255)
    col = ((px[..., :3].astype(np.uint64) * scale[..., None] + np.uint64(1 << 23)) & np.uint64(_MASK32)) >> np.uint64(24)
    out = np.concatenate([col.astype(np.uint8), px[..., 3:]], axis=2)
    out[a == 0] = 0
    out[a == 255] = px[a == 255]
    return out


def webp_scaled_from_pixels(px: np.ndarray, dst_w: int, dst_h: int) -> np.ndarray:
    """libwebp's scaled decode of a lossless image, from its full-size pixels."""
    if px.shape[2] == 4:
        return _mult_argb(_webp_rescale(_mult_argb(px, False), dst_w, dst_h), True)
    return _webp_rescale(px, dst_w, dst_h)


class _WebPFeatures(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("has_alpha", ctypes.c_int),
                ("has_animation", ctypes.c_int), ("format", ctypes.c_int), ("pad", ctypes.c_uint32 * 5)]


class _WebPRGBA(ctypes.Structure):
    _fields_ = [("rgba", ctypes.c_void_p), ("stride", ctypes.c_int), ("size", ctypes.c_size_t)]


class _WebPYUVA(ctypes.Structure):
    _fields_ = [("y", ctypes.c_void_p), ("u", ctypes.c_void_p), ("v", ctypes.c_void_p), ("a", ctypes.c_void_p),
                ("y_stride", ctypes.c_int), ("u_stride", ctypes.c_int), ("v_stride", ctypes.c_int),
                ("a_stride", ctypes.c_int), ("y_size", ctypes.c_size_t), ("u_size", ctypes.c_size_t),
                ("v_size", ctypes.c_size_t), ("a_size", ctypes.c_size_t)]


class _WebPBufferUnion(ctypes.Union):
    _fields_ = [("RGBA", _WebPRGBA), ("YUVA", _WebPYUVA)]


class _WebPDecBuffer(ctypes.Structure):
    _fields_ = [("colorspace", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("is_external_memory", ctypes.c_int), ("u", _WebPBufferUnion), ("pad", ctypes.c_uint32 * 4),
                ("private_memory", ctypes.c_void_p)]


class _WebPOptions(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in (
        "bypass_filtering", "no_fancy_upsampling", "use_cropping", "crop_left", "crop_top", "crop_width",
        "crop_height", "use_scaling", "scaled_width", "scaled_height", "use_threads", "dithering_strength",
        "flip", "alpha_dithering_strength")] + [("pad", ctypes.c_uint32 * 5)]


class _WebPConfig(ctypes.Structure):
    _fields_ = [("input", _WebPFeatures), ("output", _WebPDecBuffer), ("options", _WebPOptions)]


_LIBWEBP: list[Any] = []


def _libwebp() -> Any:
    """The C library libwebp (Debian: libwebp7, a dependency of python3-pil), or None."""
    if not _LIBWEBP:
        lib = None
        names = [ctypes.util.find_library("webp"), "libwebp.so.7", "libwebp.7.dylib"]
        if Image is not None:  # pip's Pillow bundles its own copy
            names += [str(p) for p in Path(Image.__file__).parent.parent.glob("*[Pp]illow*.libs/libwebp*")]
        for name in filter(None, names):
            try:
                lib = ctypes.CDLL(name)
                lib.WebPInitDecoderConfigInternal.argtypes = [ctypes.POINTER(_WebPConfig), ctypes.c_int]
                lib.WebPDecode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_WebPConfig)]
                lib.WebPFreeDecBuffer.argtypes = [ctypes.POINTER(_WebPDecBuffer)]
                break
            except (OSError, AttributeError):
                lib = None
        _LIBWEBP.append(lib)
    return _LIBWEBP[0]


def webp_scaled(data: bytes, px: np.ndarray, dst_w: int, dst_h: int, lossless: bool) -> tuple[np.ndarray, bool]:
    """sharp's WebP shrink-on-load: libwebp's WebPDecode with use_scaling, MODE_RGBA, as libvips
    calls it (through ctypes). Without the C library: the rescaler in numpy, exact for a lossless
    image, approximate for a lossy one (libwebp rescales its Y, U, V planes). Returns (pixels, exact)."""
    lib = _libwebp()
    if lib is not None:
        cfg = _WebPConfig()
        if lib.WebPInitDecoderConfigInternal(ctypes.byref(cfg), 0x0209):  # ABI 2.x
            cfg.output.colorspace = 1                                     # MODE_RGBA
            cfg.options.use_scaling = 1
            cfg.options.scaled_width, cfg.options.scaled_height = dst_w, dst_h
            if lib.WebPDecode(data, len(data), ctypes.byref(cfg)) == 0:
                try:
                    rgba = cfg.output.u.RGBA
                    raw = ctypes.string_at(rgba.rgba, rgba.stride * dst_h)
                    out = np.frombuffer(raw, np.uint8).reshape(dst_h, rgba.stride)[:, : 4 * dst_w].reshape(dst_h, dst_w, 4)
                finally:
                    lib.WebPFreeDecBuffer(ctypes.byref(cfg.output))
                return np.ascontiguousarray(out[..., : px.shape[2]]), True
    return webp_scaled_from_pixels(px, dst_w, dst_h), lossless


# --------------------------------------------------------------------------------------------
# The pipeline, in sharp's order (sharp/src/pipeline.cc), and the normalisation.

_ORIENT = {1: (0, False), 2: (0, True), 3: (180, False), 4: (180, True),
           5: (90, True), 6: (90, False), 7: (270, True), 8: (270, False)}
_CANVAS = {"fill": "ignore_aspect", "contain": "embed", "cover": "crop", "inside": "max", "outside": "min"}


def resolve_shrink(width: int, height: int, target_w: int, target_h: int, fit: str) -> tuple[float, float]:
    """sharp's ResolveShrink: the factor each axis is divided by."""
    hshrink, vshrink = width / target_w, height / target_h
    canvas = _CANVAS[fit]
    if canvas in ("crop", "min"):
        hshrink = vshrink = min(hshrink, vshrink)
    elif canvas in ("embed", "max"):
        hshrink = vshrink = max(hshrink, vshrink)
    return min(hshrink, float(width)), min(vshrink, float(height))


def jpeg_shrink_on_load(hshrink: float, vshrink: float) -> int:
    """sharp reloads a JPEG with libjpeg's DCT scaling (1/2, 1/4, 1/8) when it shrinks by 2 or
    more, leaving the rest to lanczos3; one step less when the shrink equals the factor."""
    shrink = min(hshrink, vshrink)
    factor = 8 if shrink >= 8 else 4 if shrink >= 4 else 2 if shrink >= 2 else 1
    if factor > 1 and int(shrink) == factor:
        factor //= 2
    return factor


def decode(data: bytes, fmt: str | None = None, jpeg_shrink: int = 1) -> Decoded:
    fmt = fmt or sniff(data)
    try:
        if fmt == "png":
            return _decode_png(data)
        if fmt == "jpeg":
            return _decode_jpeg(data, jpeg_shrink)
        return _decode_webp(data)
    except (InvalidImageError, UnsupportedImageError, ReferenceUnavailableError, RuntimeError):
        raise
    except Exception as err:
        raise InvalidImageError(f"image could not be decoded: {err}") from err


def resized_size(width: int, height: int, hshrink: float, vshrink: float) -> tuple[int, int]:
    """The size vips_resize makes: reduce rounds size / shrink to nearest, enlarge rounds size * scale."""
    if hshrink == 1.0 and vshrink == 1.0:
        return width, height
    hscale, vscale = max(1.0 / hshrink, 1.0 / width), max(1.0 / vshrink, 1.0 / height)
    w = _round_uint(width / (1.0 / hscale)) if hscale < 1.0 else width
    h = _round_uint(height / (1.0 / vscale)) if vscale < 1.0 else height
    if hscale > 1.0 or vscale > 1.0:
        w = int(w * (hscale if hscale > 1.0 else 1.0) + 0.5)
        h = int(h * (vscale if vscale > 1.0 else 1.0) + 0.5)
    return w, h


def preprocess_pixels(data: bytes, spec: Spec | Mapping[str, Any]) -> tuple[np.ndarray, Decoded]:
    """The 8-bit HWC pixels sharp hands to to-tensor.ts (before normalisation), and the decode
    record (its .exact is False where this module only approximates sharp, with .notes)."""
    spec = Spec.of(spec)
    fmt = sniff(data)
    d = decode(data, fmt)
    angle, flop = _ORIENT.get(d.orientation, (0, False))
    h, w = d.pixels.shape[:2]
    # Resize happens before the EXIF rotation, to the rotated target (pipeline.cc).
    tw, th = (spec.height, spec.width) if angle in (90, 270) else (spec.width, spec.height)
    hshrink, vshrink = resolve_shrink(w, h, tw, th, spec.fit)
    if fmt == "jpeg":
        factor = jpeg_shrink_on_load(hshrink, vshrink)
        if factor > 1:
            d = decode(data, fmt, factor)
            h, w = d.pixels.shape[:2]
            hshrink, vshrink = resolve_shrink(w, h, tw, th, spec.fit)
    elif fmt == "webp" and min(hshrink, vshrink) > 1.0:
        scale = 1.0 / min(hshrink, vshrink)
        w, h = _rint(w * scale), _rint(h * scale)
        d.pixels, exact = webp_scaled(data, d.pixels, w, h, d.lossless)
        if not exact:
            d.exact = False
            d.notes.append("lossy WebP shrink-on-load without libwebp: approximated (libwebp rescales Y, U, V)")
        hshrink, vshrink = resolve_shrink(w, h, tw, th, spec.fit)
    d = _icc_import(d)
    d = flatten(d)
    if spec.colour == "grey":
        d = greyscale(d)
    px = d.pixels
    # Sizes after resize and rotation, and the crop a "cover" makes, to know which columns
    # libvips computes first (see _positions).
    rw, rh = resized_size(w, h, hshrink, vshrink)
    fw, fh = (rh, rw) if angle in (90, 270) else (rw, rh)
    crop = None
    if spec.fit == "cover" and (fw != spec.width or fh != spec.height):
        cw, ch = min(fw, spec.width), min(fh, spec.height)
        crop = ((fw - cw + 1) // 2, (fh - ch + 1) // 2, cw, ch)
    xs = None
    if crop is not None and angle == 0:
        # No rotation: the crop asks the resize for its columns only (mirrored under a flop).
        xs = (rw - crop[0] - crop[2], rw - crop[0]) if flop else (crop[0], crop[0] + crop[2])
    if hshrink != 1.0 or vshrink != 1.0:
        px = resize(px, hshrink, vshrink, xs)
    elif xs is not None:
        px = px[:, xs[0]:xs[1]]
    if angle:
        px = np.rot90(px, k={90: -1, 180: 2, 270: 1}[angle])
    if flop:
        px = px[:, ::-1]
    if crop is not None:
        left, top, cw, ch = crop
        px = px[top: top + ch] if xs is not None else px[top: top + ch, left: left + cw]
    elif spec.fit == "contain" and (fw != spec.width or fh != spec.height):
        out = np.zeros((max(fh, spec.height), max(fw, spec.width), px.shape[2]), px.dtype)
        left, top = (spec.width - fw) // 2 if spec.width > fw else 0, (spec.height - fh) // 2 if spec.height > fh else 0
        out[top: top + fh, left: left + fw] = px
        px = out
    # To 8-bit sRGB or grey, as the raw output (colourspace srgb; band 0 for greyscale).
    if px.dtype == np.uint16:
        px = (px >> 8).astype(np.uint8)
    if spec.colour == "rgb" and px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    px = np.ascontiguousarray(px)
    if px.shape != (spec.height, spec.width, spec.channels):
        raise InvalidImageError(f"image decoded to {px.shape[1]}×{px.shape[0]}×{px.shape[2]}, expected "
                                f"{spec.width}×{spec.height}×{spec.channels}")
    return px, d


def to_tensor(pixels: np.ndarray, spec: Spec | Mapping[str, Any]) -> np.ndarray:
    """src/preprocess/to-tensor.ts: per channel a = 1 / (255 std), b = -mean / std in float64,
    p * a + b in float64, stored as float32 (round to nearest). This differs from a float32
    (p / 255 - mean) / std in the last bit for some pixels; the service's formula is the contract."""
    spec = Spec.of(spec)
    h, w, c = pixels.shape
    out = np.empty((c, h, w), np.float32)
    for k in range(c):
        a = 1 / (255 * spec.std[k])
        b = -spec.mean[k] / spec.std[k]
        out[k] = (pixels[..., k].astype(np.float64) * a + b).astype(np.float32)
    return out


def preprocess(image: str | Path | bytes | bytearray | memoryview, spec: Spec | Mapping[str, Any]) -> np.ndarray:
    """The tensor the service computes for one image: float32, (channels, height, width)."""
    data = bytes(image) if isinstance(image, (bytes, bytearray, memoryview)) else Path(image).read_bytes()
    pixels, _ = preprocess_pixels(data, spec)
    return to_tensor(pixels, spec)


# --------------------------------------------------------------------------------------------
# Command line.


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Compute isomax-serve's input tensor for an image (docs/preprocessing.md).")
    p.add_argument("image", nargs="?", help="PNG, JPEG or WebP file")
    p.add_argument("--height", type=int, help="model input height")
    p.add_argument("--width", type=int, help="model input width")
    p.add_argument("--channels", type=int, choices=(1, 3), help="model input channels")
    # Both spellings of a list: "--mean 0.1 0.5 0.9" (argparse's) and "--mean 0.1,0.5,0.9"
    # (`npm run models -- add`'s), so one command line can be copied between the two.
    p.add_argument("--mean", nargs="+", metavar="M", help="one value per channel: M M M or M,M,M")
    p.add_argument("--std", nargs="+", metavar="S", help="one value per channel: S S S or S,S,S")
    p.add_argument("--fit", default="fill", choices=FITS)
    p.add_argument("--colour", choices=("grey", "rgb"), help="default: grey for 1 channel, rgb for 3")
    p.add_argument("--out", help="write the tensor (C, H, W) as .npy; default: print a summary")
    p.add_argument("--batch", help=argparse.SUPPRESS)  # JSON job list, for test/preprocess/reference-parity.test.ts
    return p


def _numbers(parser: argparse.ArgumentParser, flag: str, tokens: Sequence[str]) -> tuple[float, ...]:
    """--mean/--std as given: space-separated tokens, each of which may hold a comma list."""
    parts = [part.strip() for token in tokens for part in token.split(",")]
    try:
        if "" in parts:
            raise ValueError
        return tuple(float(part) for part in parts)
    except ValueError:
        parser.error(f"--{flag} {' '.join(tokens)}: expected numbers, separated by spaces or commas")
        raise  # parser.error exits; this keeps type checkers from seeing a fall-through


def _run_batch(path: str) -> int:
    """Jobs [{"image": path, "spec": {...}, "out": path}]: each writes raw little-endian float32
    CHW to "out", or {"error": message} goes into the summary printed as JSON on stdout."""
    results = []
    for job in json.loads(Path(path).read_text()):
        try:
            pixels, d = preprocess_pixels(Path(job["image"]).read_bytes(), job["spec"])
            to_tensor(pixels, job["spec"]).astype("<f4").tofile(job["out"])
            results.append({"ok": True, "exact": d.exact, "notes": d.notes})
        except (InvalidImageError, UnsupportedImageError, ReferenceUnavailableError) as err:
            results.append({"ok": False, "error": f"{type(err).__name__}: {err}"})
    json.dump(results, sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.batch:
        return _run_batch(args.batch)
    missing = [name for name in ("image", "height", "width", "channels", "mean", "std") if getattr(args, name) is None]
    if missing:
        parser.error("missing " + ", ".join(("--" if m != "image" else "") + m for m in missing))
    try:
        spec = Spec(args.height, args.width, args.channels, _numbers(parser, "mean", args.mean),
                    _numbers(parser, "std", args.std), args.fit, args.colour or "")
    except ValueError as err:
        parser.error(str(err))
    try:
        data = Path(args.image).read_bytes()
    except OSError as err:
        print(f"error: {args.image}: {err.strerror}", file=sys.stderr)
        return 2
    try:
        pixels, d = preprocess_pixels(data, spec)
    except (InvalidImageError, UnsupportedImageError, ReferenceUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tensor = to_tensor(pixels, spec)
    for note in d.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        np.save(args.out, tensor)
    else:
        print(f"tensor {tensor.dtype} {tuple(tensor.shape)}, min {tensor.min():.6g}, max {tensor.max():.6g}, "
              f"mean {tensor.mean(dtype=np.float64):.6g}{'' if d.exact else ' (approximate: see the notes)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
