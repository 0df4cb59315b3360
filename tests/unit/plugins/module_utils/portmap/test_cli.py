"""The command line is read without argparse when it is plain, and always as argparse reads it.

``cli.parse`` reads the usual command lines (the renewal job's, ``map``, ``public``...) from the
same declaration ``cli.parser()`` builds argparse from; anything else (help, an abbreviation, a
bad value) goes to argparse, which prints the usage error.
"""

from __future__ import annotations

import pytest

from portmap import cli

JOB = ["--gateway", "192.168.1.1", "--method", "auto", "--timeout", "3", "--ledger", "/var/lib/portmap-natpmp/ledger.json",
       "renew", "--log", "syslog"]

PLAIN = [
    ["public"],
    ["--gateway", "10.0.0.1", "public"],
    ["--gateway=10.0.0.1", "--method=pcp", "--timeout", "0.5", "public"],
    ["--port", "5350", "--source-address", "10.8.0.2", "--lock", "/tmp/x.lock", "public"],
    JOB,
    JOB + ["--now"],
    JOB + ["--on-change", "/usr/local/bin/hook", "--now", "-x", "a b"],
    JOB[:-2] + ["--now", "--log", "/var/log/x.log", "--on-change"],
    ["map", "tcp", "8080"],
    ["map", "both", "8080", "--external-port", "0", "--lifetime", "60"],
    ["map", "--lifetime", "60", "udp", "--external-port=9000", "8080"],
    ["delete", "udp", "8080"],
    ["status"],
    ["status", "--json"],
    ["nat", "--stun-server", "10.0.0.5:3478", "--json"],
    ["--method", "natpmp", "nat", "--stun-server=10.0.0.5:3478"],
    JOB[:-3] + ["watch", "--log", "syslog"],  # the service's command line
    JOB[:-3] + ["watch", "--log", "/var/log/portmap-natpmp/watch.log", "--upnp-check", "30", "--on-change", "/bin/x"],
    ["watch", "--seed", "7", "--log", "stderr"],
]

ARGPARSE = [  # not plain: argparse reads them (and refuses most)
    [],
    ["--help"],
    ["map", "--help"],
    ["--gate", "10.0.0.1", "public"],  # an abbreviation argparse accepts
    ["map", "tcp", "8080", "--lifetime", "-5"],  # a value that starts with a dash
    ["map", "tcp", "x"],
    ["map", "sctp", "80"],
    ["map", "tcp"],
    ["map", "tcp", "80", "90"],
    ["--method", "upnpx", "public"],
    ["--timeout", "0", "public"],
    ["--timeout", "nan", "public"],
    ["--timeout", "-1", "public"],
    ["nat"],
    ["status", "--json=yes"],
    ["frobnicate"],
    ["public", "--gateway", "10.0.0.1"],  # global options come before the command
    ["--", "public"],
    ["--ledger"],
    ["watch", "--upnp-check", "0"],
    ["watch", "--seed", "x"],
]


def reference(argv):
    """What argparse makes of ``argv``: its namespace, or its exit code."""
    try:
        return vars(cli.parser().parse_args(argv))
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_command_lines_are_read_without_argparse_exactly_as_argparse_reads_them(argv):
    plain = cli._plain(list(argv))  # pylint: disable=protected-access
    assert plain is not None, "this command line should not need argparse"
    assert vars(plain) == reference(argv)


@pytest.mark.parametrize("argv", ARGPARSE, ids=lambda argv: " ".join(argv) or "(empty)")
def test_anything_else_goes_to_argparse(argv, capsys):
    assert cli._plain(list(argv)) is None  # pylint: disable=protected-access
    expected = reference(argv)
    capsys.readouterr()
    if isinstance(expected, dict):
        assert vars(cli.parse(argv)) == expected
    else:
        with pytest.raises(SystemExit) as raised:
            cli.parse(argv)
        assert raised.value.code == expected


def test_usage_errors_name_the_option_and_say_why(capsys):
    with pytest.raises(SystemExit):
        cli.parse(["--timeout", "-1", "public"])
    assert "argument --timeout: must be a positive number of seconds, got '-1'" in capsys.readouterr().err


def test_hidden_option_stays_out_of_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.parse(["--help"])
    shown = capsys.readouterr().out
    assert "--gateway" in shown and "--port" not in shown and "SUPPRESS" not in shown
