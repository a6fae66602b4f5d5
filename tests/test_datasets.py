"""Bundled data sets load tidy, with their natural level order."""

import pytest

import multilogit as ml


def test_hsbdemo(hsbdemo):
    assert hsbdemo.shape == (200, 13)
    assert list(hsbdemo["prog"].cat.categories) == ["academic", "general", "vocation"]
    assert list(hsbdemo["ses"].cat.categories) == ["low", "middle", "high"]
    assert hsbdemo["ses"].cat.ordered
    assert hsbdemo["cid"].nunique() == 20
    assert hsbdemo["prog"].value_counts().to_dict() == {
        "academic": 105,
        "general": 45,
        "vocation": 50,
    }


def test_admissions(admissions):
    assert admissions.shape == (400, 4)
    assert list(admissions.columns) == ["admit", "gre", "gpa", "rank"]
    assert list(admissions["rank"].cat.categories) == [1, 2, 3, 4]
    assert set(admissions["admit"]) == {0, 1}


def test_names_and_unknown():
    assert ml.datasets.names() == ["admissions", "endometrial", "hsbdemo"]
    with pytest.raises(ValueError, match="unknown data set 'iris'; available: admissions"):
        ml.datasets.load("iris")


def test_each_load_is_a_fresh_copy():
    a = ml.datasets.load("hsbdemo")
    a.loc[0, "write"] = -1
    assert ml.datasets.load("hsbdemo").loc[0, "write"] != -1


def test_endometrial_is_the_reference_copy():
    """The bundled copy is the data the brglm2 reference results were computed on."""
    import pandas as pd

    from tests.reference_data import REFERENCE_DIR

    ref = pd.read_csv(REFERENCE_DIR / "data" / "endometrial.csv")
    pd.testing.assert_frame_equal(ml.datasets.load("endometrial"), ref)
