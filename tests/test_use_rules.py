"""Tiering a reported use and choosing harm-reduction advice (bot.risk.use; issue 18, items 9 and 10)."""

from __future__ import annotations

import pytest

from bot.risk.use import Advice, Substance, Tier, UseReader, UseReport, Withdrawal, advice_for
from tests.harness import SHIPPED_CONTENT, load_content_once

S = Substance


@pytest.fixture(scope="module")
def reader() -> UseReader:
    return load_content_once(SHIPPED_CONTENT).risk.use


@pytest.mark.parametrize(
    ("report", "tier"),
    [
        (UseReport(frozenset({S.ALCOHOL})), Tier.FLAG),
        (UseReport(frozenset({S.CANNABIS})), Tier.FLAG),
        (UseReport(frozenset({S.STIMULANT})), Tier.FLAG),
        (UseReport(frozenset({S.BENZO})), Tier.FLAG),
        (UseReport(frozenset({S.OTHER})), Tier.FLAG),
        (UseReport(frozenset({S.STIMULANT, S.CANNABIS})), Tier.FLAG),
        (UseReport(frozenset({S.OPIOID})), Tier.HIGH),
        (UseReport(frozenset({S.UNKNOWN_PILLS})), Tier.HIGH),
        (UseReport(frozenset({S.SEVERAL})), Tier.HIGH),
        (UseReport(), Tier.HIGH),  # not known what: opioids cannot be ruled out
        (UseReport(frozenset({S.ALCOHOL}), alone=True), Tier.HIGH),
        (UseReport(frozenset({S.STIMULANT}), injected=True), Tier.HIGH),
        (UseReport(frozenset({S.ALCOHOL, S.CANNABIS})), Tier.HIGH),  # mixing with alcohol
        (UseReport(frozenset({S.BENZO, S.STIMULANT})), Tier.HIGH),  # mixing with benzodiazepines
    ],
)
def test_tier(report: UseReport, tier: Tier) -> None:
    assert report.tier is tier
    assert report.needs_how is (tier is Tier.FLAG)


def test_a_report_round_trips_through_json_and_ignores_what_it_does_not_know() -> None:
    report = UseReport(frozenset({S.ALCOHOL, S.BENZO}), alone=True)
    assert UseReport.from_json(report.as_json()) == report
    assert UseReport.from_json({"substances": ["alcohol", "glue"]}) == UseReport(frozenset({S.ALCOHOL}))
    assert UseReport.from_json(None) is None


@pytest.mark.parametrize(
    ("text", "substances", "alone", "injected"),
    [
        ("two beers", {S.ALCOHOL}, False, False),
        ("had a few beers last night", {S.ALCOHOL}, False, False),
        ("two beers, alone at home", {S.ALCOHOL}, True, False),
        ("I wasn't alone, just a couple of drinks", {S.ALCOHOL}, False, False),
        ("i used heroin last night", {S.OPIOID}, False, False),
        ("shot up last night", set(), False, True),
        ("smoked a joint and had a beer", {S.CANNABIS, S.ALCOHOL}, False, False),
        ("took some pills", {S.UNKNOWN_PILLS}, False, False),
        ("I relapsed", set(), False, False),
        ("tomé unas cervezas yo solo", {S.ALCOHOL}, True, False),
        ("me inyecté anoche", set(), False, True),
        ("fumé mota", {S.CANNABIS}, False, False),
        ("SMOKED WEED", {S.CANNABIS}, False, False),
    ],
)
def test_reading_what_was_used_and_how(
    reader: UseReader, text: str, substances: set[Substance], alone: bool, injected: bool
) -> None:
    assert reader.read(text) == UseReport(frozenset(substances), alone=alone, injected=injected)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("shaking and sweating, havent had a drink in 2 days", Withdrawal.DANGEROUS),
        ("i have the shakes since i stopped my xanax", Withdrawal.DANGEROUS),
        ("estoy temblando, dejé de tomar hace dos días", Withdrawal.DANGEROUS),
        ("im dope sick", Withdrawal.DOPE_SICK),
        ("estoy con la malilla", Withdrawal.DOPE_SICK),
        ("missed my methadone dose", Withdrawal.MISSED_DOSE),
        ("ran out of my subs", Withdrawal.MISSED_DOSE),
        ("se me acabó la metadona", Withdrawal.MISSED_DOSE),
        ("I'm shaking with excitement about my new job", None),
        ("ran out of milk", None),
        ("missed my bus", None),
    ],
)
def test_reading_withdrawal_and_missed_doses(reader: UseReader, text: str, found: Withdrawal | None) -> None:
    assert reader.withdrawal(text) is found


A = Advice


@pytest.mark.parametrize(
    ("report", "advice"),
    [
        (UseReport(frozenset({S.OPIOID})), [A.TOLERANCE, A.NOT_ALONE, A.NALOXONE, A.TEST_STRIPS]),
        (UseReport(), [A.TOLERANCE, A.NOT_ALONE, A.NALOXONE, A.TEST_STRIPS]),  # unsure: all of it
        (UseReport(frozenset({S.ALCOHOL})), [A.TOLERANCE, A.WITHDRAWAL]),
        (UseReport(frozenset({S.ALCOHOL}), alone=True), [A.TOLERANCE, A.NOT_ALONE, A.WITHDRAWAL]),
        (
            UseReport(frozenset({S.BENZO})),
            [A.TOLERANCE, A.NOT_ALONE, A.NALOXONE, A.TEST_STRIPS, A.WITHDRAWAL],
        ),
        (UseReport(frozenset({S.STIMULANT})), [A.NOT_ALONE, A.NALOXONE, A.TEST_STRIPS]),
        (UseReport(frozenset({S.CANNABIS})), []),
        (UseReport(frozenset({S.OTHER})), [A.TEST_STRIPS]),
    ],
)
def test_advice_by_what_was_used(report: UseReport, advice: list[Advice]) -> None:
    assert advice_for(report) == advice
