"""The C-SSRS screener (bot/risk/cssrs.py): question order, Columbia's triage, and the screens kept in the
database. The expected order and triage are written here from the clinical reference, not taken from the
module."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import db
from bot.core.models import Escalation, ScreenStatus, SuicideScreen, utcnow
from bot.risk import RiskLevel, cssrs
from bot.risk.cssrs import ColumbiaRisk, Question, Trigger
from tests.records import add_patient

Sessions = async_sessionmaker[AsyncSession]
Path = tuple[tuple[Question, bool], ...]

PAST, SINCE = cssrs.Period.PAST_MONTH, cssrs.Period.SINCE_LAST
NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
WAIT = timedelta(minutes=30)

# Q1-Q6 and "in the past three months?" (N for intent: ruff reserves I).
W, T, M, N, P, B, R = (
    Question.WISH_DEAD,
    Question.THOUGHTS,
    Question.METHOD,
    Question.INTENT,
    Question.PLAN,
    Question.BEHAVIOR,
    Question.BEHAVIOR_RECENT,
)

# Our alert level for each Columbia result, from the clinical reference: low risk is "refer" (a care-team
# flag for the next business day), not an alert.
EXPECTED_LEVEL = {
    ColumbiaRisk.HIGH: RiskLevel.IMMINENT,
    ColumbiaRisk.MODERATE: RiskLevel.HIGH,
    ColumbiaRisk.LOW: RiskLevel.NONE,
    ColumbiaRisk.NONE: RiskLevel.NONE,
}


def _all_paths() -> list[Path]:
    """Every complete way through the screen: 1 and 2 always; after a yes to 2, 3 then 4 then 5, except that a
    yes to intent (4) or plan (5) ends the screen at once (high risk: respond now, ask nothing more); then 6;
    "in the past three months?" only after a yes to 6."""
    endings: list[list[tuple[Question, bool]]] = []  # from question 6 on
    for behavior in (False, True):
        for recent in (False, True) if behavior else (None,):
            ending = [(B, behavior)]
            if recent is not None:
                ending.append((R, recent))
            endings.append(ending)
    middles: list[list[tuple[Question, bool]]] = []  # questions 3-5 after a yes to 2, through to the end
    for method in (False, True):
        middles.append([(M, method), (N, True)])
        middles.append([(M, method), (N, False), (P, True)])
        middles += [[(M, method), (N, False), (P, False), *ending] for ending in endings]
    paths: list[Path] = []
    for wish in (False, True):
        paths += [((W, wish), (T, False), *ending) for ending in endings]
        paths += [((W, wish), (T, True), *middle) for middle in middles]
    return paths


PATHS = _all_paths()


def _expected_risk(path: Path) -> ColumbiaRisk:
    """Columbia's triage as the highest risk any single yes carries (NONE when everything is no)."""
    said = dict(path)
    severity = [ColumbiaRisk.NONE, ColumbiaRisk.LOW, ColumbiaRisk.MODERATE, ColumbiaRisk.HIGH]
    worst = ColumbiaRisk.NONE
    for question, yes in path:
        if not yes:
            continue
        if question in (W, T):
            risk = ColumbiaRisk.LOW
        elif question is M:
            risk = ColumbiaRisk.MODERATE
        elif question in (N, P):
            risk = ColumbiaRisk.HIGH
        elif question is B:
            risk = ColumbiaRisk.HIGH if said.get(R) is True else ColumbiaRisk.MODERATE
        else:  # "recent" is only a qualifier of the behaviour answer
            continue
        worst = max(worst, risk, key=severity.index)
    return worst


def _path_id(path: Path) -> str:
    return ",".join(f"{question.value}={'y' if yes else 'n'}" for question, yes in path)


def _case_id(value: object) -> str:
    if isinstance(value, tuple):
        return _path_id(value) or "nothing"
    return str(value)


def _fresh_screen() -> SuicideScreen:
    """A screen as `start` then `agree` leave it (checked against the database in
    test_start_asks_permission_then_q1)."""
    return SuicideScreen(
        patient_id=1,
        escalation_id=None,
        trigger=Trigger.ALERTED.value,
        status=ScreenStatus.OPEN,
        step=Question.WISH_DEAD.value,
        answers={},
        started_at=NOW,
    )


def _answer_all(screen: SuicideScreen, path: Path, now: datetime = NOW) -> Question | None:
    following: Question | None = None
    for question, yes in path:
        following = cssrs.answer(screen, question, yes, now)
    return following


async def _escalation(sessions: Sessions, patient_id: int) -> int:
    async with db.transaction(sessions) as session:
        escalation = Escalation(patient_id=patient_id, level="imminent", category="suicide", source="message")
        session.add(escalation)
        await session.flush()
        return escalation.id


async def _screen(
    sessions: Sessions,
    patient_id: int,
    *,
    status: ScreenStatus = ScreenStatus.OPEN,
    started_at: datetime = NOW,
    answered_at: datetime | None = None,
    finished_at: datetime | None = None,
    escalation_id: int | None = None,
) -> int:
    async with db.transaction(sessions) as session:
        screen = SuicideScreen(
            patient_id=patient_id,
            escalation_id=escalation_id,
            trigger=Trigger.AMBIGUOUS.value,
            status=status,
            step=Question.WISH_DEAD.value if status is ScreenStatus.OPEN else None,
            answers={},
            started_at=started_at,
            answered_at=answered_at,
            finished_at=finished_at,
        )
        session.add(screen)
        await session.flush()
        return screen.id


# ---- the reference tables ----------------------------------------------------------------------------------


def test_levels_map_columbia_results_to_our_alert_levels() -> None:
    assert cssrs.LEVELS == EXPECTED_LEVEL


def test_moderate_and_high_alert_and_low_is_a_referral() -> None:
    for risk, level in cssrs.LEVELS.items():
        assert (level >= RiskLevel.HIGH) is (risk in (ColumbiaRisk.MODERATE, ColumbiaRisk.HIGH))
    assert cssrs.REFERRAL is ColumbiaRisk.LOW


def test_there_are_26_complete_answer_paths() -> None:
    # Q1 (2) x [no to Q2: Q6 (3) + yes to Q2: Q3 (2) x (intent yes 1 + plan yes 1 + both no: Q6 (3))]
    assert len(PATHS) == 2 * (3 + 2 * (1 + 1 + 3)) == 26
    assert len(set(PATHS)) == 26


# ---- every path through the screen -------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS, ids=_path_id)
def test_every_answer_path_asks_in_order_and_triages(path: Path) -> None:
    screen = _fresh_screen()
    for index, (question, yes) in enumerate(path):
        at = NOW + timedelta(minutes=index + 1)
        expected_next = path[index + 1][0] if index + 1 < len(path) else None
        assert screen.step == question.value
        assert cssrs.answer(screen, question, yes, at) is expected_next
        assert screen.answered_at == at
        if expected_next is not None:
            assert screen.step == expected_next.value
            assert screen.status is ScreenStatus.OPEN
            assert screen.result is None and screen.finished_at is None
    finished = NOW + timedelta(minutes=len(path))
    expected = _expected_risk(path)
    assert screen.step is None
    assert screen.status is ScreenStatus.COMPLETE
    assert screen.result == expected.value
    assert screen.finished_at == finished
    assert screen.answers == {question.value: yes for question, yes in path}
    assert cssrs.LEVELS[ColumbiaRisk(screen.result)] is EXPECTED_LEVEL[expected]


@pytest.mark.parametrize("path", PATHS, ids=_path_id)
def test_triage_of_every_complete_path(path: Path) -> None:
    answers = {question.value: yes for question, yes in path}
    assert cssrs.triage(answers) is _expected_risk(path)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (((W, False), (T, False), (B, False)), ColumbiaRisk.NONE),
        (((W, True), (T, False), (B, False)), ColumbiaRisk.LOW),
        (((W, False), (T, True), (M, False), (N, False), (P, False), (B, False)), ColumbiaRisk.LOW),
        (((W, True), (T, True), (M, True), (N, False), (P, False), (B, False)), ColumbiaRisk.MODERATE),
        (((W, False), (T, False), (B, True), (R, False)), ColumbiaRisk.MODERATE),
        (((W, False), (T, False), (B, True), (R, True)), ColumbiaRisk.HIGH),
        (((W, False), (T, True), (M, False), (N, True)), ColumbiaRisk.HIGH),
        (((W, False), (T, True), (M, False), (N, False), (P, True)), ColumbiaRisk.HIGH),
        (
            ((W, True), (T, True), (M, True), (N, False), (P, False), (B, True), (R, False)),
            ColumbiaRisk.MODERATE,
        ),
    ],
    ids=_case_id,
)
def test_triage_examples_from_the_reference(path: Path, expected: ColumbiaRisk) -> None:
    assert _expected_risk(path) is expected  # the test's own rule agrees with the hand-written examples
    screen = _fresh_screen()
    assert _answer_all(screen, path) is None
    assert screen.result == expected.value


def test_a_no_to_thoughts_goes_straight_to_behaviour() -> None:
    screen = _fresh_screen()
    assert cssrs.answer(screen, W, True, NOW) is T
    assert cssrs.answer(screen, T, False, NOW) is B
    for skipped in (M, N, P):
        with pytest.raises(ValueError):
            cssrs.answer(screen, skipped, True, NOW)
    assert screen.step == B.value


def test_no_behaviour_ends_without_asking_when() -> None:
    screen = _fresh_screen()
    assert _answer_all(screen, ((W, False), (T, False), (B, False))) is None
    assert R.value not in screen.answers
    with pytest.raises(ValueError):
        cssrs.answer(screen, R, True, NOW)


# ---- refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", [q for q in Question if q is not W])
def test_only_the_question_being_asked_is_accepted(question: Question) -> None:
    screen = _fresh_screen()
    answers = screen.answers
    with pytest.raises(ValueError, match="not the question being asked"):
        cssrs.answer(screen, question, True, NOW)
    assert screen.answers is answers and screen.answers == {}
    assert screen.step == W.value and screen.answered_at is None
    assert screen.status is ScreenStatus.OPEN


def test_an_answer_already_given_cannot_be_given_again() -> None:
    screen = _fresh_screen()
    cssrs.answer(screen, W, True, NOW)
    with pytest.raises(ValueError):
        cssrs.answer(screen, W, False, NOW)
    assert screen.answers == {W.value: True}


@pytest.mark.parametrize("question", list(Question))
def test_a_complete_screen_refuses_every_answer(question: Question) -> None:
    screen = _fresh_screen()
    _answer_all(screen, ((W, True), (T, False), (B, True), (R, False)))
    done = dict(screen.answers)
    with pytest.raises(ValueError):
        cssrs.answer(screen, question, True, NOW + timedelta(hours=1))
    assert screen.status is ScreenStatus.COMPLETE and screen.answers == done
    assert screen.result == ColumbiaRisk.MODERATE.value and screen.finished_at == NOW


def test_a_complete_screen_refuses_even_the_question_left_in_step() -> None:
    screen = _fresh_screen()
    screen.status = ScreenStatus.COMPLETE  # the status alone must close it, whatever `step` still says
    with pytest.raises(ValueError):
        cssrs.answer(screen, W, True, NOW)
    assert screen.answers == {} and screen.status is ScreenStatus.COMPLETE


def test_an_unanswered_screen_takes_a_late_answer_to_its_open_question_only() -> None:
    screen = _fresh_screen()
    cssrs.answer(screen, W, True, NOW)
    cssrs.close_unanswered(screen, NOW + WAIT)
    assert screen.step == T.value
    with pytest.raises(ValueError):
        cssrs.answer(screen, W, False, NOW + WAIT)
    # A late yes to thoughts carries the screener on, open again.
    assert cssrs.answer(screen, T, True, NOW + 2 * WAIT) is Question.METHOD
    assert screen.status is ScreenStatus.OPEN and screen.answers == {W.value: True, T.value: True}


# ---- how answers are stored --------------------------------------------------------------------------------


def test_each_answer_stores_a_new_dict_and_leaves_the_old_one_alone() -> None:
    screen = _fresh_screen()
    first = screen.answers
    cssrs.answer(screen, W, True, NOW)
    assert screen.answers is not first
    assert first == {}
    second = screen.answers
    cssrs.answer(screen, T, False, NOW)
    assert screen.answers is not second
    assert second == {W.value: True}
    assert screen.answers == {W.value: True, T.value: False}


def test_answered_at_moves_with_each_answer_and_finished_at_only_at_the_end() -> None:
    screen = _fresh_screen()
    cssrs.answer(screen, W, False, NOW + timedelta(minutes=1))
    assert (screen.answered_at, screen.finished_at) == (NOW + timedelta(minutes=1), None)
    cssrs.answer(screen, T, False, NOW + timedelta(minutes=2))
    assert (screen.answered_at, screen.finished_at) == (NOW + timedelta(minutes=2), None)
    cssrs.answer(screen, B, False, NOW + timedelta(minutes=3))
    assert screen.answered_at == screen.finished_at == NOW + timedelta(minutes=3)
    assert screen.started_at == NOW


# ---- a yes to intent or plan ends the screen at once -------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        ((W, False), (T, True), (M, False), (N, True)),
        ((W, True), (T, True), (M, True), (N, True)),
        ((W, False), (T, True), (M, False), (N, False), (P, True)),
    ],
    ids=_case_id,
)
def test_a_yes_to_intent_or_plan_completes_the_screen_as_high(given: Path) -> None:
    screen = _fresh_screen()
    assert _answer_all(screen, given, NOW + timedelta(minutes=2)) is None
    assert screen.status is ScreenStatus.COMPLETE
    assert screen.result == ColumbiaRisk.HIGH.value
    assert screen.step is None and screen.finished_at == NOW + timedelta(minutes=2)
    assert cssrs.LEVELS[ColumbiaRisk(screen.result)] is RiskLevel.IMMINENT
    for later in (P, B, R):
        with pytest.raises(ValueError):
            cssrs.answer(screen, later, False, NOW + timedelta(minutes=3))
    assert screen.answers == {question.value: yes for question, yes in given}


def test_a_no_to_intent_still_asks_about_a_plan() -> None:
    screen = _fresh_screen()
    assert _answer_all(screen, ((W, True), (T, True), (M, True), (N, False))) is P
    assert screen.status is ScreenStatus.OPEN and screen.result is None


# ---- closing a screen nobody finished ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ((), ColumbiaRisk.NONE),
        (((W, False),), ColumbiaRisk.NONE),
        (((W, False), (T, False)), ColumbiaRisk.NONE),
        (((W, True),), ColumbiaRisk.LOW),
        (((W, False), (T, True)), ColumbiaRisk.LOW),
        (((W, False), (T, True), (M, True)), ColumbiaRisk.MODERATE),
        (((W, False), (T, True), (M, False), (N, False)), ColumbiaRisk.LOW),
        (((W, True), (T, True), (M, True), (N, False), (P, False)), ColumbiaRisk.MODERATE),
        (((W, False), (T, True), (M, False), (N, False), (P, False)), ColumbiaRisk.LOW),
        (((W, False), (T, False), (B, True)), ColumbiaRisk.MODERATE),  # when it happened: not answered
    ],
    ids=_case_id,
)
def test_close_unanswered_triages_what_was_answered(given: Path, expected: ColumbiaRisk) -> None:
    screen = _fresh_screen()
    _answer_all(screen, given)
    closed_at = NOW + WAIT
    assert cssrs.close_unanswered(screen, closed_at) is expected
    assert screen.status is ScreenStatus.UNANSWERED
    assert screen.result == expected.value
    # The question left open stays, so a late answer can still land.
    still_open = cssrs.next_question({question.value: yes for question, yes in given})
    assert still_open is not None and screen.step == still_open.value
    assert screen.finished_at == closed_at
    assert screen.answers == {question.value: yes for question, yes in given}


def test_close_unanswered_refuses_a_finished_screen() -> None:
    screen = _fresh_screen()
    _answer_all(screen, ((W, False), (T, False), (B, False)))
    assert screen.status is ScreenStatus.COMPLETE
    with pytest.raises(ValueError, match="open"):
        cssrs.close_unanswered(screen, NOW + WAIT)
    assert screen.status is ScreenStatus.COMPLETE and screen.result == "none"


# ---- the database ------------------------------------------------------------------------------------------


async def test_start_asks_permission_then_q1(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    escalation_id = await _escalation(sessions, patient_id)
    async with db.transaction(sessions) as session:
        screen = await cssrs.start(session, patient_id, Trigger.ALERTED, escalation_id, NOW)
        assert screen.id is not None
        assert screen.status is ScreenStatus.OPEN
    async with sessions() as session:
        saved = await session.get_one(SuicideScreen, screen.id)
    assert saved.patient_id == patient_id and saved.escalation_id == escalation_id
    assert saved.trigger == "alerted"
    assert saved.status is ScreenStatus.OPEN
    assert saved.step == cssrs.PERMISSION  # permission first, in its own step: no answer is a question's
    assert saved.answers == {}
    assert saved.started_at == NOW
    assert (saved.answered_at, saved.finished_at, saved.result) == (None, None, None)
    with pytest.raises(ValueError):
        cssrs.answer(saved, W, True, NOW)
    async with db.transaction(sessions) as session:
        agreed = await session.get_one(SuicideScreen, screen.id)
        assert cssrs.agree(agreed, cssrs.Period.PAST_MONTH, NOW + WAIT) is W
    async with sessions() as session:
        saved = await session.get_one(SuicideScreen, screen.id)
    assert (saved.status, saved.step, saved.answers) == (ScreenStatus.OPEN, W.value, {})
    assert saved.answered_at == NOW + WAIT and saved.result is None


async def test_start_without_an_escalation(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    async with db.transaction(sessions) as session:
        screen = await cssrs.start(session, patient_id, Trigger.AMBIGUOUS, None, NOW)
    async with sessions() as session:
        saved = await session.get_one(SuicideScreen, screen.id)
    assert saved.escalation_id is None and saved.trigger == "ambiguous"


async def test_answers_given_one_transaction_at_a_time_are_all_kept(sessions: Sessions) -> None:
    """As the bot runs it: every tap is its own transaction on a freshly loaded screen, so each change to the
    JSON column has to be seen and written."""
    patient_id = (await add_patient(sessions)).id
    async with db.transaction(sessions) as session:
        cssrs.agree(await cssrs.start(session, patient_id, Trigger.ALERTED, None, NOW), PAST, NOW)
    path: Path = ((W, True), (T, True), (M, True), (N, False), (P, False), (B, True), (R, False))
    for index, (question, yes) in enumerate(path):
        async with db.transaction(sessions) as session:
            screen = await cssrs.open_screen(session, patient_id)
            assert screen is not None and screen.step == question.value
            assert screen.answers == {q.value: y for q, y in path[:index]}
            cssrs.answer(screen, question, yes, NOW + timedelta(minutes=index + 1))
    async with sessions() as session:
        assert await cssrs.open_screen(session, patient_id) is None
        saved = await session.scalar(select(SuicideScreen).where(SuicideScreen.patient_id == patient_id))
    assert saved is not None
    assert saved.answers == {q.value: y for q, y in path}
    assert saved.status is ScreenStatus.COMPLETE
    assert saved.result == ColumbiaRisk.MODERATE.value
    assert saved.step is None
    assert saved.finished_at == saved.answered_at == NOW + timedelta(minutes=len(path))


async def test_a_yes_to_intent_is_saved_as_a_finished_high_screen(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    escalation_id = await _escalation(sessions, patient_id)
    async with db.transaction(sessions) as session:
        screen = await cssrs.start(session, patient_id, Trigger.ALERTED, escalation_id, NOW)
        cssrs.agree(screen, PAST, NOW)
    for question, yes in ((W, True), (T, True), (M, False), (N, True)):
        async with db.transaction(sessions) as session:
            current = await cssrs.open_screen(session, patient_id)
            assert current is not None
            cssrs.answer(current, question, yes, NOW + timedelta(minutes=1))
    async with sessions() as session:
        assert await cssrs.open_screen(session, patient_id) is None
        assert await cssrs.finished_since(session, patient_id, NOW) is True
        (saved,) = await cssrs.screens_of(session, escalation_id)
    assert saved.id == screen.id
    assert (saved.status, saved.result, saved.step) == (ScreenStatus.COMPLETE, "high", None)
    assert saved.answers == {"wish_dead": True, "thoughts": True, "method": False, "intent": True}


async def test_open_screen_none_when_nothing_is_open(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    await _screen(sessions, patient_id, status=ScreenStatus.COMPLETE, finished_at=NOW)
    await _screen(sessions, patient_id, status=ScreenStatus.UNANSWERED, finished_at=NOW)
    async with sessions() as session:
        assert await cssrs.open_screen(session, patient_id) is None


async def test_open_screen_is_the_newest_open_one_of_this_patient(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    other_id = (await add_patient(sessions)).id
    await _screen(sessions, patient_id)
    newest = await _screen(sessions, patient_id)
    await _screen(sessions, patient_id, status=ScreenStatus.COMPLETE, finished_at=NOW)
    await _screen(sessions, other_id)
    async with sessions() as session:
        found = await cssrs.open_screen(session, patient_id)
    assert found is not None and found.id == newest


async def test_finished_since_counts_complete_screens_after_the_moment(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    await _screen(sessions, patient_id, status=ScreenStatus.COMPLETE, finished_at=NOW)
    async with sessions() as session:
        assert await cssrs.finished_since(session, patient_id, NOW - timedelta(seconds=1)) is True
        assert await cssrs.finished_since(session, patient_id, NOW - timedelta(days=30)) is True
        assert await cssrs.finished_since(session, patient_id, NOW) is False  # strictly after
        assert await cssrs.finished_since(session, patient_id, NOW + timedelta(seconds=1)) is False


async def test_finished_since_ignores_open_unanswered_and_other_patients(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    other_id = (await add_patient(sessions)).id
    await _screen(sessions, patient_id)
    await _screen(sessions, patient_id, status=ScreenStatus.UNANSWERED, finished_at=NOW)
    await _screen(sessions, other_id, status=ScreenStatus.COMPLETE, finished_at=NOW)
    async with sessions() as session:
        assert await cssrs.finished_since(session, patient_id, NOW - timedelta(days=1)) is False
        assert await cssrs.finished_since(session, other_id, NOW - timedelta(days=1)) is True


async def test_stalled_counts_from_the_start_when_nothing_was_answered(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    long_ago = await _screen(sessions, patient_id, started_at=NOW - WAIT - timedelta(minutes=1))
    exactly = await _screen(sessions, patient_id, started_at=NOW - WAIT)
    await _screen(sessions, patient_id, started_at=NOW - WAIT + timedelta(seconds=1))
    async with sessions() as session:
        found = await cssrs.stalled(session, NOW, WAIT)
    assert sorted(s.id for s in found) == [long_ago, exactly]


async def test_stalled_counts_from_the_last_answer(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    started = NOW - timedelta(hours=2)
    quiet = await _screen(sessions, patient_id, started_at=started, answered_at=NOW - WAIT)
    await _screen(sessions, patient_id, started_at=started, answered_at=NOW - timedelta(minutes=5))
    async with sessions() as session:
        found = await cssrs.stalled(session, NOW, WAIT)
    assert [s.id for s in found] == [quiet]


async def test_stalled_ignores_closed_screens(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    long_ago = NOW - timedelta(days=1)
    await _screen(
        sessions, patient_id, status=ScreenStatus.COMPLETE, started_at=long_ago, finished_at=long_ago
    )
    await _screen(
        sessions, patient_id, status=ScreenStatus.UNANSWERED, started_at=long_ago, finished_at=long_ago
    )
    async with sessions() as session:
        assert await cssrs.stalled(session, NOW, WAIT) == []


async def test_a_stalled_screen_closed_unanswered_is_kept(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    async with db.transaction(sessions) as session:
        screen = await cssrs.start(session, patient_id, Trigger.AMBIGUOUS, None, NOW - timedelta(hours=1))
        cssrs.agree(screen, PAST, NOW - timedelta(hours=1))
        cssrs.answer(screen, W, True, NOW - timedelta(hours=1))
    async with db.transaction(sessions) as session:
        (stalled,) = await cssrs.stalled(session, NOW, WAIT)
        assert cssrs.close_unanswered(stalled, NOW) is ColumbiaRisk.LOW
    async with sessions() as session:
        saved = await session.get_one(SuicideScreen, screen.id)
        assert await cssrs.stalled(session, NOW, WAIT) == []
        assert await cssrs.open_screen(session, patient_id) is None
        assert await cssrs.finished_since(session, patient_id, NOW - timedelta(days=1)) is False
    assert saved.status is ScreenStatus.UNANSWERED
    assert (saved.result, saved.finished_at) == ("low", NOW) and saved.step is not None
    assert saved.answers == {W.value: True}


async def test_screens_of_an_escalation_oldest_first(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    escalation_id = await _escalation(sessions, patient_id)
    another_id = await _escalation(sessions, patient_id)
    first = await _screen(sessions, patient_id, escalation_id=escalation_id)
    await _screen(sessions, patient_id, escalation_id=another_id)
    await _screen(sessions, patient_id)
    second = await _screen(
        sessions, patient_id, status=ScreenStatus.COMPLETE, finished_at=NOW, escalation_id=escalation_id
    )
    async with sessions() as session:
        assert [s.id for s in await cssrs.screens_of(session, escalation_id)] == [first, second]
        assert await cssrs.screens_of(session, escalation_id + another_id + 100) == []
        total = await session.scalar(select(func.count()).select_from(SuicideScreen))
    assert total == 4


# ---- permission first --------------------------------------------------------------------------------------


def _asking_permission() -> SuicideScreen:
    screen = _fresh_screen()
    screen.step = cssrs.PERMISSION
    return screen


def test_not_now_closes_the_screen_with_nothing_answered_and_no_result() -> None:
    screen = _asking_permission()
    cssrs.decline(screen, NOW + WAIT)
    assert screen.status is ScreenStatus.DECLINED
    assert (screen.step, screen.answers, screen.result) == (None, {}, None)
    assert screen.finished_at == NOW + WAIT
    with pytest.raises(ValueError):
        cssrs.agree(screen, PAST, NOW + WAIT)  # spent
    with pytest.raises(ValueError):
        cssrs.answer(screen, W, True, NOW + WAIT)


def test_permission_is_only_taken_while_it_is_asked() -> None:
    screen = _fresh_screen()  # already at question 1
    with pytest.raises(ValueError):
        cssrs.agree(screen, PAST, NOW)
    with pytest.raises(ValueError):
        cssrs.decline(screen, NOW)
    assert screen.step == W.value and screen.status is ScreenStatus.OPEN


def test_a_late_ok_to_a_screen_closed_unanswered_carries_it_on() -> None:
    screen = _asking_permission()
    assert cssrs.close_unanswered(screen, NOW + WAIT) is ColumbiaRisk.NONE
    assert cssrs.agree(screen, PAST, NOW + 2 * WAIT) is W
    assert screen.status is ScreenStatus.OPEN and screen.step == W.value


# ---- "since last contact" ----------------------------------------------------------------------------------

WS, TS, MS, NS, PS, BS = (
    Question.WISH_DEAD_SINCE,
    Question.THOUGHTS_SINCE,
    Question.METHOD_SINCE,
    Question.INTENT_SINCE,
    Question.PLAN_SINCE,
    Question.BEHAVIOR_SINCE,
)


def test_since_last_contact_asks_the_same_items_and_no_when() -> None:
    screen = _asking_permission()
    assert cssrs.agree(screen, SINCE, NOW) is WS
    assert cssrs.period_of(screen) is SINCE
    assert cssrs.answer(screen, WS, True, NOW) is TS
    assert cssrs.answer(screen, TS, True, NOW) is MS
    assert cssrs.answer(screen, MS, False, NOW) is NS
    assert cssrs.answer(screen, NS, False, NOW) is PS
    assert cssrs.answer(screen, PS, False, NOW) is BS
    assert cssrs.answer(screen, BS, False, NOW) is None  # no "in the past 3 months?"
    assert screen.result == ColumbiaRisk.LOW.value
    assert set(screen.answers) == {q.value for q in (WS, TS, MS, NS, PS, BS)}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (((WS, False), (TS, False), (BS, False)), ColumbiaRisk.NONE),
        (((WS, True), (TS, False), (BS, False)), ColumbiaRisk.LOW),
        (((WS, False), (TS, True), (MS, True), (NS, False), (PS, False), (BS, False)), ColumbiaRisk.MODERATE),
        (((WS, False), (TS, False), (BS, True)), ColumbiaRisk.HIGH),  # since the last screen: recent
        (((WS, False), (TS, True), (MS, False), (NS, True)), ColumbiaRisk.HIGH),
        (((WS, False), (TS, True), (MS, False), (NS, False), (PS, True)), ColumbiaRisk.HIGH),
    ],
    ids=_case_id,
)
def test_since_last_contact_triage(path: tuple[tuple[Question, bool], ...], expected: ColumbiaRisk) -> None:
    screen = _asking_permission()
    cssrs.agree(screen, SINCE, NOW)
    assert _answer_all(screen, path) is None
    assert screen.result == expected.value
    assert cssrs.triage(dict(screen.answers)) is expected


def test_the_past_month_wording_never_mixes_with_the_since_wording() -> None:
    screen = _asking_permission()
    cssrs.agree(screen, PAST, NOW)
    with pytest.raises(ValueError):
        cssrs.answer(screen, WS, True, NOW)
    cssrs.answer(screen, W, False, NOW)
    assert screen.step == T.value and cssrs.period_of(screen) is PAST


# ---- what the care team is told was not asked --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "period", "expected"),
    [
        (((W, False), (T, True), (M, False), (N, True)), PAST, [P, B]),
        (((W, True), (T, True), (M, True), (N, False), (P, True)), PAST, [B]),
        (((W, False), (T, False), (B, True), (R, True)), PAST, []),
        (((W, False), (T, False), (B, False)), PAST, []),
        (((WS, True), (TS, True), (MS, False), (NS, True)), SINCE, [PS, BS]),
    ],
    ids=_case_id,
)
def test_not_asked_names_what_the_early_stop_skipped(
    path: tuple[tuple[Question, bool], ...], period: cssrs.Period, expected: list[Question]
) -> None:
    screen = _asking_permission()
    cssrs.agree(screen, period, NOW)
    _answer_all(screen, path)
    assert cssrs.not_asked(screen) == expected


def test_an_unfinished_screen_has_no_not_asked_list() -> None:
    screen = _fresh_screen()
    cssrs.answer(screen, W, True, NOW)
    cssrs.close_unanswered(screen, NOW + WAIT)
    assert cssrs.not_asked(screen) == []  # "not finished" says it; nothing was skipped for risk


# ---- which version, and the safety question ----------------------------------------------------------------


async def test_a_patient_screened_recently_gets_since_last_contact(sessions: Sessions) -> None:
    patient_id = (await add_patient(sessions)).id
    other_id = (await add_patient(sessions)).id
    async with sessions() as session:
        assert await cssrs.period_for(session, patient_id, NOW) is PAST
    # Declined, or closed with nothing answered: not a screen the patient answered.
    await _screen(sessions, patient_id, status=ScreenStatus.DECLINED, answered_at=NOW, finished_at=NOW)
    await _screen(sessions, patient_id, status=ScreenStatus.UNANSWERED, answered_at=NOW, finished_at=NOW)
    async with sessions() as session:
        assert await cssrs.period_for(session, patient_id, NOW) is PAST
    async with db.transaction(sessions) as session:
        screen = await cssrs.start(session, patient_id, Trigger.AMBIGUOUS, None, NOW)
        cssrs.agree(screen, PAST, NOW)
        _answer_all(screen, ((W, False), (T, False), (B, False)), NOW)
    async with sessions() as session:
        assert await cssrs.period_for(session, patient_id, NOW + timedelta(days=1)) is SINCE
        assert await cssrs.period_for(session, patient_id, NOW + cssrs.REPEAT_WITHIN) is SINCE
        later = NOW + cssrs.REPEAT_WITHIN + timedelta(seconds=1)
        assert await cssrs.period_for(session, patient_id, later) is PAST
        assert await cssrs.period_for(session, other_id, NOW) is PAST


async def test_an_unanswered_safety_question_is_found_once_until_answered_or_followed_up(
    sessions: Sessions,
) -> None:
    patient_id = (await add_patient(sessions)).id
    answered_id = (await add_patient(sessions)).id
    wait = timedelta(minutes=60)
    async with db.transaction(sessions) as session:
        cssrs.ask_safety(session, patient_id, cssrs.SafetyReason.DECLINED, Trigger.AMBIGUOUS)
        cssrs.ask_safety(session, answered_id, cssrs.SafetyReason.MODEL)
    async with db.transaction(sessions) as session:
        cssrs.safety_answered(session, answered_id, safe=True)
    now = utcnow()
    async with sessions() as session:
        assert await cssrs.unanswered_safety_checks(session, now, wait) == []  # not yet due
        waiting = await cssrs.awaiting_safety_answer(session, patient_id, now, wait)
        assert waiting is not None and waiting.reason is cssrs.SafetyReason.DECLINED
        assert waiting.trigger is Trigger.AMBIGUOUS
        assert await cssrs.awaiting_safety_answer(session, answered_id, now, wait) is None
        [due] = await cssrs.unanswered_safety_checks(session, now + wait, wait)
    assert due.patient_id == patient_id
    async with db.transaction(sessions) as session:
        cssrs.safety_followed_up(session, patient_id, "flag")
    async with sessions() as session:
        assert await cssrs.unanswered_safety_checks(session, now + wait, wait) == []
