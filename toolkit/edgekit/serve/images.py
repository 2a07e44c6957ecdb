"""What a request may carry, checked before the model sees it: body size, content type, multipart fields, image
format and size, and the face box. Everything stays in memory; each refusal is a `ClientError` (4xx)."""

from __future__ import annotations

import io

import numpy as np

FORMATS = {"JPEG", "PNG", "WEBP"}
MIN_SIDE = 16  # pixels: smaller is not a face crop
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


class ClientError(Exception):
    def __init__(self, status: int, kind: str, detail: str):
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail


async def read_limited(request, limit: int) -> bytes:
    """The body, refused (413) from its Content-Length or as soon as the stream passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(413, "body too large", f"{int(declared)} bytes; the limit is {limit} (--max-body-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientError(413, "body too large", f"over {limit} bytes (--max-body-mb)")
        chunks.append(chunk)
    if not size:
        raise ClientError(400, "empty body", "send a JPEG, PNG or WebP image")
    return b"".join(chunks)


def split_upload(content_type: str, body: bytes) -> tuple[bytes, str | None]:
    """(image bytes, the form's `box` if any) from a raw image body or a multipart form with field `image`."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in IMAGE_TYPES:
        return body, None
    if kind == "multipart/form-data":
        fields = _multipart_fields(content_type, body)
        image = fields.get("image", fields.get("file"))
        if image is None:
            raise ClientError(422, "no image field", f"multipart form has {', '.join(fields) or 'no fields'}; "
                                                     "send the image as field 'image'")
        box = fields.get("box")
        return image, box.decode("utf-8", "replace") if box else None
    raise ClientError(415, "unsupported content type", f"{kind or 'none'}; expected {', '.join(IMAGE_TYPES)} or "
                                                       "multipart/form-data")


def _multipart_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """Field name -> bytes, parsed in memory by python-multipart's streaming parser (Starlette's form reader
    spools large files to a temporary file on disk; nothing a client sends may be written)."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ClientError(400, "bad multipart", "multipart/form-data without a boundary")
    parts: list[dict] = []
    state = {"field": b"", "value": b""}

    def begin():
        parts.append({"headers": {}, "data": bytearray()})

    def header_field(data, start, end):
        state["field"] += data[start:end]

    def header_value(data, start, end):
        state["value"] += data[start:end]

    def header_end():
        parts[-1]["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def part_data(data, start, end):
        parts[-1]["data"] += data[start:end]

    parser = MultipartParser(boundary, {"on_part_begin": begin, "on_header_field": header_field,
                                        "on_header_value": header_value, "on_header_end": header_end,
                                        "on_part_data": part_data})
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # noqa: BLE001 - any parser complaint is the client's malformed form
        raise ClientError(400, "bad multipart", str(exc)) from None
    fields = {}
    for p in parts:
        _, disp = parse_options_header(p["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        if name:
            fields[name] = bytes(p["data"])
    return fields


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """An RGB uint8 array; refused when it is not a whole JPEG/PNG/WebP, too large (checked from the header,
    before decoding) or too small."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ClientError(413, "image too large", "over the decompression limit") from None
    except (UnidentifiedImageError, OSError):
        raise ClientError(400, "not an image", "the body is not a JPEG, PNG or WebP image") from None
    if im.format not in FORMATS:
        raise ClientError(415, "unsupported image format", f"{im.format}; expected JPEG, PNG or WebP")
    w, h = im.size
    if w * h > max_pixels:
        raise ClientError(413, "image too large", f"{w}x{h} is over {max_pixels} pixels")
    if min(w, h) < MIN_SIDE:
        raise ClientError(422, "image too small", f"{w}x{h}; each side must be at least {MIN_SIDE} pixels")
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ClientError(400, "corrupt image", f"{im.format} could not be decoded: {exc}") from None
    return np.asarray(im.convert("RGB"))


def parse_box(text: str, shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise ClientError(422, "bad box", f"box must be x0,y0,x1,y1 in pixels, got {text!r}") from None
    if not all(np.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise ClientError(422, "bad box", f"box {text!r}: need x0 < x1 and y0 < y1")
    h, w = shape[:2]
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise ClientError(422, "bad box", f"box {text!r} is outside the {w}x{h} image")
    return x0, y0, x1, y1
