"""The `a2world` command: help for every group, errors for unknown commands."""

import subprocess
import sys

import pytest

from a2world_ros.cli.main import build_parser, main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "a2world rig list" in out


def test_every_group_has_help(capsys):
    parser = build_parser()
    groups = parser._subparsers._group_actions[0].choices  # argparse keeps subparsers here
    assert groups, "at least one subcommand group is registered"
    for name in groups:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0, name
        assert capsys.readouterr().out.startswith("usage: a2world " + name)


def test_unknown_command_fails():
    result = subprocess.run([sys.executable, "-m", "a2world_ros.cli.main", "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'nonsense'" in result.stderr
