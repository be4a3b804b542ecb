"""kasify-sim argument parsing and exit statuses, in process."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from simulator.cli import CONTROL_ENV, build_parser, main


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def test_keypad_is_a_subcommand_with_its_actions() -> None:
    parser = build_parser()
    assert "keypad" in subcommands(parser)
    keypad = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "keypad"
    ]
    assert subcommands(keypad) == {
        "serve", "type", "press", "door", "tamper", "watch", "status", "fault"
    }  # fmt: skip


def test_type_arguments_parse() -> None:
    args = build_parser().parse_args(["keypad", "type", "123456", "--control", "/s", "--wait", "2"])
    assert (args.code, args.control, args.wait) == ("123456", "/s", 2.0)


def test_no_command_prints_help_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: kasify-sim" in capsys.readouterr().out
    assert main(["keypad"]) == 2
    assert "serve" in capsys.readouterr().out


def test_client_needs_a_control_socket(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CONTROL_ENV, raising=False)
    assert main(["keypad", "door", "open"]) == 2
    assert f"give --control SOCKET or set ${CONTROL_ENV}" in capsys.readouterr().err


def test_serve_requires_link_and_control(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["keypad", "serve", "--link", "/tmp/x"])
    assert exit_info.value.code == 2
    assert "--control" in capsys.readouterr().err


def test_serve_refuses_to_replace_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "not-a-link"
    target.write_text("precious")
    assert main(["keypad", "serve", "--link", str(target), "--control", "/tmp/kp-none.sock"]) == 1
    assert "is not a symlink; not replacing it" in capsys.readouterr().err
    assert target.read_text() == "precious"
