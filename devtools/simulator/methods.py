"""The Bot API method table: bot identity, updates (polling & webhook), commands, bot profile."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import bad_request, conflict
from .messaging import Messaging
from .params import Params
from .state import World
from .updates import BY_WEBHOOK, UpdateQueue
from .webhook import Webhook, check_secret, check_webhook_url

Handler = Callable[[Params], Awaitable[Any]]

_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
LONG_POLL_MAX = 50.0


@dataclass
class Described:
    """A successful result that Telegram accompanies with a ``description`` (setWebhook & co.)."""

    result: Any
    description: str


class BotApi:
    def __init__(self, world: World, updates: UpdateQueue, webhook: Webhook) -> None:
        self.world = world
        self.updates = updates
        self.webhook = webhook
        self.messaging = Messaging(world)
        self.commands: dict[str, list[dict[str, str]]] = {}
        self.profile: dict[str, str] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        m = self.messaging
        table: dict[str, Handler] = {
            "getMe": self.get_me,
            "logOut": self.ok,
            "close": self.ok,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setMyDescription": self._profile_setter("description", 512),
            "getMyDescription": self._profile_getter("description"),
            "setMyShortDescription": self._profile_setter("short_description", 120),
            "getMyShortDescription": self._profile_getter("short_description"),
            "setMyName": self._profile_setter("name", 64),
            "getMyName": self._profile_getter("name"),
            "setChatMenuButton": self.set_chat_menu_button,
            "getChatMenuButton": self.get_chat_menu_button,
            "sendMessage": m.send_message,
            "sendPhoto": m.send_photo,
            "sendDocument": m.send_document,
            "sendChatAction": m.send_chat_action,
            "editMessageText": m.edit_message_text,
            "editMessageCaption": m.edit_message_caption,
            "editMessageReplyMarkup": m.edit_message_reply_markup,
            "deleteMessage": m.delete_message,
            "deleteMessages": m.delete_messages,
            "answerCallbackQuery": m.answer_callback_query,
            "getChat": m.get_chat,
            "getFile": m.get_file,
        }
        # Telegram matches method names case-insensitively.
        self._table = {name.lower(): (name, handler) for name, handler in table.items()}

    def lookup(self, method: str) -> tuple[str, Handler] | None:
        return self._table.get(method.lower())

    # ------------------------------------------------------------------ identity
    async def ok(self, p: Params) -> Any:
        return True

    async def get_me(self, p: Params) -> Any:
        return {
            **self.world.bot_user_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # ------------------------------------------------------------------ updates
    async def get_updates(self, p: Params) -> Any:
        if self.webhook.active:
            raise conflict(
                "can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first"
            )
        offset = p.opt_int("offset")
        limit = p.opt_int("limit") or 100
        timeout = min(float(p.opt_int("timeout") or 0), LONG_POLL_MAX)
        self.updates.set_allowed(p.json("allowed_updates", "can't parse allowed updates JSON object"))
        return await self.updates.poll(offset, limit, timeout)

    async def set_webhook(self, p: Params) -> Any:
        url = p.opt_str("url") or ""
        if p.bool("drop_pending_updates"):
            self.updates.drop_all()
        self.updates.set_allowed(p.json("allowed_updates", "can't parse allowed updates JSON object"))
        if not url:
            return await self._remove_webhook()
        check_webhook_url(url)
        secret = p.opt_str("secret_token")
        if secret is not None:
            check_secret(secret)
        max_connections = p.opt_int("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        already = self.webhook.url == url and self.webhook.secret == secret
        self.updates.terminate_polls(BY_WEBHOOK)
        self.webhook.set(url, secret, max_connections)
        return Described(True, "Webhook is already set" if already else "Webhook was set")

    async def delete_webhook(self, p: Params) -> Any:
        if p.bool("drop_pending_updates"):
            self.updates.drop_all()
        return await self._remove_webhook()

    async def _remove_webhook(self) -> Described:
        if not self.webhook.active:
            return Described(True, "Webhook is already deleted")
        self.webhook.delete()
        return Described(True, "Webhook was deleted")

    async def get_webhook_info(self, p: Params) -> Any:
        return self.webhook.info()

    # ------------------------------------------------------------------ commands & profile
    def _scope_key(self, p: Params) -> str:
        scope = p.json("scope", "can't parse BotCommandScope JSON object")
        if scope is None:
            scope = {"type": "default"}
        if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
            raise bad_request("can't parse BotCommandScope JSON object")
        return json.dumps(scope, sort_keys=True) + "|" + (p.opt_str("language_code") or "")

    async def set_my_commands(self, p: Params) -> Any:
        commands = p.json("commands", "can't parse commands JSON object")
        if commands is None:
            commands = []
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        clean: list[dict[str, str]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand: BotCommand must be an Object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str):
                raise bad_request("can't parse BotCommand: Can't find field \"command\"")
            if not isinstance(description, str):
                raise bad_request("can't parse BotCommand: Can't find field \"description\"")
            if not _COMMAND_RE.fullmatch(name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not description.strip():
                raise bad_request("command description must be non-empty")
            if len(description) > 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": description})
        key = self._scope_key(p)
        if clean:
            self.commands[key] = clean
        else:
            self.commands.pop(key, None)
        return True

    async def get_my_commands(self, p: Params) -> Any:
        return self.commands.get(self._scope_key(p), [])

    async def delete_my_commands(self, p: Params) -> Any:
        self.commands.pop(self._scope_key(p), None)
        return True

    def _profile_setter(self, field: str, max_len: int) -> Handler:
        async def setter(p: Params) -> Any:
            value = p.opt_str(field) or ""
            if len(value) > max_len:
                raise bad_request(f"{field.replace('_', ' ')} is too long")
            key = f"{field}|{p.opt_str('language_code') or ''}"
            if value:
                self.profile[key] = value
            else:
                self.profile.pop(key, None)
            return True

        return setter

    def _profile_getter(self, field: str) -> Handler:
        async def getter(p: Params) -> Any:
            key = f"{field}|{p.opt_str('language_code') or ''}"
            default = self.world.bot_first_name if field == "name" else ""
            return {field: self.profile.get(key, default)}

        return getter

    async def set_chat_menu_button(self, p: Params) -> Any:
        button = p.json("menu_button", "can't parse menu button JSON object")
        if button is None:
            button = {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise bad_request("can't parse menu button JSON object")
        chat_id = p.opt_int("chat_id")
        if chat_id is not None:
            self.world.chat_for_bot(chat_id)
        self.menu_buttons[chat_id] = button
        return True

    async def get_chat_menu_button(self, p: Params) -> Any:
        chat_id = p.opt_int("chat_id")
        return self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {"type": "commands"}
