"""Bot API methods that send, edit and delete messages, answer callback queries and serve files."""

from __future__ import annotations

import time
from typing import Any

from .errors import bad_request
from .formatting import FormattedText, format_text
from .markup import inline_keyboard, validate_reply_markup
from .media import GET_FILE_MAX_BYTES, StoredFile, check_document, check_photo, guess_mime, sniff_image
from .models import BotMessage, MessageKind, UploadedFile
from .params import Params
from .state import SimChat, StoredMessage, World

TEXT_MAX = 4096
CAPTION_MAX = 1024
CALLBACK_TEXT_MAX = 200
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
    }
)  # fmt: skip
MARKUP_ERROR = "can't parse reply keyboard markup JSON object"
ENTITIES_ERROR = "can't parse entities JSON object"


class Messaging:
    def __init__(self, world: World) -> None:
        self.world = world
        self.chat_actions: dict[int, str] = {}

    # ------------------------------------------------------------------ helpers
    def _markup(self, p: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
        return validate_reply_markup(p.json("reply_markup", MARKUP_ERROR), inline_only=inline_only)

    def _reply_to(self, chat: SimChat, p: Params) -> int | None:
        params = p.json("reply_parameters", "can't parse reply parameters JSON object")
        allow = p.bool("allow_sending_without_reply")
        if isinstance(params, dict):
            message_id = params.get("message_id")
            allow = bool(params.get("allow_sending_without_reply", allow))
            if params.get("chat_id") not in (None, chat.id):
                return None  # replies to other chats are not simulated
        else:
            message_id = p.opt_int("reply_to_message_id")
        if message_id is None:
            return None
        if not isinstance(message_id, int) or chat.live(message_id) is None:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return message_id

    def _caption(self, p: Params) -> tuple[FormattedText | None, str | None]:
        raw = p.opt_str("caption")
        if not raw:
            return None, None
        caption = format_text(raw, p.opt_str("parse_mode"), p.json("caption_entities", ENTITIES_ERROR))
        if len(caption.text) > CAPTION_MAX:
            raise bad_request("message caption is too long")
        return (caption if caption.text else None), raw

    def _upload(self, p: Params, field: str, kind: str) -> tuple[StoredFile, bool]:
        """The file of ``field``: a multipart upload, an attach:// reference, or a known file_id."""
        value = p.raw(field)
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.raw(value[len("attach://") :])
            if not isinstance(value, UploadedFile):
                raise bad_request("wrong file identifier/HTTP URL specified")
        if isinstance(value, UploadedFile):
            if kind == "photo":
                width, height = check_photo(value.data)
                sniffed = sniff_image(value.data)
                mime = f"image/{sniffed[0]}" if sniffed else "image/jpeg"
                stored = self.world.files.add(
                    "photo", value.data, file_name=value.filename, mime_type=mime, width=width, height=height
                )
            else:
                check_document(value.data)
                stored = self.world.files.add(
                    kind,
                    value.data,
                    file_name=value.filename,
                    mime_type=guess_mime(value.filename, value.content_type),
                )
            return stored, True
        if isinstance(value, str) and value:
            return self.world.files.resolve(value, kind), False
        raise bad_request(f"there is no {kind} in the request")

    def _new_bot_message(
        self,
        chat: SimChat,
        *,
        kind: MessageKind,
        content: FormattedText | None,
        raw: str | None,
        parse_mode: str | None,
        markup: dict[str, Any] | None,
        reply_to: int | None,
        file: StoredFile | None = None,
    ) -> dict[str, Any]:
        world = self.world
        message_id = chat.next_message_id()
        message = world.base_message(chat, message_id, world.bot_user_json())
        if reply_to is not None:
            replied = world.reply_json(chat, reply_to)
            if replied is not None:
                message["reply_to_message"] = replied
        _apply_content(message, kind, content, file)
        inline = inline_keyboard(markup)
        if inline is not None:
            message["reply_markup"] = inline
        bot_message = BotMessage(
            message_id=message_id,
            chat_id=chat.id,
            text=content.text if content else None,
            reply_markup=markup,
            kind=kind,
            parse_mode=parse_mode,
            sent_at=time.monotonic(),
            raw_text=raw,
            entities=list(content.entities) if content else [],
            file_name=file.file_name if file else None,
            file_bytes=file.data if file else None,
            mime_type=file.mime_type if file else None,
            file_id=file.file_id if file else None,
            reply_to_message_id=reply_to,
        )
        world.store(StoredMessage(chat.id, message_id, world.bot_id, True, message, bot_message))
        return message

    def _editable(self, p: Params) -> tuple[SimChat, StoredMessage]:
        if p.has("inline_message_id") and not p.has("chat_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # inline mode is not simulated
        chat = self.world.chat_for_bot(p.chat_id())
        message_id = p.int("message_id", "message identifier is not specified")
        stored = chat.live(message_id)
        if stored is None:
            raise bad_request("message to edit not found")
        if not stored.from_bot or stored.bot is None:
            raise bad_request("message can't be edited")
        return chat, stored

    def _commit_edit(
        self,
        stored: StoredMessage,
        *,
        content: FormattedText | None,
        raw: str | None,
        parse_mode: str | None,
        markup: dict[str, Any] | None,
        content_changed: bool,
    ) -> dict[str, Any]:
        bot_message = stored.bot
        assert bot_message is not None
        message = stored.json
        if content_changed:
            bot_message.text = content.text if content else None
            bot_message.entities = list(content.entities) if content else []
            bot_message.raw_text = raw
            bot_message.parse_mode = parse_mode
            _apply_content(message, bot_message.kind, content, None)
        if markup is not None or inline_keyboard(bot_message.reply_markup) is not None:
            bot_message.reply_markup = markup
        if markup is not None:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        bot_message.edited = True
        bot_message.edited_at = time.monotonic()
        self.world.activity.fire()
        return message

    # ------------------------------------------------------------------ sending
    async def send_message(self, p: Params) -> Any:
        chat_id = p.chat_id()
        raw = p.opt_str("text")
        if not raw:
            raise bad_request("message text is empty")
        parse_mode = p.opt_str("parse_mode")
        content = format_text(raw, parse_mode, p.json("entities", ENTITIES_ERROR))
        chat = self.world.chat_for_bot(chat_id)
        if not content.text:
            raise bad_request("message text is empty")
        if len(content.text) > TEXT_MAX:
            raise bad_request("message is too long")
        markup = self._markup(p)
        reply_to = self._reply_to(chat, p)
        return self._new_bot_message(
            chat,
            kind="text",
            content=content,
            raw=raw,
            parse_mode=parse_mode,
            markup=markup,
            reply_to=reply_to,
        )

    async def send_photo(self, p: Params) -> Any:
        return await self._send_file(p, "photo")

    async def send_document(self, p: Params) -> Any:
        return await self._send_file(p, "document")

    async def _send_file(self, p: Params, kind: MessageKind) -> Any:
        chat = self.world.chat_for_bot(p.chat_id())
        caption, raw = self._caption(p)
        markup = self._markup(p)
        reply_to = self._reply_to(chat, p)
        stored_file, _ = self._upload(p, kind, kind)
        return self._new_bot_message(
            chat,
            kind=kind,
            content=caption,
            raw=raw,
            parse_mode=p.opt_str("parse_mode"),
            markup=markup,
            reply_to=reply_to,
            file=stored_file,
        )

    async def send_chat_action(self, p: Params) -> Any:
        chat = self.world.chat_for_bot(p.chat_id())
        action = p.opt_str("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.chat_actions[chat.id] = action
        return True

    # ------------------------------------------------------------------ editing
    async def edit_message_text(self, p: Params) -> Any:
        raw = p.opt_str("text")
        if not raw:
            raise bad_request("text must be non-empty")
        parse_mode = p.opt_str("parse_mode")
        content = format_text(raw, parse_mode, p.json("entities", ENTITIES_ERROR))
        markup = self._markup(p, inline_only=True)
        _, stored = self._editable(p)
        bot_message = stored.bot
        assert bot_message is not None
        if bot_message.kind != "text":
            raise bad_request("there is no text in the message to edit")
        if not content.text:
            raise bad_request("text must be non-empty")
        if len(content.text) > TEXT_MAX:
            raise bad_request("MESSAGE_TOO_LONG")
        if (
            content.text == bot_message.text
            and content.entities == bot_message.entities
            and markup == inline_keyboard(bot_message.reply_markup)
        ):
            raise bad_request(NOT_MODIFIED)
        return self._commit_edit(
            stored, content=content, raw=raw, parse_mode=parse_mode, markup=markup, content_changed=True
        )

    async def edit_message_caption(self, p: Params) -> Any:
        caption, raw = self._caption(p)
        markup = self._markup(p, inline_only=True)
        _, stored = self._editable(p)
        bot_message = stored.bot
        assert bot_message is not None
        if bot_message.kind == "text":
            raise bad_request("there is no caption in the message to edit")
        new_text = caption.text if caption else None
        new_entities = caption.entities if caption else []
        if (
            new_text == bot_message.text
            and new_entities == bot_message.entities
            and markup == inline_keyboard(bot_message.reply_markup)
        ):
            raise bad_request(NOT_MODIFIED)
        return self._commit_edit(
            stored,
            content=caption,
            raw=raw,
            parse_mode=p.opt_str("parse_mode"),
            markup=markup,
            content_changed=True,
        )

    async def edit_message_reply_markup(self, p: Params) -> Any:
        markup = self._markup(p, inline_only=True)
        _, stored = self._editable(p)
        bot_message = stored.bot
        assert bot_message is not None
        if markup == inline_keyboard(bot_message.reply_markup):
            raise bad_request(NOT_MODIFIED)
        return self._commit_edit(
            stored, content=None, raw=None, parse_mode=None, markup=markup, content_changed=False
        )

    # ------------------------------------------------------------------ deleting
    def _delete(self, chat: SimChat, message_id: int) -> bool:
        stored = chat.live(message_id)
        if stored is None:
            return False
        stored.deleted = True
        if stored.bot is not None:
            stored.bot.deleted = True
        self.world.activity.fire()
        return True

    async def delete_message(self, p: Params) -> Any:
        chat = self.world.chat_for_bot(p.chat_id())
        message_id = p.int("message_id", "message identifier is not specified")
        if not self._delete(chat, message_id):
            raise bad_request("message to delete not found")
        return True

    async def delete_messages(self, p: Params) -> Any:
        chat = self.world.chat_for_bot(p.chat_id())
        ids = p.json("message_ids", "can't parse message identifiers JSON object")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100 or not all(isinstance(i, int) for i in ids):
            raise bad_request("message identifiers are invalid")
        for message_id in ids:
            self._delete(chat, message_id)
        return True

    # ------------------------------------------------------------------ callback queries
    async def answer_callback_query(self, p: Params) -> Any:
        query_id = p.opt_str("callback_query_id")
        record = self.world.callback_queries.get(query_id or "")
        if record is None or record.answer is not None:
            raise bad_request(QUERY_INVALID)
        text = p.opt_str("text")
        if text is not None and len(text) > CALLBACK_TEXT_MAX:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answer = dict(p.data)
        self.world.activity.fire()
        return True

    # ------------------------------------------------------------------ chats & files
    async def get_chat(self, p: Params) -> Any:
        chat_id = p.chat_id()
        chat = self.world.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        info = chat.to_json()
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return info

    async def get_file(self, p: Params) -> Any:
        stored = self.world.files.get(p.opt_str("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > GET_FILE_MAX_BYTES:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }


def file_json(stored: StoredFile) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
    }
    if stored.kind == "photo":
        data["width"] = stored.width
        data["height"] = stored.height
    else:
        if stored.file_name:
            data["file_name"] = stored.file_name
        if stored.mime_type:
            data["mime_type"] = stored.mime_type
    return data


def _apply_content(
    message: dict[str, Any], kind: MessageKind, content: FormattedText | None, file: StoredFile | None
) -> None:
    if kind == "text":
        assert content is not None
        message["text"] = content.text
        if content.entities:
            message["entities"] = content.entities
        else:
            message.pop("entities", None)
        return
    if file is not None:
        message["photo" if kind == "photo" else "document"] = (
            [file_json(file)] if kind == "photo" else file_json(file)
        )
    if content is not None:
        message["caption"] = content.text
        if content.entities:
            message["caption_entities"] = content.entities
        else:
            message.pop("caption_entities", None)
    else:
        message.pop("caption", None)
        message.pop("caption_entities", None)
