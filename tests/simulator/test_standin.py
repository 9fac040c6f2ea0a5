"""The Telegram stand-in driven by a real python-telegram-bot ``Bot``/``Application`` and by raw HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import telegram
from standin_helpers import BOT_ID, TOKEN, USER, api, make_bot
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from devtools.simulator import Fault, RateLimit, TelegramStandIn
from devtools.simulator.media import tiny_png
from devtools.simulator.server import HttpServer

# PTB 22 itself warns about RetryAfter.retry_after becoming a timedelta when it builds the exception.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(text, callback_data=data) for text, data in buttons]])


# --------------------------------------------------------------------------- envelope, tokens, methods


async def test_get_me_envelope_and_bot_identity(standin: TelegramStandIn, http: httpx.AsyncClient) -> None:
    response = await http.get(api("getMe"))
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    me = body["result"]
    assert me["id"] == BOT_ID and me["is_bot"] is True
    assert me["username"] == "iop_companion_bot" and me["first_name"] == "IOP Companion"
    assert me["can_join_groups"] is True and me["can_read_all_group_messages"] is False

    async with make_bot(standin) as bot:  # initialize() calls getMe
        assert bot.username == "iop_companion_bot"
        assert await bot.log_out() is True
        assert await bot.close() is True
    assert [c.method for c in standin.calls][:2] == ["getMe", "getMe"]
    assert all(c.status == 200 for c in standin.calls)


async def test_unauthorized_token_and_unknown_method(
    standin: TelegramStandIn, http: httpx.AsyncClient
) -> None:
    for token in ("nonsense", "123:short", "abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"):
        response = await http.post(api("getMe", token))
        assert response.status_code == 401
        assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    response = await http.post(api("sendTelepathy"))
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert (await http.get(api("GETME"))).json()["ok"] is True  # method names are case-insensitive
    assert [c.status for c in standin.calls] == [401, 401, 401, 404, 200]

    with pytest.raises(InvalidToken):
        async with make_bot(standin, token="12:not-a-valid-token"):
            pass


async def test_only_the_configured_token_is_accepted() -> None:
    async with TelegramStandIn(token=TOKEN) as sim, httpx.AsyncClient(trust_env=False) as client:
        other = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
        assert (await client.get(sim.base_url + api("getMe", other))).status_code == 401
        assert (await client.get(sim.base_url + api("getMe"))).json()["result"]["id"] == BOT_ID


# --------------------------------------------------------------------------- sending rules


async def test_chat_not_found_until_the_user_writes(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)Chat not found"):
        await bot.send_message(USER, "hello?")
    await standin.send_text(USER, "hi")
    message = await bot.send_message(USER, "hello!")
    assert message.chat.id == USER and message.chat.type == "private" and message.chat.first_name == "Test"
    assert message.from_user is not None and message.from_user.id == BOT_ID and message.from_user.is_bot


async def test_text_length_rules(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    with pytest.raises(BadRequest, match=r"(?i)Message text is empty"):
        await bot.send_message(USER, "")
    with pytest.raises(BadRequest, match=r"(?i)Message text is empty"):
        await bot.send_message(USER, "  \n ")
    with pytest.raises(BadRequest, match=r"(?i)Message is too long"):
        await bot.send_message(USER, "x" * 4097)
    ok = await bot.send_message(USER, "é" * 4096)  # characters, not bytes
    assert ok.text == "é" * 4096
    # limits count the text after entity parsing
    await bot.send_message(USER, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    assert standin.sent_count(USER) == 2


async def test_callback_data_is_limited_to_64_bytes(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    await bot.send_message(USER, "ok", reply_markup=keyboard(("A", "a" * 64)))
    with pytest.raises(BadRequest, match=r"(?i)Button_data_invalid"):
        await bot.send_message(USER, "too long", reply_markup=keyboard(("A", "a" * 65)))
    with pytest.raises(BadRequest, match=r"(?i)Button_data_invalid"):
        await bot.send_message(USER, "multibyte", reply_markup=keyboard(("A", "é" * 33)))  # 66 bytes
    with pytest.raises(BadRequest, match=r"(?i)Text buttons are unallowed"):
        await bot.send_message(
            USER, "no action", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("plain")]])
        )
    with pytest.raises(BadRequest, match=r"(?i)Button_text_invalid"):
        await bot.send_message(USER, "empty label", reply_markup=keyboard(("", "x")))
    assert standin.sent_count(USER) == 1
    assert standin.transcript(USER)[0].buttons() == [("A", "a" * 64)]


async def test_reply_keyboards_are_accepted_and_stored(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    sent = await bot.send_message(
        USER, "pick", reply_markup=telegram.ReplyKeyboardMarkup([["Good", "Bad"]], one_time_keyboard=True)
    )
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    await bot.send_message(USER, "gone", reply_markup=telegram.ReplyKeyboardRemove())
    await bot.send_message(USER, "answer me", reply_markup=telegram.ForceReply())
    first, second, third = standin.transcript(USER)
    assert first.reply_keyboard() == ["Good", "Bad"]
    assert second.reply_markup == {"remove_keyboard": True}
    assert third.reply_markup is not None and third.reply_markup["force_reply"] is True


async def test_parse_modes(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    sent = await bot.send_message(
        USER, "<b>Bold</b> &amp; <i>it</i> <a href='https://x.org'>l</a>", parse_mode="HTML"
    )
    assert sent.text == "Bold & it l"
    assert sent.text_html == '<b>Bold</b> &amp; <i>it</i> <a href="https://x.org">l</a>'
    stored = standin.transcript(USER)[-1]
    assert stored.text == "Bold & it l" and stored.parse_mode == "HTML"
    assert stored.raw_text == "<b>Bold</b> &amp; <i>it</i> <a href='https://x.org'>l</a>"

    with pytest.raises(BadRequest, match=r'(?i)Unsupported start tag "br"'):
        await bot.send_message(USER, "line<br>break", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r'(?i)Can\'t find end tag corresponding to start tag "b"'):
        await bot.send_message(USER, "<b>open", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)Unmatched end tag"):
        await bot.send_message(USER, "<b>x</i>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)Character '.' is reserved"):
        await bot.send_message(USER, "*Day 1.*", parse_mode="MarkdownV2")
    md = await bot.send_message(USER, "*Day 1\\.* _done_", parse_mode="MarkdownV2")
    assert md.text == "Day 1. done"
    assert [e.type for e in md.entities] == ["bold", "italic"]
    with pytest.raises(BadRequest, match=r"(?i)Unsupported parse_mode"):
        await bot.send_message(USER, "x", parse_mode="BBCode")


async def test_message_ids_are_per_chat_and_shared_with_the_user(
    standin: TelegramStandIn, bot: telegram.Bot
) -> None:
    assert await standin.send_text(USER, "one") == 1
    assert (await bot.send_message(USER, "two")).message_id == 2
    assert await standin.send_text(USER, "three") == 3
    assert await standin.send_text(USER + 1, "other chat") == 1
    reply = await bot.send_message(USER, "re", reply_parameters=telegram.ReplyParameters(3))
    assert reply.message_id == 4
    assert reply.reply_to_message is not None and reply.reply_to_message.text == "three"
    with pytest.raises(BadRequest, match=r"(?i)Message to be replied not found"):
        await bot.send_message(USER, "re", reply_parameters=telegram.ReplyParameters(99))


# --------------------------------------------------------------------------- edit / delete / callbacks


async def test_edit_rules(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    user_message = await standin.send_text(USER, "hi")
    sent = await bot.send_message(USER, "Question?", reply_markup=keyboard(("Yes", "y"), ("No", "n")))

    with pytest.raises(BadRequest, match=r"(?i)Message is not modified"):
        await bot.edit_message_text(
            "Question?", USER, sent.message_id, reply_markup=keyboard(("Yes", "y"), ("No", "n"))
        )
    with pytest.raises(BadRequest, match=r"(?i)Message to edit not found"):
        await bot.edit_message_text("x", USER, 999)
    with pytest.raises(BadRequest, match=r"(?i)Message can't be edited"):
        await bot.edit_message_text("x", USER, user_message)

    # same text, keyboard dropped: that *is* a modification (and the keyboard is gone, like on Telegram)
    edited = await bot.edit_message_text("Question?", USER, sent.message_id)
    assert isinstance(edited, telegram.Message) and edited.edit_date is not None
    current = standin.transcript(USER)[0]
    assert current.edited and current.buttons() == [] and current.text == "Question?"

    await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard(("Again", "a")))
    with pytest.raises(BadRequest, match=r"(?i)Message is not modified"):
        await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard(("Again", "a")))
    assert standin.transcript(USER)[0].buttons() == [("Again", "a")]
    await bot.edit_message_text("<b>Answered</b>", USER, sent.message_id, parse_mode="HTML")
    final = standin.transcript(USER)[0]
    assert final.text == "Answered" and final.raw_text == "<b>Answered</b>" and final.buttons() == []


async def test_delete_rules(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    sent = await bot.send_message(USER, "temporary")
    with pytest.raises(BadRequest, match=r"(?i)Message to delete not found"):
        await bot.delete_message(USER, 999)
    assert await bot.delete_message(USER, sent.message_id) is True
    assert standin.transcript(USER)[0].deleted
    with pytest.raises(BadRequest, match=r"(?i)Message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)Message to edit not found"):
        await bot.edit_message_text("back?", USER, sent.message_id)


async def test_callback_queries(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi", first_name="Dana", language_code="es")
    sent = await bot.send_message(
        USER, "Mood?", reply_markup=keyboard(("Good", "mood:good"), ("Bad", "mood:bad"))
    )

    with pytest.raises(ValueError, match=r"(?i)no button"):
        await standin.tap(USER, sent.message_id, "mood:meh")
    query_id = await standin.tap(USER, sent.message_id, "mood:good")
    updates = await bot.get_updates(timeout=0)
    query = updates[-1].callback_query
    assert query is not None and query.id == query_id and query.data == "mood:good"
    assert query.from_user.first_name == "Dana" and query.from_user.language_code == "es"
    assert query.chat_instance and isinstance(query.message, telegram.Message)
    assert query.message.message_id == sent.message_id and query.message.text == "Mood?"

    with pytest.raises(BadRequest, match=r"(?i)Message_too_long"):
        await bot.answer_callback_query(query_id, text="x" * 201)
    assert await bot.answer_callback_query(query_id, text="Noted", show_alert=True)
    answer = await standin.wait_for_callback_answer(query_id)
    assert answer["text"] == "Noted" and answer["show_alert"] is True
    with pytest.raises(BadRequest, match=r"(?i)Query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match=r"(?i)Query is too old"):
        await bot.answer_callback_query("12345")

    # forged/replayed data goes through tap_raw; a gone message arrives as InaccessibleMessage
    forged = await standin.tap_raw(USER, sent.message_id, "admin:delete_all")
    gone = await standin.tap_raw(USER, 999, "mood:good")
    updates = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert [u.callback_query.id for u in updates if u.callback_query] == [forged, gone]
    gone_query = updates[1].callback_query
    assert gone_query is not None and gone_query.message is not None
    assert not gone_query.message.is_accessible and gone_query.message.message_id == 999

    await bot.delete_message(USER, sent.message_id)
    with pytest.raises(ValueError, match=r"(?i)no bot message"):
        await standin.tap(USER, sent.message_id, "mood:good")


async def test_wait_for_matches_new_and_edited_messages(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    first = await bot.send_message(USER, "Loading…")
    mark = standin.mark(USER)
    assert mark == 1

    async def later() -> None:
        await bot.edit_message_text("Ready: 3 tasks", USER, first.message_id)
        await bot.send_message(USER, "Anything else?")

    task = asyncio.create_task(later())
    assert (await standin.wait_for(USER, "ready")).message_id == first.message_id  # edits count
    assert (await standin.wait_for(USER, lambda m: m.text == "Anything else?", after=mark)).message_id == 3
    await task
    with pytest.raises(AssertionError, match=r"(?i)(?s)matched text containing 'nope'.*Ready: 3 tasks"):
        await standin.wait_for(USER, "nope", timeout=0.05)


# --------------------------------------------------------------------------- updates: polling


async def test_long_poll_is_answered_as_soon_as_a_user_writes(
    standin: TelegramStandIn, bot: telegram.Bot
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await standin.wait_for_call("getUpdates")  # the request is now waiting server-side
    started = time.monotonic()
    await standin.send_text(USER, "/start", first_name="Ana")
    updates = await poll
    assert time.monotonic() - started < 1.0
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "/start" and message.from_user is not None
    assert message.from_user.first_name == "Ana" and message.from_user.is_bot is False
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 6


async def test_offsets_confirm_updates(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    for text in ("a", "b", "c"):
        await standin.send_text(USER, text)
    updates = await bot.get_updates(timeout=0)
    ids = [u.update_id for u in updates]
    assert [u.message.text for u in updates if u.message] == ["a", "b", "c"]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == ids  # not confirmed yet
    assert [u.update_id for u in await bot.get_updates(offset=ids[1], limit=1, timeout=0)] == [ids[1]]
    assert await bot.get_updates(offset=ids[-1] + 1, timeout=0) == ()
    assert standin.pending_updates == 0

    await standin.send_text(USER, "d")
    await standin.send_text(USER, "e")
    latest = await bot.get_updates(offset=-1, timeout=0)
    assert [u.message.text for u in latest if u.message] == ["e"]
    assert latest[0].update_id > ids[-1]


async def test_allowed_updates_filter_new_updates(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "before")
    sent = await bot.send_message(USER, "tap", reply_markup=keyboard(("ok", "ok")))
    first = await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
    await standin.send_text(USER, "ignored")
    await standin.tap(USER, sent.message_id, "ok")
    updates = await bot.get_updates(timeout=0)
    assert [u.callback_query is not None for u in updates] == [True]
    await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0, allowed_updates=[])  # back to default
    await standin.send_text(USER, "seen again")
    assert [u.message.text for u in await bot.get_updates(timeout=0) if u.message] == ["seen again"]


async def test_a_second_poll_terminates_the_first(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await standin.wait_for_call("getUpdates")
    async with make_bot(standin) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates request"):
        await first


async def test_user_media_edits_forwards_and_groups(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    await standin.send_sticker(USER, emoji="🔥")
    await standin.send_photo(USER, caption="my meds")
    await standin.send_voice(USER, duration=7)
    await standin.send_document(USER, file_name="discharge.pdf")
    text_id = await standin.send_text(USER, "fwd", forward_from_user_id=777)
    await standin.edit_user_message(USER, text_id, "fwd (edited)")
    await standin.send_text(5, "/checkin@iop_companion_bot now", chat_id=-100123, chat_type="supergroup")
    await standin.send_text(5, "plain group chatter", chat_id=-100123, chat_type="supergroup")

    updates = await bot.get_updates(timeout=0)
    messages = [u.effective_message for u in updates]
    assert messages[1] is not None and messages[1].sticker is not None and messages[1].sticker.emoji == "🔥"
    photo_message = messages[2]
    assert photo_message is not None and photo_message.caption == "my meds"
    photo_file = await photo_message.photo[-1].get_file()
    assert bytes(await photo_file.download_as_bytearray()).startswith(b"\x89PNG")
    assert (
        messages[3] is not None
        and messages[3].voice is not None
        and messages[3].voice.to_dict()["duration"] == 7
    )
    document = messages[4] and messages[4].document
    assert document and document.file_name == "discharge.pdf" and document.mime_type == "application/pdf"
    forwarded = messages[5]
    assert forwarded is not None and isinstance(forwarded.forward_origin, telegram.MessageOriginUser)
    assert forwarded.forward_origin.sender_user.id == 777
    assert updates[6].edited_message is not None and updates[6].edited_message.text == "fwd (edited)"
    group = updates[7].message
    assert group is not None and group.chat.type == "supergroup" and group.chat.id == -100123
    assert len(updates) == 8  # group privacy mode: plain chatter in groups never reaches the bot
    assert (await bot.send_message(-100123, "hello group")).chat.title

    with pytest.raises(ValueError):
        await standin.send_text(USER, "")
    with pytest.raises(ValueError):
        await standin.send_text(5, "x", chat_type="group")


async def test_blocking_the_bot(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    standin.block_bot(USER)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(USER, "still there?")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(USER, "typing")
    with pytest.raises(ValueError, match=r"(?i)blocked"):
        await standin.send_text(USER, "can't write while blocked")
    updates = await bot.get_updates(timeout=0)
    member_update = updates[-1].my_chat_member
    assert member_update is not None and member_update.new_chat_member.status == "kicked"
    standin.block_bot(USER, False)
    assert (await bot.send_message(USER, "welcome back")).text == "welcome back"
    assert await bot.send_chat_action(USER, "typing") is True
    assert standin.chat_action(USER) == "typing"


# --------------------------------------------------------------------------- request encodings & files


async def test_json_form_multipart_and_query_bodies(
    standin: TelegramStandIn, http: httpx.AsyncClient
) -> None:
    await standin.send_text(USER, "hi")
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}

    as_json = await http.post(
        api("sendMessage"), json={"chat_id": USER, "text": "json", "reply_markup": markup}
    )
    as_form = await http.post(
        api("sendMessage"),
        data={
            "chat_id": str(USER),
            "text": "form",
            "reply_markup": json.dumps(markup),
            "disable_notification": "true",
        },
    )
    as_multipart = await http.post(
        api("sendPhoto"),
        data={"chat_id": str(USER), "caption": "multipart", "reply_markup": json.dumps(markup)},
        files={"photo": ("chart.png", tiny_png(16, 9), "image/png")},
    )
    as_query = await http.get(api("sendMessage"), params={"chat_id": str(USER), "text": "query"})
    for response in (as_json, as_form, as_multipart, as_query):
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
    assert [m.text for m in standin.transcript(USER)] == ["json", "form", "multipart", "query"]
    assert [m.buttons() for m in standin.transcript(USER)][:3] == [[("A", "a")]] * 3

    form_call = standin.calls[1]
    assert form_call.method == "sendMessage" and form_call.chat_id == USER
    assert form_call.params["chat_id"] == USER and form_call.params["reply_markup"] == markup
    assert form_call.params["disable_notification"] is True
    photo = as_multipart.json()["result"]["photo"][-1]
    assert (photo["width"], photo["height"]) == (16, 9)

    bad = await http.post(
        api("sendMessage"), data={"chat_id": str(USER), "text": "x", "reply_markup": "{nope"}
    )
    assert bad.status_code == 400
    assert bad.json()["description"] == "Bad Request: can't parse reply keyboard markup JSON object"
    broken = await http.post(api("sendMessage"), content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["ok"] is False


async def test_photos_and_documents_keep_the_uploaded_bytes(
    standin: TelegramStandIn, bot: telegram.Bot
) -> None:
    await standin.send_text(USER, "hi")
    png = tiny_png(40, 20)
    sent = await bot.send_photo(USER, photo=png, caption="<b>Your week</b>", parse_mode="HTML")
    assert sent.caption == "Your week" and sent.photo[-1].width == 40
    doc = await bot.send_document(USER, document=b"%PDF-1.4 report", filename="week.pdf", caption="report")
    assert doc.document is not None and doc.document.file_name == "week.pdf"
    again = await bot.send_photo(USER, photo=sent.photo[-1].file_id)  # re-send by file_id

    photo_message, doc_message, again_message = standin.transcript(USER)
    assert (
        photo_message.kind == "photo"
        and photo_message.file_bytes == png
        and photo_message.text == "Your week"
    )
    assert doc_message.kind == "document" and doc_message.file_name == "week.pdf"
    assert doc_message.file_bytes == b"%PDF-1.4 report" and doc_message.mime_type == "application/pdf"
    assert again_message.file_bytes == png and again.photo[-1].file_id == sent.photo[-1].file_id

    downloaded = await (await bot.get_file(doc.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == b"%PDF-1.4 report"

    with pytest.raises(BadRequest, match=r"(?i)Image_process_failed"):
        await bot.send_photo(USER, photo=b"definitely not an image")
    with pytest.raises(BadRequest, match=r"(?i)Message caption is too long"):
        await bot.send_photo(USER, photo=png, caption="x" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)Wrong file identifier"):
        await bot.send_photo(USER, photo="AgACunknown")
    with pytest.raises(BadRequest, match=r"(?i)can't use file of type Document as Photo"):
        await bot.send_photo(USER, photo=doc.document.file_id)
    assert standin.sent_count(USER) == 3


async def test_commands_and_profile(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    commands = [telegram.BotCommand("start", "Start"), telegram.BotCommand("checkin", "Daily check-in")]
    assert await bot.set_my_commands(commands)
    assert [c.command for c in await bot.get_my_commands()] == ["start", "checkin"]
    assert standin.commands() == [
        {"command": "start", "description": "Start"},
        {"command": "checkin", "description": "Daily check-in"},
    ]
    scope = telegram.BotCommandScopeAllPrivateChats()
    assert await bot.get_my_commands(scope=scope) == ()
    with pytest.raises(BadRequest, match=r"(?i)Bot_command_invalid"):
        await bot.set_my_commands([telegram.BotCommand("CheckIn", "x")])
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    assert await bot.set_my_description("Supports your recovery")
    assert (await bot.get_my_description()).description == "Supports your recovery"


# --------------------------------------------------------------------------- faults & flood limits


async def test_injected_faults(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    await standin.send_text(USER, "hi")
    await standin.send_text(USER + 1, "hi")

    standin.inject("sendMessage", Fault.too_many_requests(7))
    with pytest.raises(RetryAfter, match="Retry in 7 seconds"):
        await bot.send_message(USER, "x")

    standin.inject("sendMessage", Fault.blocked(), chat_id=USER + 1)
    assert (await bot.send_message(USER, "other chat unaffected")).text
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(USER + 1, "x")

    standin.inject("*", Fault.server_error(), times=2)
    with pytest.raises(NetworkError, match=r"(?i)Bad Gateway"):
        await bot.send_chat_action(USER, "typing")
    with pytest.raises(NetworkError, match=r"(?i)Bad Gateway"):
        await bot.get_me()
    standin.inject("sendMessage", Fault.server_error(500))
    with pytest.raises(NetworkError, match=r"(?i)Internal Server Error"):
        await bot.send_message(USER, "x")

    standin.inject("sendMessage", Fault.slow(0.3))
    started = time.monotonic()
    await bot.send_message(USER, "slow but sent")
    assert time.monotonic() - started >= 0.3
    # a slow call whose client gives up still takes effect, like a lost response on Telegram
    standin.inject("sendMessage", Fault.slow(0.3))
    with pytest.raises(telegram.error.TimedOut):
        await bot.send_message(USER, "sent twice?", read_timeout=0.05)
    assert (await standin.wait_for(USER, "sent twice?")).text == "sent twice?"

    standin.inject("sendMessage", Fault.blocked(), times=5)
    standin.clear_faults()
    assert (await bot.send_message(USER, "fine")).text == "fine"
    statuses = [c.status for c in standin.calls if c.method == "sendMessage"]
    assert statuses == [429, 200, 403, 500, 200, 200, 200]


async def test_rate_limit_per_chat_and_global() -> None:
    limit = RateLimit(global_per_s=1000, per_chat_per_s=1, burst=2)
    async with TelegramStandIn(rate_limit=limit) as sim, httpx.AsyncClient(trust_env=False) as client:
        await sim.send_text(USER, "hi")
        await sim.send_text(USER + 1, "hi")
        url = sim.base_url + api("sendMessage")
        statuses = [
            (await client.post(url, json={"chat_id": USER, "text": f"m{i}"})).status_code for i in range(3)
        ]
        assert statuses == [200, 200, 429]
        rejected = await client.post(url, json={"chat_id": USER, "text": "again"})
        assert rejected.json() == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        }
        assert (await client.post(url, json={"chat_id": USER + 1, "text": "other chat"})).status_code == 200
        # validation failures don't use up the budget
        assert (await client.post(url, json={"chat_id": USER + 1, "text": ""})).status_code == 400
        assert (await client.post(url, json={"chat_id": USER + 1, "text": "still ok"})).status_code == 200
        async with make_bot(sim) as ptb_bot:
            with pytest.raises(RetryAfter):
                await ptb_bot.send_message(USER, "flood")
            assert await ptb_bot.send_chat_action(USER, "typing")  # not a send

    # Five at once, then one every two seconds: the seven sends below take far less than that.
    limit = RateLimit(global_per_s=0.5, global_burst=5, per_chat_per_s=100, burst=100)
    async with TelegramStandIn(rate_limit=limit) as sim, httpx.AsyncClient(trust_env=False) as client:
        for user in range(1, 8):
            await sim.send_text(user, "hi")
        url = sim.base_url + api("sendMessage")
        codes = [(await client.post(url, json={"chat_id": u, "text": "x"})).status_code for u in range(1, 8)]
        assert codes == [200] * 5 + [429] * 2
        assert sim.rate_limited == 2


async def test_a_user_added_without_writing_can_be_messaged() -> None:
    async with TelegramStandIn() as sim, httpx.AsyncClient(trust_env=False) as client:
        url = sim.base_url + api("sendMessage")
        refused = await client.post(url, json={"chat_id": 424242, "text": "hello"})
        assert refused.status_code == 400 and "chat not found" in refused.json()["description"]
        sim.add_user(424242, first_name="Ana")
        assert (await client.post(url, json={"chat_id": 424242, "text": "hello"})).status_code == 200
        assert sim.sent_count(424242) == 1 and sim.pending_updates == 0  # no update: they wrote earlier
        assert sim.rate_limited == 0


# --------------------------------------------------------------------------- webhook


class Receiver:
    """A tiny local webhook endpoint that fails the first ``failures`` deliveries with 500."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[str | None, dict[str, Any]]] = []
        self.attempts = 0
        self.changed = asyncio.Event()
        self.server = HttpServer(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> Response:
        self.attempts += 1
        self.changed.set()
        if self.failures > 0:
            self.failures -= 1
            return JSONResponse({"error": "boom"}, status_code=500)
        self.received.append((request.headers.get("x-telegram-bot-api-secret-token"), await request.json()))
        return Response(status_code=200)

    async def wait_received(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_webhook_delivery_with_secret_and_retries(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    receiver = Receiver(failures=2)
    await receiver.server.start("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{receiver.server.port}/hook"
        pending_poll = asyncio.create_task(bot.get_updates(timeout=10))
        await standin.wait_for_call("getUpdates")
        assert await bot.set_webhook(url, secret_token="s3cret_Token-1")
        with pytest.raises(Conflict, match=r"(?i)terminated by setWebhook request"):
            await pending_poll
        with pytest.raises(Conflict, match=r"(?i)can't use getUpdates method while webhook is active"):
            await bot.get_updates()

        await standin.send_text(USER, "first")
        await standin.send_text(USER, "second")
        await receiver.wait_received(2)
        assert receiver.attempts == 4  # two failures, then both delivered in order
        assert [secret for secret, _ in receiver.received] == ["s3cret_Token-1"] * 2
        assert [u["message"]["text"] for _, u in receiver.received] == ["first", "second"]
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"

        with pytest.raises(BadRequest, match=r"(?i)bad webhook"):
            await bot.set_webhook("https://example.com/hook")
        assert await bot.delete_webhook()
        await standin.send_text(USER, "polled again")
        assert [u.message.text for u in await bot.get_updates(timeout=0) if u.message] == ["polled again"]
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await receiver.server.stop()


class HoldingReceiver:
    """A webhook endpoint that holds its answer to the update with text `held` until `release` is set, and
    records what arrives (text) and how many posts were open at once."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.release = asyncio.Event()
        self.arrived: list[str] = []
        self.open = 0
        self.most_open = 0
        self.changed = asyncio.Event()
        self.server = HttpServer(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> Response:
        text = (await request.json())["message"]["text"]
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self.arrived.append(text)
        self.changed.set()
        try:
            if text == self.held:
                await self.release.wait()
            return Response(status_code=200)
        finally:
            self.open -= 1

    async def wait_arrived(self, text: str, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while text not in self.arrived:
                self.changed.clear()
                await self.changed.wait()


async def test_webhook_posts_chats_at_once_and_each_chat_in_order(
    standin: TelegramStandIn, bot: telegram.Bot
) -> None:
    """As Telegram's Bot API server does: a chat's next update waits until its last one was answered; other
    chats' updates do not wait for it (up to max_connections posts at once)."""
    other = USER + 1
    receiver = HoldingReceiver(held="first")
    await receiver.server.start("127.0.0.1", 0)
    try:
        assert await bot.set_webhook(f"http://127.0.0.1:{receiver.server.port}/hook", max_connections=5)
        await standin.send_text(USER, "first")
        await standin.send_text(USER, "second")
        await standin.send_text(other, "another chat")
        await receiver.wait_arrived("another chat")  # while "first" is still unanswered
        assert receiver.arrived == ["first", "another chat"]  # "second" waits for "first"'s answer
        assert receiver.most_open == 2
        receiver.release.set()
        await receiver.wait_arrived("second")
        assert receiver.arrived == ["first", "another chat", "second"]
    finally:
        receiver.release.set()
        await receiver.server.stop()


async def test_webhook_down_keeps_updates_pending(standin: TelegramStandIn, bot: telegram.Bot) -> None:
    receiver = Receiver()
    await receiver.server.start("127.0.0.1", 0)
    port = receiver.server.port
    await receiver.server.stop()  # nothing listens there any more: a killed bot process
    await bot.set_webhook(f"http://127.0.0.1:{port}/hook")
    await standin.send_text(USER, "while you were down")
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    await bot.delete_webhook()
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["while you were down"]


# --------------------------------------------------------------------------- lifecycle & control API


async def test_stop_is_fast_with_a_pending_long_poll() -> None:
    sim = TelegramStandIn()
    await sim.start()
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        poll = asyncio.create_task(client.post(sim.base_url + api("getUpdates"), json={"timeout": 50}))
        await sim.wait_for_call("getUpdates")
        started = time.monotonic()
        await sim.stop()
        assert time.monotonic() - started < 1.0
        response = await poll
        assert response.json() == {"ok": True, "result": []}
    await sim.stop()  # idempotent


async def test_http_control_api(standin: TelegramStandIn, bot: telegram.Bot, http: httpx.AsyncClient) -> None:
    sent = await http.post("/_sim/send_text", json={"user_id": USER, "text": "/start"})
    assert sent.json() == {"ok": True, "result": {"message_id": 1}}
    updates = await bot.get_updates(timeout=0)
    assert updates[0].message is not None and updates[0].message.text == "/start"
    menu = await bot.send_message(USER, "Menu", reply_markup=keyboard(("Check in", "checkin")))

    transcript = (await http.get(f"/_sim/transcript/{USER}")).json()["result"]
    assert transcript[0]["text"] == "Menu" and transcript[0]["buttons"] == [["Check in", "checkin"]]
    tapped = await http.post(
        "/_sim/tap", json={"user_id": USER, "message_id": menu.message_id, "callback_data": "checkin"}
    )
    query_id = tapped.json()["result"]["callback_query_id"]
    missing = await http.post(
        "/_sim/tap", json={"user_id": USER, "message_id": menu.message_id, "callback_data": "x"}
    )
    assert missing.status_code == 400 and "no button" in missing.json()["description"]
    await bot.answer_callback_query(query_id, text="ok")
    answer = await http.get(f"/_sim/callback_answer/{query_id}", params={"timeout": "1"})
    assert answer.json()["result"]["text"] == "ok"

    waited = await http.post("/_sim/wait_for", json={"chat_id": USER, "contains": "menu"})
    assert waited.json()["result"]["message_id"] == menu.message_id
    timed_out = await http.post("/_sim/wait_for", json={"chat_id": USER, "contains": "nope", "timeout": 0.05})
    assert timed_out.status_code == 408 and "Menu" in timed_out.json()["description"]

    injected = await http.post(
        "/_sim/inject",
        json={"method": "sendMessage", "fault": {"kind": "too_many_requests", "retry_after": 2}},
    )
    assert injected.json()["ok"]
    with pytest.raises(RetryAfter):
        await bot.send_message(USER, "x")
    assert (await http.post("/_sim/block_bot", json={"user_id": USER})).json()["ok"]
    with pytest.raises(Forbidden):
        await bot.send_message(USER, "x")
    assert (await http.post("/_sim/block_bot", json={"user_id": USER, "blocked": False})).json()["ok"]
    assert (await http.post("/_sim/clear_faults")).json()["ok"]

    calls = (await http.get("/_sim/calls", params={"method": "sendMessage"})).json()["result"]
    assert [c["status"] for c in calls] == [200, 429, 403]
    assert (await http.get("/_sim/sent_count", params={"chat_id": str(USER)})).json()["result"] == 1
    for path in ("send_sticker", "send_photo", "send_voice", "send_document"):
        assert (await http.post(f"/_sim/{path}", json={"user_id": USER})).json()["ok"]
    assert (await http.post("/_sim/send_text", json={"text": "no user"})).status_code == 400
    assert (await http.post("/_sim/inject", json={"fault": {"kind": "gremlins"}})).status_code == 400
    assert (await http.get("/_sim/health")).json()["result"]["base_url"] == standin.base_url


# --------------------------------------------------------------------------- a real PTB Application


async def test_ptb_application_end_to_end(standin: TelegramStandIn) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(
            f"You said: {update.message.text}", reply_markup=keyboard(("👍", "like"), ("👎", "dislike"))
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer(f"Thanks for the {query.data}")
        await query.edit_message_text(f"Feedback: {query.data}")

    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(f"{standin.base_url}/bot")
        .base_file_url(f"{standin.base_url}/file/bot")
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(CallbackQueryHandler(on_button))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        mark = standin.mark(USER)
        await standin.send_text(USER, "I feel okay today")
        reply = await standin.wait_for(USER, "you said: i feel okay today", after=mark)
        assert reply.buttons() == [("👍", "like"), ("👎", "dislike")]

        query_id = await standin.tap(USER, reply.message_id, "like")
        answer = await standin.wait_for_callback_answer(query_id)
        assert answer["text"] == "Thanks for the like"
        edited = await standin.wait_for(USER, lambda m: m.edited and m.text == "Feedback: like")
        assert edited.message_id == reply.message_id and edited.buttons() == []
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert standin.pending_updates == 0  # PTB confirmed everything it handled
