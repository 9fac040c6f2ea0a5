"""Counselor notes and the patient's copy of their data (issue 18 item 16): a note is part of the patient's
record, so /mydata keeps it (right of access), with who wrote it and when; and the counselor is told, when
writing one (and in its usage line), that the patient can read it. In English and Spanish.

Real HTTP, the real Application and database, against the stand-in."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from bot.core import db
from bot.core.models import Counselor
from tests.harness import BotHarness

NOTE = {"en": "Called, doing better, will come Thursday", "es": "Llamé, está mejor, viene el jueves"}


@pytest.mark.parametrize("language", ["en", "es"])
async def test_a_note_is_in_the_patients_copy_and_the_counselor_is_told(
    harness: BotHarness, language: str
) -> None:
    counselor_user, counselor_id = await harness.link_counselor("Sam")
    async with db.transaction(harness.runtime.sessions) as session:
        await session.execute(update(Counselor).where(Counselor.id == counselor_id).values(language=language))
    user = harness.new_user_id()
    await harness.enroll(user, counselor_id, language=language)
    patient = await harness.patient(user)
    assert patient is not None
    text = harness.runtime.text

    usage = text("caseload.note_usage", language, alias="P-1234")
    shown = await harness.say(counselor_user, "/note", usage.splitlines()[0])
    assert shown.text == usage and "/mydata" in usage

    saved = text("caseload.note_saved", language, alias=patient.alias)
    shown = await harness.say(
        counselor_user, f"/note {patient.alias} {NOTE[language]}", saved.splitlines()[0]
    )
    assert shown.text == saved and "/mydata" in saved

    data, page = await harness.my_data(user)
    [note] = data["care_team_notes"]
    assert (note["by"], note["text"]) == ("Sam", NOTE[language]) and note["written_at"]
    assert text("mydata.html.care_team_notes", language) in page and NOTE[language] in page
