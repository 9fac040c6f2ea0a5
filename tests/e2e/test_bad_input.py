"""Odd input never crashes the bot or shows a stack trace: each gets a short, kind answer or is ignored."""

from __future__ import annotations

import logging

import pytest

from bot.core.models import InviteKind
from bot.enrollment import onboarding
from tests.harness import BotHarness


async def _alive(harness: BotHarness, user: int) -> None:
    await harness.say(user, "/help", "/privacy")


async def test_media_edits_forwards_and_unknown_commands(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    standin = harness.standin
    for send in (standin.send_sticker, standin.send_photo, standin.send_voice, standin.send_document):
        mark = standin.mark(user)
        await send(user)
        await standin.wait_for(user, harness.part("input.non_text"), after=mark)
    mark = standin.mark(user)
    message_id = await standin.send_text(user, "I feel fine")
    await standin.wait_for(user, harness.part("input.not_understood"), after=mark)
    mark = standin.mark(user)
    await standin.edit_user_message(user, message_id, "I feel fine today")
    await standin.wait_for(user, harness.part("input.edited"), after=mark)
    await harness.say(user, "look at this", harness.part("input.forwarded"), forward_from_user_id=42)
    await harness.say(user, "/frobnicate now", harness.part("input.unknown_command"))
    await harness.say(user, "/help@iop_companion_bot", "/privacy")
    await _alive(harness, user)


async def test_huge_text_gets_a_short_answer(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    reply = await harness.say(user, "word " * 800, harness.part("input.not_understood"))
    assert len(reply.text or "") < 500


async def test_group_messages_are_ignored_and_commands_redirected(harness: BotHarness) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    group = -100123
    mark = harness.standin.mark(group)
    await harness.standin.send_text(user, "hello group", chat_id=group, chat_type="group")
    await harness.standin.send_text(user, "/help", chat_id=group, chat_type="group")
    reply = await harness.standin.wait_for(group, harness.part("input.group_chat"), after=mark)
    assert [m.text for m in harness.standin.transcript(group)] == [reply.text]
    await _alive(harness, user)


async def test_forged_and_stale_buttons(harness: BotHarness) -> None:
    user = harness.new_user_id()
    code = await harness.invite(InviteKind.PATIENT, await harness.add_counselor())
    consent = await harness.say(user, f"/start {code}", harness.part("consent.screen"))
    standin = harness.standin
    for forged in ("consent:hack", "x" * 64, "tz:America/New_York", "revoke:confirm", "lang:es", "🙂"):
        query = await standin.tap_raw(user, consent.message_id, forged)
        answer = await standin.wait_for_callback_answer(query)
        assert harness.part("input.button_expired") in answer.get("text", ""), forged
    # A forged time zone while the time zone question is open is treated as a wrong answer, not trusted.
    zone_question = await harness.tap(
        user, consent, harness.text("consent.accept_button"), harness.part("onboarding.ask_timezone")
    )
    mark = standin.mark(user)
    await standin.tap_raw(user, zone_question.message_id, "tz:Mars/Olympus_Mons")
    await standin.wait_for(user, harness.part("onboarding.invalid_timezone"), after=mark)
    patient = await harness.patient(user)
    assert patient is not None and patient.timezone == "America/New_York"
    # A tap on a message that does not exist at all.
    query = await standin.tap_raw(user, 999_999, "consent:accept")
    answer = await standin.wait_for_callback_answer(query)
    assert harness.part("input.button_expired") in answer.get("text", "")
    await harness.tap(
        user,
        zone_question,
        harness.text("onboarding.zones.los_angeles"),
        harness.part("onboarding.ask_checkin_time"),
    )


async def test_a_failing_handler_apologises_with_a_reference_and_logs_no_text(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    user = harness.new_user_id()
    await harness.enroll(user, finish_setup=False)

    def broken(_text: str) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(onboarding, "parse_timezone", broken)
    secret = "my sponsor Jordan said America/Denver"
    with caplog.at_level(logging.INFO):
        apology = await harness.say(user, secret, "Reference:")
    reference = (apology.text or "").split("Reference: ")[1].split(")")[0]
    assert any(reference in record.getMessage() for record in caplog.records)
    assert not any(secret in record.getMessage() for record in caplog.records)
    assert "Traceback" not in (apology.text or "") and "boom" not in (apology.text or "")
    monkeypatch.undo()
    await harness.say(user, "America/Denver", harness.part("onboarding.ask_checkin_time"))


async def test_forged_ids_no_row_can_have_are_stale_buttons(harness: BotHarness) -> None:
    """Every button that carries an id, forged with one no row can have (12 digits, or just past PostgreSQL's
    integer): answered like a stale button, with no query made, so no database error and no apology."""
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id)
    standin = harness.standin
    expired = harness.runtime.text("input.button_expired", "en")
    mine, theirs = standin.transcript(user)[-1].message_id, standin.transcript(counselor_user)[-1].message_id
    marks = standin.mark(user), standin.mark(counselor_user)
    for big in (999_999_999_999, 2**31):
        for who, message_id, data in (
            (user, mine, f"ci:{big}:craving:5"),
            (user, mine, f"cs:{big}:before:5"),
            (user, mine, f"cs:{big}:next:0"),
            (user, mine, f"css:{big}:wish_dead:y"),
            (user, mine, f"rsvp:{big}:29000000:coming"),
            (user, mine, f"rsvp:1:{big}:coming"),
            (user, mine, f"rsvp:skip:{big}"),
            (user, mine, f"deleteme:yes:{big}"),
            (counselor_user, theirs, f"esc:{big}:ack"),
            (counselor_user, theirs, f"esc:{big}:out:safe"),
        ):
            query = await standin.tap_raw(who, message_id, data)
            answer = await standin.wait_for_callback_answer(query)
            assert answer.get("text") == expired, data
    # Nothing was sent to either chat (an apology would be): the next message's answer is the first.
    await harness.say(user, "/help", "/privacy")
    await harness.say(counselor_user, "/help", "/caseload")
    assert (standin.mark(user), standin.mark(counselor_user)) == (marks[0] + 1, marks[1] + 1)
