"""`python -m bot content ...`: tools for content editors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError

if TYPE_CHECKING:
    from bot.core.config import Settings


async def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.content_check.check import check_content

    root = Path(args.directory) if args.directory else settings.content_dir
    report = check_content(root)
    for line in report.errors:
        print(line)
    for line in report.warnings:
        print(f"warning: {line}")
    modules = len(report.modules.ids()) if report.modules else 0
    texts = len(report.catalog.keys()) if report.catalog else 0
    verdict = "FAILED" if report.errors else "ok"
    print(
        f"content check {verdict}: {texts} texts, {modules} modules, "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings ({root})"
    )
    return 1 if report.errors else 0


async def cmd_preview(args: argparse.Namespace, settings: Settings) -> int:
    if args.html:
        return _preview_html(args, settings)
    if args.module is None:
        raise CliError("name a module (e.g. box_breathing), or give --html DIR for pages of them all")
    from bot.content.modules import load_modules

    problems: list[str] = []
    library = load_modules(settings.content_dir, problems)
    module = library.get(args.module, args.lang)
    if module is None:
        known = ", ".join(library.ids()) or "none"
        raise CliError(
            f"no module {args.module!r} (known: {known})" + (f"; {problems[0]}" if problems else "")
        )
    print(f"{module.title}  ({module.category.value}, about {module.minutes} min)")
    print(module.summary)
    for number, step in enumerate(module.steps, start=1):
        print(f"\n[{number}/{len(module.steps)}]")
        print(step.text)
        if step.pause and number < len(module.steps):
            print(f"   (the next step comes after {step.pause} s, or when the patient taps Next)")
    return 0


def _preview_html(args: argparse.Namespace, settings: Settings) -> int:
    """Pages of every module (or MODULE) in every language, from content that may not pass the check yet:
    a reviewer sees what could be read, and is told what did not."""
    from bot.content_check.check import check_content
    from bot.content_check.preview import write_pages

    report = check_content(settings.content_dir)
    if report.catalog is None or report.modules is None:
        raise CliError("the content cannot be read:\n" + "\n".join(report.errors))
    if args.module is not None and args.module not in report.modules.ids():
        raise CliError(f"no module {args.module!r} (known: {', '.join(report.modules.ids()) or 'none'})")
    directory = Path(args.html)
    try:
        pages = write_pages(report.catalog, report.modules, directory, only=args.module)
    except OSError as error:
        raise CliError(f"cannot write the pages in {directory}: {error.strerror}") from None
    print(f"wrote {len(pages)} pages; open {directory / 'index.html'}", file=sys.stderr)
    if report.errors:
        print(
            f"warning: `content check` finds {len(report.errors)} errors; the pages show what could be read",
            file=sys.stderr,
        )
        return 1
    return 0


def add_parsers(commands: Any) -> None:
    """Add `content` (`commands` is the top-level subparsers object)."""
    content = commands.add_parser(
        "content",
        help="check and preview content/ (for content editors)",
        description="Content editor tools.",
    )
    content_commands = content.add_subparsers(dest="content_command", required=True, metavar="ACTION")
    check = content_commands.add_parser(
        "check",
        help="validate every text and module",
        description="Validate content: YAML, schema, duplicate keys, template syntax, undefined variables, "
        "Telegram's length limits, translations. Problems print as path:line: message; exit 1 on any error.",
    )
    check.add_argument("directory", nargs="?", help="the content folder (default: CONTENT_DIR)")
    check.set_defaults(handler=cmd_check)
    preview = content_commands.add_parser(
        "preview",
        help="show a coping module as a patient gets it (--html: every module as web pages)",
        description="Print a module step by step; with --html DIR, write one web page per module and "
        "language showing the chat as the patient sees it, buttons included (and DIR/index.html).",
    )
    preview.add_argument("module", nargs="?", help="the module id, e.g. box_breathing (--html: all if none)")
    preview.add_argument("--lang", default="en", help="language (default: en; --html writes every language)")
    preview.add_argument("--html", metavar="DIR", help="write web pages into DIR instead of printing")
    preview.set_defaults(handler=cmd_preview)
