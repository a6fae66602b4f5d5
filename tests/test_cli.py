"""The command line: the demo fit, a user's CSV, and one-line errors with a non-zero exit."""

import subprocess
import sys

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
