"""Files: the store behind file_ids/getFile/downloads, image sniffing, placeholder media for users."""

from __future__ import annotations

import base64
import mimetypes
import struct
import zlib
from dataclasses import dataclass

from .errors import ApiError, bad_request

_FILE_ID_PREFIX = {"photo": "AgAC", "document": "BQAC", "voice": "AwAC", "sticker": "CAAC"}
_PATH_DIR = {"photo": "photos", "document": "documents", "voice": "voice", "sticker": "stickers"}
_TYPE_NAMES = {"photo": "Photo", "document": "Document", "voice": "Voice", "sticker": "Sticker"}
GET_FILE_MAX_BYTES = 20 * 1024 * 1024
DOCUMENT_MAX_BYTES = 50 * 1024 * 1024
PHOTO_MAX_BYTES = 10 * 1024 * 1024


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str
    width: int = 0
    height: int = 0

    @property
    def size(self) -> int:
        return len(self.data)


class FileStore:
    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = 0

    def add(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int = 0,
        height: int = 0,
    ) -> StoredFile:
        self._counter += 1
        n = self._counter
        token = base64.urlsafe_b64encode(struct.pack(">Q", n) + b"iop-sim-file").decode().rstrip("=")
        unique = base64.urlsafe_b64encode(struct.pack(">I", n) + b"u").decode().rstrip("=")
        ext = _extension(kind, file_name, mime_type)
        stored = StoredFile(
            file_id=f"{_FILE_ID_PREFIX.get(kind, 'BQAC')}AgIAAxkBAA{token}",
            file_unique_id=f"AQAD{unique}",
            kind=kind,
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            file_path=f"{_PATH_DIR.get(kind, 'documents')}/file_{n}{ext}",
            width=width,
            height=height,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)

    def resolve(self, file_id: str, kind: str) -> StoredFile:
        """A file re-sent by file_id: must exist and be of a compatible type."""
        if file_id.lower().startswith(("http://", "https://")):
            # The stand-in never fetches URLs (no network); Telegram would download it.
            raise bad_request("wrong file identifier/HTTP URL specified")
        stored = self._by_id.get(file_id)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != kind and kind != "document":
            raise bad_request(f"can't use file of type {_TYPE_NAMES[stored.kind]} as {_TYPE_NAMES[kind]}")
        return stored


def _extension(kind: str, file_name: str | None, mime_type: str | None) -> str:
    if file_name and "." in file_name:
        return "." + file_name.rsplit(".", 1)[1]
    if mime_type:
        guessed = mimetypes.guess_extension(mime_type)
        if guessed:
            return guessed
    return {"photo": ".jpg", "voice": ".oga", "sticker": ".webp"}.get(kind, "")


def sniff_image(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a PNG/JPEG/GIF/WEBP/BMP image, or None if it isn't one."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", width, height
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return "bmp", abs(width), abs(height)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp", 512, 512
    if data.startswith(b"\xff\xd8"):
        return "jpeg", *_jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return 1, 1


def check_photo(data: bytes) -> tuple[int, int]:
    """Telegram's checks on an uploaded photo; returns (width, height)."""
    if not data:
        raise bad_request("file must be non-empty")
    if len(data) > PHOTO_MAX_BYTES:
        raise bad_request("PHOTO_SAVE_FILE_INVALID")
    sniffed = sniff_image(data)
    if sniffed is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    _, width, height = sniffed
    if width <= 0 or height <= 0 or width + height > 10000 or max(width, height) > 20 * min(width, height):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return width, height


def check_document(data: bytes) -> None:
    if not data:
        raise bad_request("file must be non-empty")
    if len(data) > DOCUMENT_MAX_BYTES:
        raise ApiError(413, "Request Entity Too Large")


def guess_mime(file_name: str | None, content_type: str | None) -> str:
    if content_type and content_type != "application/octet-stream":
        return content_type
    guessed, _ = mimetypes.guess_type(file_name or "")
    return guessed or "application/octet-stream"


# ---------------------------------------------------------------- placeholder media sent by users


def tiny_png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (80, 160, 120)) -> bytes:
    """A valid PNG image (what a user's photo downloads as)."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def placeholder_voice(duration: int) -> bytes:
    return b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead" + duration.to_bytes(4, "little") + b"\x00" * 64


def placeholder_document(file_name: str) -> bytes:
    if file_name.lower().endswith(".pdf"):
        return b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    return f"placeholder content of {file_name}\n".encode()


def placeholder_sticker() -> bytes:
    return b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
