"""/mydata, /deleteme, `discharge` and `purge` through real HTTP, the real Application and database, and the
CLI (in this process, on its own event loop and engine) against the same database."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import func, select

from bot.core import db
from bot.core.models import AuditEvent, Escalation, EscalationAlert, Patient
from devtools.simulator import BotMessage
from tests.e2e.test_checkin_flow import _toggle
from tests.harness import BotHarness, CommandLine, Ran, document

NOTE = "Ana from group called me, that helped"
CRISIS = "i want to kill myself tonight"


async def _cli(cli: CommandLine, *args: str) -> Ran:
    """The CLI in a thread (it runs its own event loop); the bot keeps running meanwhile (it shares the
    database)."""
    return await asyncio.to_thread(cli, *args)


async def _audit_actions(harness: BotHarness) -> list[str]:
    async with harness.runtime.sessions() as session:
        return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


async def _crisis(harness: BotHarness, user: int, counselor_user: int) -> BotMessage:
    """The patient writes crisis words; the counselor's alert (with its buttons) arrives."""
    await harness.say(user, CRISIS, "988")
    return await harness.standin.wait_for(
        counselor_user, harness.part("escalation.alert", level=harness.text("escalation.levels.imminent"))
    )


async def _copy_recorded(harness: BotHarness, deadline: float = 10.0) -> None:
    """Wait until the dispatcher has recorded the alert's copy in the counselor's chat (it does so in its
    own transaction, just after sending)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        async with harness.runtime.sessions() as session:
            if await session.scalar(select(func.count()).select_from(EscalationAlert)):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the alert's copy was never recorded")


async def test_mydata_sends_everything_as_json_then_as_a_page(harness: BotHarness) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user = harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    craving = await harness.say(user, "/checkin", harness.part("checkin.ask.craving"))
    triggers = await harness.tap(user, craving, "6", harness.part("checkin.ask.triggers"))
    triggers = await _toggle(harness, user, triggers, harness.text("checkin.buttons.triggers.stress"))
    mood = await harness.tap(
        user, triggers, harness.text("checkin.buttons.done"), harness.part("checkin.ask.mood")
    )
    sleep = await harness.tap(user, mood, "3", harness.part("checkin.ask.sleep"))
    use = await harness.tap(
        user, sleep, harness.text("checkin.buttons.sleep.good"), harness.part("checkin.ask.use")
    )
    await harness.tap(user, use, harness.text("checkin.buttons.no"), harness.part("checkin.ask.note"))
    await harness.say(user, NOTE, harness.part("checkin.thanks"))
    await _crisis(harness, user, counselor_user)

    mark = harness.standin.mark(user)
    intro = await harness.say(user, "/mydata", harness.part("mydata.sending"))
    as_json = await harness.standin.wait_for(user, document(".json"), after=mark)
    as_page = await harness.standin.wait_for(user, document(".html"), after=mark)
    assert intro.message_id < as_json.message_id < as_page.message_id
    assert as_json.mime_type == "application/json" and as_page.mime_type == "text/html"
    assert harness.part("mydata.json_caption") in (as_json.text or "") and harness.part(
        "mydata.html_caption"
    ) in (as_page.text or "")

    assert as_json.file_bytes is not None and as_page.file_bytes is not None
    data = json.loads(as_json.file_bytes)
    patient = await harness.patient(user)
    assert patient is not None
    assert data["profile"]["alias"] == patient.alias and data["profile"]["timezone"] == "America/New_York"
    assert data["profile"]["checkin_time"] == "20:00" and data["profile"]["language"] == "en"
    assert [c["version"] for c in data["consents"]] and data["consents"][0]["revoked_at"] is None
    [checkin] = data["checkins"]
    assert (
        checkin["craving"],
        checkin["mood"],
        checkin["sleep"],
        checkin["used"],
    ) == (6, 3, "good", False)
    assert checkin["triggers"] == ["stress"] and checkin["note"] == NOTE
    [escalation] = data["escalations"]
    assert (escalation["level"], escalation["category"], escalation["status"]) == (
        "imminent",
        "suicide",
        "open",
    )
    assert escalation["your_words"] == CRISIS
    assert data["risk_signals"] and data["risk_signals"][0]["level"] == "imminent"
    assert data["care_team"] == [{"name": "Sam", "role": "primary", "since": data["care_team"][0]["since"]}]
    assert "consent.accepted" in [a["action"] for a in data["activity"]]

    page = as_page.file_bytes.decode("utf-8")
    for words in (
        harness.text("mydata.html.title"),
        harness.text("mydata.html.checkins"),
        NOTE,
        CRISIS,
        harness.text("escalation.categories.suicide"),
    ):
        assert words in page
    assert "data.exported" in await _audit_actions(harness)
    async with harness.runtime.sessions() as session:
        exported = await session.scalar(select(AuditEvent).where(AuditEvent.action == "data.exported"))
    assert exported is not None and (exported.actor_id, exported.subject_id) == (patient_id, patient_id)


async def test_deleteme_keep_my_data_changes_nothing_and_spends_the_button(harness: BotHarness) -> None:
    user = harness.new_user_id()
    patient_id = await harness.enroll(user)
    prompt = await harness.say(user, "/deleteme", harness.part("deleteme.confirm_prompt"))
    assert [label for label, _ in prompt.buttons()] == [
        harness.text("deleteme.confirm_button"),
        harness.text("deleteme.cancel_button"),
    ]
    confirm = prompt.buttons()[0][1]
    await harness.tap(user, prompt, harness.text("deleteme.cancel_button"), harness.part("deleteme.kept"))
    # The prompt's confirm button, tapped after "Keep my data" (say from an old copy), does nothing.
    query = await harness.standin.tap_raw(user, prompt.message_id, confirm)
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("input.button_expired") in answer.get("text", "")
    patient = await harness.patient(user)
    assert patient is not None and patient.id == patient_id
    assert {"deletion.requested", "deletion.kept"} <= set(await _audit_actions(harness))


async def test_forged_and_stale_confirm_buttons_do_nothing(harness: BotHarness) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user, other = harness.new_user_id(), harness.new_user_id()
    await harness.enroll(user, counselor_id)
    await harness.enroll(other, counselor_id)
    first = await harness.say(user, "/deleteme", harness.part("deleteme.confirm_prompt"))
    second = await harness.say(user, "/deleteme", harness.part("deleteme.confirm_prompt"))
    request = int(second.buttons()[0][1].rsplit(":", 1)[1])
    attempts = [
        (user, first.message_id, first.buttons()[0][1]),  # an older prompt: only the latest counts
        (user, second.message_id, f"deleteme:yes:{request + 1000}"),  # an id that is not a request
        (user, second.message_id, f"deleteme:yes:{request - 1}"),  # another event's id
        (other, second.message_id, f"deleteme:yes:{request}"),  # someone else's request
        (counselor_user, second.message_id, f"deleteme:yes:{request}"),
        (user, second.message_id, "deleteme:yes:abc"),  # not even the pattern
    ]
    for who, message_id, data in attempts:
        query = await harness.standin.tap_raw(who, message_id, data)
        answer = await harness.standin.wait_for_callback_answer(query)
        assert harness.part("input.button_expired") in answer.get("text", ""), data
    assert await harness.patient(user) is not None and await harness.patient(other) is not None
    # Too old: a request older than half an hour cannot be confirmed.
    async with db.transaction(harness.runtime.sessions) as session:
        event = await session.get_one(AuditEvent, request)
        event.at = event.at.replace(year=event.at.year - 1)
    query = await harness.standin.tap_raw(user, second.message_id, second.buttons()[0][1])
    assert harness.part("input.button_expired") in (
        await harness.standin.wait_for_callback_answer(query)
    ).get("text", "")
    assert await harness.patient(user) is not None


async def test_deleteme_erases_everything_and_they_become_a_stranger(harness: BotHarness) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    user, other = harness.new_user_id(), harness.new_user_id()
    patient_id = await harness.enroll(user, counselor_id)
    await harness.enroll(other, counselor_id)
    alert = await _crisis(harness, user, counselor_user)
    assert alert.buttons()
    await _copy_recorded(harness)
    patient = await harness.patient(user)
    assert patient is not None
    alias = patient.alias
    # The alert is resolved first: while one is open, the deletion waits (test_erasure_in_crisis_flow).
    alert = await harness.resolve_alert(counselor_user, alert, "Sam")
    assert alert.buttons()  # details and safety plan stay on a resolved alert

    prompt = await harness.say(user, "/deleteme", harness.part("deleteme.confirm_prompt"))
    done = await harness.tap(
        user, prompt, harness.text("deleteme.confirm_button"), harness.part("deleteme.done")
    )
    for resource in ("988", "741741", "911", "1-800-662-4357"):
        assert resource in (done.text or "")
    assert await harness.patient(user) is None
    assert await harness.patient(other) is not None

    # The counselor's copy of the alert loses its buttons: they would lead nowhere now.
    def bare(message: BotMessage) -> bool:
        return message.message_id == alert.message_id and not message.buttons()

    await harness.standin.wait_for(counselor_user, bare)

    async with harness.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Escalation)) == 0
        events = list(await session.scalars(select(AuditEvent)))
    assert not [e for e in events if e.actor_type == "patient" and e.actor_id == patient_id]
    assert not [e for e in events if e.subject_type == "patient" and e.subject_id == patient_id]
    [deleted] = [e for e in events if e.action == "patient.deleted"]
    assert (deleted.actor_id, deleted.subject_id) == (None, None) and alias not in str(deleted.detail)

    # From now on they are a stranger: one polite line (a day), and nothing is kept.
    await harness.say(user, "hello?", harness.part("stranger.not_enrolled"))
    mark = harness.standin.mark(user)
    await harness.standin.send_text(user, "/mydata")
    query = await harness.standin.tap_raw(user, prompt.message_id, prompt.buttons()[0][1])
    assert harness.part("input.button_expired") in (
        await harness.standin.wait_for_callback_answer(query)
    ).get("text", "")
    assert harness.standin.mark(user) == mark  # /mydata (handled before the tap: one chat, in order) got none
    assert await harness.patient(user) is None


async def test_discharge_from_the_command_line_then_the_patient_writes_in(
    harness: BotHarness, cli: CommandLine
) -> None:
    user = harness.new_user_id()
    await harness.enroll(user)
    patient = await harness.patient(user)
    assert patient is not None

    result = await _cli(cli, "discharge", patient.alias)
    assert result.returncode == 0, result.stderr
    assert f"{patient.alias} discharged" in result.stderr and "goodbye" in result.stderr
    goodbye = await harness.standin.wait_for(user, harness.part("discharge.goodbye"), timeout=20)
    assert goodbye.text == harness.text("discharge.goodbye")
    for resource in ("988", "1-800-662-4357"):  # the aftercare resources it must keep
        assert resource in (goodbye.text or "")

    # What the goodbye promised is what later replies say (no "last message" followed by more messages).
    stops = harness.text("discharged.what_stops")
    assert stops in (goodbye.text or "")
    note = await harness.say(user, "hi, can I still check in?", harness.text("discharged.note"))
    assert stops in (note.text or "")
    await harness.say(user, "/checkin", harness.text("help.patient_discharged"))
    # Their rights stay: a copy of their data still comes.
    mark = harness.standin.mark(user)
    await harness.say(user, "/mydata", harness.part("mydata.sending"))
    await harness.standin.wait_for(user, document(".json"), after=mark)

    again = await _cli(cli, "discharge", patient.alias)
    assert again.returncode == 1 and "already discharged" in again.stderr
    unknown = await _cli(cli, "discharge", "Nobody")
    assert unknown.returncode == 1 and "no patient with alias 'Nobody'" in unknown.stderr
    assert "patient.discharged" in await _audit_actions(harness)


async def test_purge_from_the_command_line_erases_long_discharged_patients(
    harness: BotHarness, cli: CommandLine
) -> None:
    gone, staying = harness.new_user_id(), harness.new_user_id()
    await harness.enroll(gone)
    await harness.enroll(staying)
    patient = await harness.patient(gone)
    assert patient is not None
    assert (await _cli(cli, "discharge", patient.alias)).returncode == 0
    await harness.standin.wait_for(gone, harness.part("discharge.goodbye"), timeout=20)

    recent = await _cli(cli, "purge", "--older-than", "30")
    assert recent.returncode == 0, recent.stderr
    assert "patients\t0" in recent.stdout.splitlines() and "the audit log is kept" in recent.stderr
    async with db.transaction(harness.runtime.sessions) as session:  # as if the discharge was long ago
        event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "patient.discharged"))
        assert event is not None
        event.at = event.at.replace(year=event.at.year - 1)
    purged = await _cli(cli, "purge", "--older-than", "30")
    assert purged.returncode == 0, purged.stderr
    lines = purged.stdout.splitlines()
    assert "patients\t1" in lines and any(line.startswith("checkins\t") for line in lines)
    assert await harness.patient(gone) is None and await harness.patient(staying) is not None
    await harness.say(gone, "hello", harness.part("stranger.not_enrolled"))

    for bad in ("0", "-3", "soon"):
        refused = await _cli(cli, "purge", "--older-than", bad)
        assert refused.returncode == 2 and "at least 1" in refused.stderr, bad
    assert "data.purged" in await _audit_actions(harness)
    async with harness.runtime.sessions() as session:
        remaining = await session.scalar(select(func.count()).select_from(Patient))
    assert remaining == 1


def test_the_commands_have_help(cli: CommandLine) -> None:
    for command in ("discharge", "purge"):
        result = cli(command, "--help")
        assert result.returncode == 0 and "usage: python -m bot" in result.stdout, result.stderr
    assert "--older-than DAYS" in cli("purge", "--help").stdout
