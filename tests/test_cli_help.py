"""Every command (each module of `cli.COMMANDS`) and subcommand answers --help with exit status 0, and
the help states the real defaults."""
import contextlib
import io
import re

import pytest

from iwsi import cli


def bench_subcommands() -> list[str]:
    """The benchmarks `iwsi bench --help` lists (benchmarks/bench.py's subcommands), and `app`."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.main(["bench", "--help"])
    listed = re.search(r"\{([\w,-]+)\}", out.getvalue())
    return [*(listed.group(1).split(",") if listed else []), "app"]


COMMANDS = [[], *([cli.name(c)] for c in cli.COMMANDS), *(["bench", b] for b in bench_subcommands())]


def test_every_command_module_has_the_one_shape():
    for command in cli.COMMANDS:
        assert isinstance(command.HELP, str) and callable(command.add_arguments) and callable(command.main)


def test_bench_lists_its_benchmarks():
    assert {"generate", "score", "app"} <= set(bench_subcommands())


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "iwsi")
def test_help_exits_0(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--help"])
    assert stop.value.code == 0 and "usage:" in capsys.readouterr().out


def test_top_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert all(cli.name(c) in text for c in cli.COMMANDS)


def test_ablate_help_states_its_own_default_and_offers_no_unused_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["ablate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "cache/ablations/" in text and "cache/runs" not in text and "--force" not in text
