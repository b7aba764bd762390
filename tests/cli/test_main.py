"""The `deepspikesort` parser: its sub-commands, and the package's errors as one line with exit status 2."""

import logging

import pytest

from spikeinterface_deepsort.cli.main import COMMAND_MODULES, build_parser, main


def test_every_command_module_contributes_its_commands():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"sort", "demo", "params", "classify", "compare", "multitask", "make-csv-datasets", "report",
                             "export"}
    assert len(COMMAND_MODULES) == 5
    for name, command in commands.items():
        assert command.get_default("func") is not None, name


def test_no_command_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: deepspikesort") and "COMMAND" in out


@pytest.mark.parametrize("argv, kind", [
    (["sort", "{missing}", "--output", "{tmp}/o", "--param", "bogus=1"], "Unknown parameter"),
    (["sort", "{missing}", "--output", "{tmp}/o"], "does not exist"),
    (["report", "{tmp}"], "no finished deepspikesort sort"),
    (["compare", "{missing}", "{missing}", "--output", "{tmp}/o"], "does not exist"),
])
def test_our_errors_are_one_line_with_status_2(tmp_path, capsys, argv, kind):
    """ParameterError, RecordingError, OutputFolderError, DataFormatError: one line naming the command."""
    argv = [a.format(missing=tmp_path / "missing", tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"deepspikesort {argv[0]}: error: ") and len(err.splitlines()) == 1, err
    assert kind in err and "Traceback" not in err


def test_quiet_sends_only_warnings_to_the_console(tmp_path, capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        root.handlers = []
        main(["-q", "report", str(tmp_path)])
        assert [h.level for h in root.handlers if type(h) is logging.StreamHandler] == [logging.WARNING]
        root.handlers = []
        main(["report", str(tmp_path)])
        assert [h.level for h in root.handlers if type(h) is logging.StreamHandler] == [logging.INFO]
    finally:
        root.handlers, _ = saved
        root.setLevel(saved[1])
