"""Messages from the care team through real HTTP (issue 22, item 5): `/message ALIAS TEXT` reaches the patient
from the counselor by name, through the outbox and audited; the patient's reply reaches the counselor with the
alias only, the words behind "Show details" (audited, refused to anyone off the team); `/message group NAME
TEXT` reaches the group's members on the counselor's caseload, and says how many were left out."""

from __future__ import annotations

from sqlalchemy import select

from bot.core import db
from bot.core.models import (
    AuditEvent,
    CareMessage,
    CareMessageReply,
    Counselor,
    GroupMember,
    OutboxMessage,
    Patient,
    PatientGroup,
    utcnow,
)
from bot.medcare.callbacks import CARE_MESSAGE_KIND, REPLY_DETAILS, ReplyDetails
from bot.risk import cssrs
from bot.workspace import reassignment
from tests.harness import BotHarness
from tests.records import typed_answer_asked_ago


async def test_a_counselor_message_and_the_patients_reply(harness: BotHarness) -> None:
    dana_user, dana_id = await harness.link_counselor("Dana Reyes")
    sam_user, sam_id = await harness.link_counselor("Sam")
    river, brook = harness.new_user_id(), harness.new_user_id()
    await harness.enroll(river, dana_id, alias="River")
    await harness.enroll(brook, sam_id, alias="Brook")

    await harness.say(dana_user, "/message", harness.part("messages.usage", alias="P-1234"))
    await harness.say(dana_user, "/message River", harness.part("messages.usage", alias="P-1234"))
    await harness.say(dana_user, "/message Brook hello", harness.part("caseload.not_found", alias="Brook"))
    words = "How did the group go today?"
    await harness.say(dana_user, f"/message River {words}", harness.part("messages.sent", alias="River"))
    # The patient gets it from the counselor by name, through the outbox, with a Reply button.
    message = await harness.standin.wait_for(
        river, harness.part("messages.from_counselor", counselor="Dana Reyes")
    )
    assert words in (message.text or "") and "Dana Reyes" in (message.text or "")
    assert [label for label, _ in message.buttons()] == [harness.text("messages.reply_button")]
    assert not [m for m in harness.standin.transcript(brook) if words in (m.text or "")]

    await harness.tap(
        river,
        message,
        harness.text("messages.reply_button"),
        harness.part("messages.type_reply", counselor="Dana"),
    )
    reply_words = "It went ok, I talked about my sister"
    await harness.say(river, reply_words, harness.part("messages.reply_sent", counselor="Dana", told=True))
    # The counselor's notice names the alias only; the words are behind "Show details".
    notice = await harness.standin.wait_for(dana_user, harness.part("messages.reply_notice", alias="River"))
    assert "sister" not in (notice.text or "")
    assert not [m for m in harness.standin.transcript(sam_user) if "River" in (m.text or "")]
    details = await harness.tap(
        dana_user,
        notice,
        harness.text("escalation.details_button"),
        harness.part("messages.reply_details", alias="River"),
    )
    assert reply_words in (details.text or "")
    # Someone off the care team who forges the button is refused, and learns nothing.
    data = notice.buttons()[0][1]
    mark = harness.standin.mark(sam_user)
    query = await harness.standin.tap_raw(sam_user, notice.message_id, data)
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("messages.refused") in answer.get("text", "")
    assert harness.standin.mark(sam_user) == mark

    async with harness.runtime.sessions() as session:
        [stored] = await session.scalars(select(CareMessage))
        [reply] = await session.scalars(select(CareMessageReply))
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        [row] = await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == CARE_MESSAGE_KIND))
    assert (stored.text, stored.counselor_id, reply.text, reply.message_id) == (
        words,
        dana_id,
        reply_words,
        stored.id,
    )
    assert row.patient_id == stored.patient_id  # through the outbox, as a message to the patient
    sent, replied, viewed = (
        actions.index("care_message.sent"),
        actions.index("care_message.replied"),
        actions.index("care_message.reply_viewed"),
    )
    assert sent < replied < viewed and actions.count("care_message.reply_viewed") == 1


async def test_a_message_to_a_schedule_group(harness: BotHarness) -> None:
    dana_user, dana_id = await harness.link_counselor("Dana Reyes")
    _, sam_id = await harness.link_counselor("Sam")
    users = [harness.new_user_id() for _ in range(3)]
    ids = [
        await harness.enroll(users[0], dana_id, alias="River"),
        await harness.enroll(users[1], dana_id, alias="Lake"),
        await harness.enroll(users[2], sam_id, alias="Brook"),
    ]
    async with db.transaction(harness.runtime.sessions) as session:
        group = PatientGroup(name="Evening IOP")
        session.add(group)
        await session.flush()
        session.add_all([GroupMember(group_id=group.id, patient_id=patient_id) for patient_id in ids])

    await harness.say(
        dana_user,
        '/message group "Morning IOP" hi',
        harness.part("messages.group_not_found", group="Morning IOP"),
    )
    sent = await harness.say(
        dana_user,
        "/message group evening iop Group starts at 6:30 tonight, not 6.",
        harness.part("messages.group_sent", group="Evening IOP", count=2, left_out=1),
    )
    assert "1 member is not on your caseload" in (sent.text or "")
    for user in users[:2]:
        got = await harness.standin.wait_for(user, "Group starts at 6:30 tonight, not 6.")
        assert "Dana Reyes" in (got.text or "")
    assert not [m for m in harness.standin.transcript(users[2]) if "6:30" in (m.text or "")]
    async with harness.runtime.sessions() as session:
        groups = list(await session.scalars(select(CareMessage.group_id)))
    assert groups == [group.id, group.id]


async def test_a_screener_answer_is_never_taken_for_a_reply(harness: BotHarness) -> None:
    """Reply tapped, then words that open the screener: the screener drops the reply being typed, and its
    answers go to the screener (not to the counselor as a reply), even after Reply is tapped again."""
    dana_user, dana_id = await harness.link_counselor("Dana")
    river = harness.new_user_id()
    await harness.enroll(river, dana_id, alias="River")
    await harness.say(dana_user, "/message River How are you?", harness.part("messages.sent", alias="River"))
    message = await harness.standin.wait_for(river, harness.part("messages.from_counselor", counselor="Dana"))
    reply = harness.text("messages.reply_button")
    await harness.tap(river, message, reply, harness.part("messages.type_reply", counselor="Dana"))

    def question(step: cssrs.Question) -> str:
        return harness.text(f"cssrs.questions.{step}").splitlines()[0]

    permission = await harness.say(river, "i dont see a way forward", harness.text("cssrs.intro_ambiguous"))
    await harness.tap(river, permission, harness.text("cssrs.ok_button"), question(cssrs.Question.WISH_DEAD))
    await harness.tap(river, message, reply, harness.part("messages.type_reply", counselor="Dana"))
    await harness.say(river, "no", question(cssrs.Question.THOUGHTS))
    async with harness.runtime.sessions() as session:
        assert list(await session.scalars(select(CareMessageReply))) == []
    notices = [m for m in harness.standin.transcript(dana_user) if "River" in (m.text or "")]
    assert not [m for m in notices if harness.part("messages.reply_notice", alias="River") in (m.text or "")]


async def test_a_reply_typed_after_its_window_is_read_as_any_message(harness: BotHarness) -> None:
    """Reply tapped, then nothing for longer than TYPED_ANSWER_HOURS: what the patient types then is not
    taken for a reply (nothing reaches the counselor), it is answered as any other message, and the patient is
    told to tap Reply again if it was meant for the counselor; Reply tapped again takes the next words."""
    dana_user, dana_id = await harness.link_counselor("Dana")
    river = harness.new_user_id()
    patient_id = await harness.enroll(river, dana_id, alias="River")
    await harness.say(dana_user, "/message River How are you?", harness.part("messages.sent", alias="River"))
    message = await harness.standin.wait_for(river, harness.part("messages.from_counselor", counselor="Dana"))
    reply = harness.text("messages.reply_button")
    await harness.tap(river, message, reply, harness.part("messages.type_reply", counselor="Dana"))

    window = harness.settings.typed_answer_hours
    await typed_answer_asked_ago(harness.runtime.sessions, patient_id, window + 0.5)
    mark = harness.standin.mark(river)
    await harness.say(river, "hi", harness.part("tone.greeting"))
    # ...and told in one line how to reply, if that was meant for the counselor.
    told = [m.text or "" for m in harness.standin.transcript(river)[mark:]]
    assert sum(harness.text("messages.reply_expired") in text for text in told) == 1
    async with harness.runtime.sessions() as session:
        assert list(await session.scalars(select(CareMessageReply))) == []
    assert (await harness.patient(river)).onboarding_step is None  # type: ignore[union-attr]

    await harness.tap(river, message, reply, harness.part("messages.type_reply", counselor="Dana"))
    await typed_answer_asked_ago(harness.runtime.sessions, patient_id, window - 0.5)  # still within it
    await harness.say(river, "All good", harness.part("messages.reply_sent", counselor="Dana", told=True))
    async with harness.runtime.sessions() as session:
        assert [r.text for r in await session.scalars(select(CareMessageReply))] == ["All good"]


async def test_a_counselor_off_the_care_team_no_longer_reads_the_replies(harness: BotHarness) -> None:
    """River moves from Dana to Sam after Dana's message: River's reply then goes to the care team (Sam), the
    patient is told so (not that Dana will see it), and Dana, who wrote the message, is refused the reply's
    words even with the button forged for its id (access follows the care team)."""
    dana_user, dana_id = await harness.link_counselor("Dana Reyes")
    sam_user, sam_id = await harness.link_counselor("Sam")
    river = harness.new_user_id()
    await harness.enroll(river, dana_id, alias="River")
    await harness.say(dana_user, "/message River hello", harness.part("messages.sent", alias="River"))
    message = await harness.standin.wait_for(
        river, harness.part("messages.from_counselor", counselor="Dana Reyes")
    )
    async with db.transaction(harness.runtime.sessions) as session:
        patient = await session.scalar(select(Patient).where(Patient.alias == "River"))
        sam = await session.get(Counselor, sam_id)
        assert patient is not None and sam is not None
        await reassignment.assign_primary(session, patient, sam, utcnow())
    await harness.say(dana_user, "/patient River", harness.part("caseload.not_found", alias="River"))

    await harness.tap(
        river,
        message,
        harness.text("messages.reply_button"),
        harness.part("messages.type_reply", counselor=""),
    )
    words = "my sister visited and we talked"
    sent = await harness.say(river, words, harness.part("messages.reply_sent", counselor="", told=True))
    assert "Dana" not in (sent.text or "")
    notice = await harness.standin.wait_for(sam_user, harness.part("messages.reply_notice", alias="River"))
    async with harness.runtime.sessions() as session:
        [reply] = await session.scalars(select(CareMessageReply))
    assert not [m for m in harness.standin.transcript(dana_user) if words in (m.text or "")]

    mark = harness.standin.mark(dana_user)
    query = await harness.standin.tap_raw(
        dana_user, message.message_id, REPLY_DETAILS.pack(ReplyDetails(reply.id))
    )
    answer = await harness.standin.wait_for_callback_answer(query)
    assert harness.part("messages.refused") in answer.get("text", "")
    assert harness.standin.mark(dana_user) == mark
    details = await harness.tap(
        sam_user,
        notice,
        harness.text("escalation.details_button"),
        harness.part("messages.reply_details", alias="River"),
    )
    assert words in (details.text or "")
