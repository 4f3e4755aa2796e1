"""The one image reader of the project (dataset pipeline, inference API, demo, curve tool).

:func:`read_image` reads a file *checked*: a JPEG or PNG is first walked structurally, so a
truncated file is an error instead of the partly grey image that decoders return silently;
zero-byte files and non-images are errors too. Readable images always come out as
``H x W x 3`` uint8 (OpenCV's ``IMREAD_COLOR`` decoding, as mmcv's ``LoadImageFromFile``):
alpha is dropped, 16-bit samples are scaled to 8 bits (``v >> 8``), grayscale is repeated to
3 channels. Every failure is a :class:`BadInputError` that names the file.
"""
import os.path as osp
import zlib
from typing import Optional

import cv2
import numpy as np

JPEG_SOI = b'\xff\xd8'
JPEG_EOI = b'\xff\xd9'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# Signatures of the other formats OpenCV decodes (no structural check beyond decoding).
_OTHER_SIGNATURES = {
    b'BM': 'BMP',
    b'II*\x00': 'TIFF',
    b'MM\x00*': 'TIFF',
    b'RIFF': 'WebP',
    b'P1': 'PBM', b'P2': 'PGM', b'P3': 'PPM', b'P4': 'PBM', b'P5': 'PGM', b'P6': 'PPM',
}


class BadInputError(ValueError):
    """An input file (image or annotation) that cannot be used.

    Args:
        path (str): the file.
        reason (str): what is wrong with it.
    """

    def __init__(self, path, reason: str) -> None:
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f'{self.path}: {self.reason}')

    def __reduce__(self):
        return type(self), (self.path, self.reason)


class MissingInputError(BadInputError, FileNotFoundError):
    """A :class:`BadInputError` for a file that does not exist (also a ``FileNotFoundError``)."""

    def __init__(self, path, reason: str = 'file not found') -> None:
        BadInputError.__init__(self, path, reason)


def jpeg_problem(data: bytes) -> Optional[str]:
    """Why ``data`` is not a complete JPEG stream, or None.

    Walks the length-prefixed header segments up to the first start-of-scan, then requires an
    end-of-image marker after it (entropy-coded data cannot contain ``FF D9``; bytes after the
    marker are allowed).
    """
    if not data.startswith(JPEG_SOI):
        return 'not a JPEG file (no start-of-image marker)'
    n, pos = len(data), 2
    while True:
        if pos >= n:
            return 'truncated JPEG: the file ends inside its header'
        if data[pos] != 0xFF:
            return f'corrupt JPEG: expected a marker at byte {pos}, found 0x{data[pos]:02X}'
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return 'truncated JPEG: the file ends inside its header'
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return 'corrupt JPEG: end-of-image marker before any image data'
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # segments without a length
            continue
        if pos + 2 > n:
            return 'truncated JPEG: the file ends inside its header'
        length = int.from_bytes(data[pos:pos + 2], 'big')
        if length < 2:
            return f'corrupt JPEG: segment 0xFF{marker:02X} at byte {pos - 2} has length {length}'
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
    if pos > n or data.find(JPEG_EOI, pos) < 0:
        return 'truncated JPEG: no end-of-image marker (FF D9) after the image data'
    return None


def png_problem(data: bytes) -> Optional[str]:
    """Why ``data`` is not a complete PNG stream (chunk walk with CRCs up to IEND), or None."""
    if not data.startswith(PNG_SIGNATURE):
        return 'not a PNG file (no PNG signature)'
    n, pos = len(data), len(PNG_SIGNATURE)
    view = memoryview(data)
    first = True
    while True:
        if pos + 8 > n:
            return 'truncated PNG: the file ends before its IEND chunk'
        length = int.from_bytes(data[pos:pos + 4], 'big')
        ctype = bytes(data[pos + 4:pos + 8])
        if first and ctype != b'IHDR':
            return f'corrupt PNG: first chunk is {ctype!r}, expected IHDR'
        first = False
        end = pos + 12 + length
        if end > n:
            return (f'truncated PNG: chunk {ctype.decode("latin-1")} at byte {pos} needs '
                    f'{length} bytes of data, the file ends after {n - pos - 8}')
        if zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], 'big'):
            return f'corrupt PNG: CRC mismatch in chunk {ctype.decode("latin-1")} at byte {pos}'
        if ctype == b'IEND':
            return None
        pos = end


def image_format(data: bytes) -> Optional[str]:
    """``'JPEG'``, ``'PNG'``, another format name OpenCV reads, or None, from the signature."""
    if data.startswith(JPEG_SOI):
        return 'JPEG'
    if data.startswith(PNG_SIGNATURE):
        return 'PNG'
    for sig, name in _OTHER_SIGNATURES.items():
        if data.startswith(sig) and (name != 'WebP' or data[8:12] == b'WEBP'):
            return name
    return None


def structure_problem(data: bytes) -> Optional[str]:
    """The JPEG / PNG structural check of ``data`` (None: fine or another format)."""
    fmt = image_format(data)
    if fmt == 'JPEG':
        return jpeg_problem(data)
    if fmt == 'PNG':
        return png_problem(data)
    return None


def decode_image(data: bytes, path: str, channel_order: str = 'bgr') -> np.ndarray:
    """Checked decoding of the bytes of image file ``path`` to ``H x W x 3`` uint8.

    Raises:
        BadInputError: empty, not an image, truncated or corrupt (the message names ``path``).
    """
    if channel_order not in ('bgr', 'rgb'):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    if len(data) == 0:
        raise BadInputError(path, 'empty file (0 bytes), not an image')
    fmt = image_format(data)
    if fmt is None:
        head = bytes(data[:8])
        raise BadInputError(path, f'not an image file (unknown signature {head!r}; expected '
                            'JPEG, PNG, BMP, TIFF, WebP or PNM)')
    problem = structure_problem(data)
    if problem is not None:
        raise BadInputError(path, problem)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise BadInputError(path, f'OpenCV cannot decode this {fmt} file (corrupt image data)')
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or 0 in img.shape:
        raise BadInputError(path, f'decoded to an unusable array {img.dtype} {img.shape}')
    if channel_order == 'rgb':
        img = np.ascontiguousarray(img[..., ::-1])
    return img


def read_file_bytes(path: str, backend_args: Optional[dict] = None) -> bytes:
    """The bytes of ``path``; :class:`MissingInputError` naming it if a local file is absent.

    Paths with ``://`` go through :func:`mmengine.fileio.get` (with ``backend_args``).
    """
    path = str(path)
    if '://' in path or backend_args:
        from mmengine.fileio import get
        try:
            return get(path, backend_args=backend_args)
        except FileNotFoundError as err:
            raise MissingInputError(path) from err
    if osp.isdir(path):
        raise BadInputError(path, 'is a directory, expected a file')
    if not osp.isfile(path):
        raise MissingInputError(path)
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as err:
        raise BadInputError(path, f'cannot read the file: {err}') from err


def read_image(path: str, channel_order: str = 'bgr',
               backend_args: Optional[dict] = None) -> np.ndarray:
    """Read image ``path`` checked, as ``H x W x 3`` uint8 (see the module docstring).

    Raises:
        MissingInputError: the file does not exist.
        BadInputError: it is empty, not an image, truncated or corrupt.
    """
    return decode_image(read_file_bytes(path, backend_args), str(path), channel_order)
