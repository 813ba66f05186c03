"""`byourside accounts limits` refuses a negative or non-numeric limit before touching the store."""

import pytest

from byourside_server.cli.main import build_parser


@pytest.mark.parametrize("value, message", [("-3", "-3 is negative"), ("x", "'x' is not a whole number")])
def test_a_limit_must_be_a_whole_number_of_zero_or_more(value, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["accounts", "limits", "acme", "--max-concurrent", value])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_zero_and_positive_limits_are_taken():
    args = build_parser().parse_args(["accounts", "limits", "acme", "--max-concurrent", "0", "--monthly-minutes", "500"])
    assert (args.max_concurrent, args.monthly_minutes) == (0, 500)
