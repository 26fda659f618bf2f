"""Every command and subcommand answers --help with exit status 0 (export and bench have parsers of their own)."""
import pytest

from iwsi import cli

COMMANDS = [[], ["run"], ["ablate"], ["probe"], ["export"], ["bench"], ["bench", "app"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "iwsi")
def test_help_exits_0(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--help"])
    assert stop.value.code == 0 and "usage:" in capsys.readouterr().out


def test_ablate_help_states_its_own_default_and_offers_no_unused_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["ablate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "cache/ablations/" in text and "cache/runs" not in text and "--force" not in text
