"""Shared assertions of the CLI tests (importable from any test: pyproject's pytest `pythonpath`)."""


def one_line_error(capsys, *needles) -> str:
    """The command printed exactly one line on stderr, no traceback, containing every needle."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err
