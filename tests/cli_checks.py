"""Shared assertions of the CLI tests (importable from any test: pyproject's pytest `pythonpath`)."""


def one_line_error(capsys, *needles) -> str:
    """The command printed exactly one line on stderr, no traceback, containing every needle."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def quickstart_template(*, scores=("empirical", "population"), seeds="[0, 1]", steps=10,
                        n_samples=16, record=5, sweep="") -> str:
    """A tiny quickstart config (d = 4, N = 3 and 30) as a template: `{out}` (and whatever
    placeholders `seeds` or `sweep` carry) are left for str.format. `sweep`: the body of a
    [sweep] table, omitted when empty."""
    score_list = ", ".join(f'"{s}"' for s in scores)
    text = (f'\njob = "quickstart"\noutput = "{{out}}"\n[data]\nd = 4\n[grid]\n'
            f"n_train = [3, 30]\nscore = [{score_list}]\nseeds = {seeds}\n[sampler]\n"
            f"steps = {steps}\nn_samples = {n_samples}\nrecord = {record}\n")
    return text + (f"[sweep]\n{sweep}\n" if sweep else "")
