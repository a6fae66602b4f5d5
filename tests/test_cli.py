"""The command line: the demo fit, a user's CSV, and one-line errors with a non-zero exit."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from multilogit.cli import main


def test_demo_prints_summary(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Multinomial Logit Regression Results (reference: academic)" in out
    assert "prog=general" in out and "prog=vocation" in out


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "multilogit"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "Log-Likelihood:" in proc.stdout and "-179.982" in proc.stdout


@pytest.fixture
def csv_path(tmp_path, hsbdemo):
    path = tmp_path / "hsb.csv"
    hsbdemo.to_csv(path, sep=";", index=False)
    return path


def test_fit_user_csv(csv_path, capsys):
    assert (
        main(
            [
                "fit",
                "prog ~ C(ses) + write",
                "--data",
                str(csv_path),
                "--sep",
                ";",
                "--ref",
                "vocation",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "reference: vocation" in out and "prog=academic" in out and "C(ses)" in out


def test_fit_formats(csv_path, capsys):
    assert (
        main(["fit", "prog ~ write", "--data", str(csv_path), "--sep", ";", "--format", "html"])
        == 0
    )
    assert "<table" in capsys.readouterr().out
    assert (
        main(["fit", "prog ~ write", "--data", str(csv_path), "--sep", ";", "--format", "latex"])
        == 0
    )
    assert "\\begin{tabular}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "prog ~ wrote", "--sep", ";"], "'wrote', which is not a column"),
        (["fit", "prog ~ write", "--sep", ";", "--ref", "x"], "reference outcome 'x'"),
        (["fit", "prog ~ write"], "check --sep"),
        (["fit", "prog ~ write", "--sep", ";", "--alpha", "2"], "--alpha"),
    ],
)
def test_errors_are_one_line(csv_path, capsys, args, message):
    assert main(args[:2] + ["--data", str(csv_path)] + args[2:]) == 2
    err = capsys.readouterr().err
    assert err.startswith("multilogit: error:") and message in err
    assert err.strip().count("\n") == 0


def test_missing_file(capsys):
    assert main(["fit", "y ~ x", "--data", "/nonexistent/file.csv"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_missing_values_in_csv(tmp_path, capsys, hsbdemo):
    df = hsbdemo.copy()
    df["write"] = df["write"].astype(float)
    df.loc[0, "write"] = float("nan")
    path = tmp_path / "na.csv"
    df.to_csv(path, index=False)
    assert main(["fit", "prog ~ write", "--data", str(path)]) == 2
    assert "1 of 200 rows have missing values" in capsys.readouterr().err
    assert main(["fit", "prog ~ write", "--data", str(path), "--missing", "drop"]) == 0
    assert "No. Observations:                   199" in capsys.readouterr().out
    assert pd.read_csv(path).shape == (200, df.shape[1])


def _csv(capsys, csv_path, *extra):
    args = ["fit", "prog ~ C(ses) + write", "--data", str(csv_path), "--sep", ";"]
    assert main(args + list(extra) + ["--format", "csv"]) == 0
    from io import StringIO

    return pd.read_csv(StringIO(capsys.readouterr().out), index_col=[0, 1, 2])


@pytest.fixture
def api_fit(csv_path):
    """The same model through the Python API, on the data as the CLI reads them."""
    import multilogit

    return multilogit.mnlogit("prog ~ C(ses) + write", pd.read_csv(csv_path, sep=";"))


def test_csv_output_is_the_coefficient_table(csv_path, capsys, api_fit):
    table = _csv(capsys, csv_path)
    res = api_fit.fit()
    coef = table.loc["coef"]
    assert list(table.columns) == ["estimate", "std_err", "z", "pvalue", "lower", "upper"]
    assert coef.index.tolist() == res.params.unstack().index.tolist()
    np.testing.assert_allclose(coef["estimate"], res.params.unstack(), rtol=1e-9)
    np.testing.assert_allclose(coef["std_err"], res.bse.unstack(), rtol=1e-9)
    np.testing.assert_allclose(coef[["lower", "upper"]], res.conf_int(), rtol=1e-9)


def test_cluster_and_cov_type(csv_path, capsys, api_fit):
    clustered = _csv(capsys, csv_path, "--cluster", "cid").loc["coef"]
    expected = api_fit.fit(cov_type="cluster", cov_kwds={"groups": "cid"})
    np.testing.assert_allclose(clustered["std_err"], expected.bse.unstack(), rtol=1e-9)
    hc0 = _csv(capsys, csv_path, "--cov-type", "HC0").loc["coef"]
    np.testing.assert_allclose(
        hc0["std_err"], api_fit.fit(cov_type="HC0").bse.unstack(), rtol=1e-9
    )
    assert not np.allclose(hc0["std_err"], clustered["std_err"])


def test_rrr_and_margins(csv_path, capsys, api_fit):
    table = _csv(capsys, csv_path, "--rrr", "--margins")
    res = api_fit.fit()
    np.testing.assert_allclose(table.loc["rrr"]["estimate"], np.exp(res.params.unstack()))
    me = res.get_margeff().summary_frame()
    np.testing.assert_allclose(table.loc["margins"]["estimate"], me["effect"], rtol=1e-9)
    args = ["fit", "prog ~ C(ses) + write", "--data", str(csv_path), "--sep", ";"]
    assert main(args + ["--rrr", "--margins"]) == 0
    out = capsys.readouterr().out
    assert "Multinomial Logit Regression Results" in out and "Marginal Effects" in out
    assert f"{np.exp(res.params.loc['write', 'general']):.4f}" in out
    assert main(args + ["--margins", "--format", "latex"]) == 0
    assert capsys.readouterr().out.count("\\begin{tabular}") >= 2


def test_numpy_in_a_cli_formula(csv_path, capsys):
    args = ["fit", "prog ~ np.log(write)", "--data", str(csv_path), "--sep", ";"]
    assert main(args) == 0
    assert "np.log(write)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cov-type", "cluster"], "--cov-type cluster needs --cluster COL"),
        (["--cluster", "cid", "--cov-type", "HC1"], "cannot go with --cov-type HC1"),
        (["--cluster", "school"], "--cluster 'school' is not a column"),
    ],
)
def test_cov_option_errors(csv_path, capsys, args, message):
    base = ["fit", "prog ~ write", "--data", str(csv_path), "--sep", ";"]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().count("\n") == 0
