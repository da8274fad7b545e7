"""sendPhoto: a picture uploaded as multipart/form-data, or sent again by its file_id.

The photo arrives the two ways Telegram takes an upload: as the `photo` field's file itself, or
as `photo=attach://<name>` with the file under `<name>` (aiogram's way). The bytes are kept on the
message (`ChatMessage.upload`) so tests can look at the picture the bot sent. Telegram's checks
that are cheap here are made with its wording: an empty or non-image file, a caption too long,
an unknown file_id. Only PNG and JPEG are recognised, which is what bots send as photos.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from local_telegram.methods.markup import apply_reply_keyboard, reply_markup
from local_telegram.methods.messages import reply_target
from local_telegram.params import Params, bad_request
from local_telegram.records import ChatMessage
from local_telegram.state import TelegramState

MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG; None for anything else."""
    if data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8"):
        at = 2
        while at + 9 < len(data) and data[at] == 0xFF:
            marker, length = data[at + 1], struct.unpack(">H", data[at + 2 : at + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):  # start of frame: height, then width
                height, width = struct.unpack(">HH", data[at + 5 : at + 9])
                return width, height
            at += 2 + length
    return None


def uploaded_bytes(params: Params) -> bytes | str:
    """The uploaded file's bytes, or the string given instead (a file_id or a URL)."""
    photo = params.raw("photo")
    if isinstance(photo, str) and photo.startswith("attach://"):
        photo = params.raw(photo.removeprefix("attach://"))
        if photo is None:
            raise bad_request("wrong remote file identifier specified: can't find attached file")
    if photo is None or photo == "":
        raise bad_request("there is no photo in the request")
    if isinstance(photo, str):
        return photo
    handle = getattr(photo, "file", None)
    if handle is None:
        raise bad_request("wrong type of the web page content")
    return bytes(handle.read())


def known_upload(state: TelegramState, file_id: str) -> bytes | None:
    for chat in state.chats.values():
        for message in chat.messages.values():
            photo = message.extra.get("photo") or []
            if message.upload is not None and any(p["file_id"] == file_id for p in photo):
                return message.upload
    return None


def photo_sizes(data: bytes) -> list[dict[str, Any]]:
    size = image_size(data)
    if size is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    unique = hashlib.sha256(data).hexdigest()[:16]
    width, height = size
    return [
        {
            "file_id": f"photo-{unique}",
            "file_unique_id": unique,
            "width": width,
            "height": height,
            "file_size": len(data),
        }
    ]


async def send_photo(state: TelegramState, params: Params) -> dict[str, Any]:
    chat = state.chat_for_send(params)
    photo = uploaded_bytes(params)
    if isinstance(photo, str):
        found = known_upload(state, photo)
        if found is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        photo = found
    if not photo:
        raise bad_request("file must be non-empty")
    if len(photo) > MAX_PHOTO_BYTES:
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    extra: dict[str, Any] = {"photo": photo_sizes(photo)}
    caption = (params.str("caption") or "").strip()
    if len(caption) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    if caption:
        extra["caption"] = caption
    markup = reply_markup(params)
    reply_to = reply_target(chat, params)
    apply_reply_keyboard(chat, markup)
    message: ChatMessage = state.new_message(
        chat,
        from_bot=True,
        sender=state.bot_user,
        extra=extra,
        reply_markup=markup if markup and "inline_keyboard" in markup else None,
        reply_to=reply_to,
        upload=photo,
    )
    return state.message_to_api(message)


__all__ = ["image_size", "send_photo"]
