"""`python -m bot risk ...`: screen messages with the risk detector, measure it, build its semantic layer,
and export the care team's verdicts on resolved alerts for the clinical lead."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.core.config import Settings
    from bot.risk.detector import Detector, Screening


def _root(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.content) if args.content else settings.content_dir


def _detector(args: argparse.Namespace, settings: Settings) -> Detector:
    from bot.content_check.check import check_content

    report = check_content(_root(args, settings))
    if report.risk is None:
        raise CliError("the content does not pass `content check`:\n" + "\n".join(report.errors))
    return report.risk


def _matched(detector: Detector, root: Path, text: str, result: Screening) -> list[str]:
    """What matched, for a clinician: the patient's own words (not the normalised ones the rules read) and
    the lexicon rule, e.g. `suicide/imminent: "KILLL myself" by the rule 'kill myself'`."""
    from bot.risk.detector import CLAUSE_MARK

    found = []
    for match in result.matches:
        words = detector.lexicon.normalizer.as_typed(text, match.phrase.split(" "), CLAUSE_MARK)
        why = f" ({', '.join(match.context)})" if match.context else ""
        said = json.dumps(words, ensure_ascii=False) if words is not None else repr(match.phrase)
        rule = f"{match.pattern!r}" + (f" ({match.where.removeprefix(f'{root}/')})" if match.where else "")
        found.append(f"{match.category}/{match.lexicon_level.label}: {said} by the rule {rule}{why}")
    if result.semantic is not None and result.semantic.raises is not None:
        found.append(f"{result.semantic.describe()}: {result.semantic.raises}")
    return found


async def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    detector = _detector(args, settings)
    if args.file in (None, "-"):
        lines: Any = sys.stdin
    else:
        try:
            lines = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
            lines = lines.splitlines()
        except OSError as error:
            raise CliError(f"cannot read {args.file}: {error.strerror}") from None
    for line in lines:
        text = line.rstrip("\n")
        if not text.strip():
            continue
        result = detector.screen(text)
        record = {
            "text": text,
            "level": result.level.label,
            "categories": [str(c) for c in result.categories],
            "matched": _matched(detector, _root(args, settings), text, result),
            "follow_up": result.follow_up.value if result.follow_up else None,
            "semantic": None
            if result.semantic is None
            else {
                "imminent": round(result.semantic.imminent, 3),
                "high_or_imminent": round(result.semantic.risk, 3),
                "category": str(result.semantic.category),
                "raises": result.semantic.raises,
            },
        }
        print(json.dumps(record, ensure_ascii=False), flush=True)
    return 0


async def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.risk.evaluate import EvalFileError, evaluate, read_labelled
    from bot.risk.levels import RiskLevel

    detector = _detector(args, settings)
    try:
        items = read_labelled(Path(args.file))
    except OSError as error:
        raise CliError(f"cannot read {args.file}: {error.strerror}") from None
    except EvalFileError as error:
        raise CliError(str(error)) from None
    evaluation = evaluate(detector, items)
    for outcome in evaluation.misses:
        kind = "FALSE ALARM" if outcome.false_alarm else "MISSED, ASKED" if outcome.asked else "MISSED"
        item = outcome.item
        print(
            f"{args.file}:{item.line}: {kind}: labelled {item.level.label}/{item.category}, "
            f"screened {outcome.result.level.label}: {item.text}"
        )
        for description in _matched(detector, _root(args, settings), item.text, outcome.result):
            print(f"    {description}")
    summary = evaluation.summary()
    recall = summary["recall"]
    assert isinstance(recall, dict)
    print(
        "recall: "
        + ", ".join(
            f"{level} {'-' if value is None else f'{value:.3f}'} ({summary['counts'][level]})"  # type: ignore[index]
            for level, value in recall.items()
        )
    )
    rate = evaluation.false_alarm_rate
    print(
        f"false alarms on none: {summary['false_alarms']} of {evaluation.count(RiskLevel.NONE)}"
        + ("" if rate is None else f" ({rate:.1%})")
    )
    reached = summary["reached"]
    assert isinstance(reached, dict)
    print(
        "paged or asked: "
        + ", ".join(f"{level} {'-' if value is None else f'{value:.3f}'}" for level, value in reached.items())
    )
    questions = evaluation.question_rate
    if questions is not None:
        print(f"questions on none: {questions:.1%}")
    print(f"median {summary['median_us']} microseconds per message")
    return 0


async def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from bot.risk import semantic
    from bot.risk.corpus import load_examples
    from bot.risk.lexicon import load_lexicon
    from bot.risk.training import build_layer

    root = Path(args.content) if args.content else settings.content_dir
    problems: list[str] = []
    lexicon = load_lexicon(root, problems)
    examples = load_examples(root, problems)
    if lexicon is None or problems:
        raise CliError("the content does not pass `content check`:\n" + "\n".join(problems))
    if not examples:
        raise CliError(f"no labelled examples in {root}/*/risk/")
    built = await asyncio.to_thread(build_layer, examples, lexicon, retrain=args.force)
    head = built.layer.head
    how = f"trained in {built.seconds:.0f} s" if built.trained else "already trained (--force trains again)"
    print(f"semantic layer: {head.encoder}, {len(examples)} examples, {how}")
    print(f"cached in {semantic.head_path(head.fingerprint, head.encoder)}")
    print(
        f"thresholds: page at P(imminent) >= {head.page_threshold:.3f}, ask at P(high or imminent) >= "
        f"{head.ask_threshold:.3f}"
    )
    print("validation folds (rules and layer together): " + json.dumps(head.validation))
    print("measure it on messages it has not seen: python -m bot risk eval FILE.tsv")
    return 0


async def cmd_export_labels(args: argparse.Namespace, settings: Settings) -> int:
    """The care team's verdicts with the redacted words behind them (bot.privacy.labels), for an admin,
    audited. The file appears only once the audit record is committed."""
    import getpass
    import os
    import socket
    from zoneinfo import ZoneInfo

    from bot.cli.common import with_session
    from bot.core import audit
    from bot.core.callbacks import MAX_ID
    from bot.core.models import Counselor, CounselorRole
    from bot.privacy import labels

    out = Path(args.out)
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out}: there is no folder {out.parent}")
    partial = out.with_name(f".{out.name}.partial")
    # `--admin` is a claim anyone with the shell and the key could make: the record also says who ran it.
    os_user, host = getpass.getuser(), socket.gethostname()

    async def work(session: AsyncSession) -> int:
        admin = await session.get(Counselor, args.admin) if 0 < args.admin <= MAX_ID else None
        if admin is None or not admin.active or admin.role is not CounselorRole.ADMIN:
            audit.record(
                session,
                "risk.labels_export_refused",
                actor_type="cli",
                counselor_id=args.admin,
                os_user=os_user,
                host=host,
            )
            print(
                f"error: counselor {args.admin} is not an active admin: only an admin may export labels "
                "(see `python -m bot counselor list`)",
                file=sys.stderr,
            )
            return 1
        found = await labels.resolved_labels(session, ZoneInfo(settings.default_timezone))
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
                handle.write(labels.tsv(found.rows))
        except OSError as error:
            raise CliError(f"cannot write {out}: {error.strerror}") from None
        audit.record(
            session,
            "risk.labels_exported",
            actor_type="counselor",
            actor_id=admin.id,
            rows=len(found.rows),
            alerts=found.alerts,
            os_user=os_user,
            host=host,
        )
        print(
            f"wrote {out}: {len(found.rows)} messages from {found.alerts} resolved alerts, redacted "
            f"(left out: {found.without_verdict} resolved without a verdict, {found.withheld} of patients "
            "waiting to be erased or who withdrew consent). Review every line before adding any to "
            "content/*/risk/.",
            file=sys.stderr,
        )
        return 0

    try:
        status = await with_session(settings, work)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if status == 0:
        partial.replace(out)
    return status


def add_parsers(commands: Any) -> None:
    """Add `risk` (`commands` is the top-level subparsers object)."""
    risk = commands.add_parser(
        "risk",
        help="audit the risk detector (for clinical leads)",
        description="Screen messages with the risk lexicon in content/, measure it on labelled messages, "
        "retrain its model, or export the care team's verdicts on resolved alerts.",
    )
    risk_commands = risk.add_subparsers(dest="risk_command", required=True, metavar="ACTION")
    risk_check = risk_commands.add_parser(
        "check",
        help="screen messages, one per line",
        description="Screen one message per line (from FILE, or standard input with - or no FILE) and print "
        "one JSON object per line: text, level, categories, matched, follow_up.",
    )
    risk_check.add_argument("file", nargs="?", metavar="FILE|-")
    risk_check.set_defaults(handler=cmd_check)
    risk_eval = risk_commands.add_parser(
        "eval",
        help="recall and false alarms on a labelled file",
        description="Read a tab-separated file with columns level, category, text; print every miss and "
        "false alarm, recall per level and the false-alarm rate on 'none' messages (flagged high or "
        "imminent).",
    )
    risk_eval.add_argument("file", metavar="FILE.tsv")
    risk_eval.set_defaults(handler=cmd_eval)
    risk_train = risk_commands.add_parser(
        "train",
        help="build the semantic layer from content's labelled corpus (cached outside the repository)",
        description="Train the semantic layer's head on */risk/examples.tsv and */risk/corpus/*.tsv, choose "
        "its thresholds on validation folds, and keep it in the cache folder (RISK_CACHE_DIR, default "
        "~/.cache/iop-companion/risk); the bot reads it from there at start. Prints the validation figures.",
    )
    risk_train.add_argument("--force", action="store_true", help="train again even if a cached head fits")
    risk_train.set_defaults(handler=cmd_train)
    risk_labels = risk_commands.add_parser(
        "export-labels",
        help="the care team's verdicts on resolved alerts, redacted, as TSV (admins only, audited)",
        description="Write the words behind every resolved alert with the verdict the resolving counselor "
        "gave (real_concern or false_alarm), one message per line, as a tab-separated file with columns "
        "level, category, text, outcome, resolved_month. Telegram ids, the patient's alias, the names in "
        "their safety plan, the counselors' names, phone numbers, e-mails, @handles and web addresses are "
        "replaced by placeholders (redaction, not de-identification: review every line). Patients who were "
        "erased, whose deletion is waiting, or who withdrew consent are left out. For the clinical lead to "
        "review before adding any to the labelled examples. Written to the audit log.",
    )
    risk_labels.add_argument("--out", required=True, metavar="FILE.tsv", help="the file to write")
    risk_labels.add_argument(
        "--admin",
        required=True,
        type=int,
        metavar="ID",
        help="your counselor id, which must be an admin's (`python -m bot counselor list`)",
    )
    risk_labels.set_defaults(handler=cmd_export_labels)
    for sub in (risk_check, risk_eval, risk_train):
        sub.add_argument("--content", metavar="DIR", help="the content folder (default: CONTENT_DIR)")
