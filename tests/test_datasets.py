"""Tests for the built-in city facts dataset."""

from __future__ import annotations

import dataclasses
import doctest
import re

import numpy as np
import pytest

import fastprobe.datasets
from fastprobe.datasets import CITY_COUNTRIES, STATEMENT_TEMPLATE, CityFacts, city_facts

TABLE = dict(CITY_COUNTRIES)
STATEMENT_RE = re.compile(r"^The city of (?P<city>.+) is in (?P<country>.+)\.$")


def parse(statement: str) -> tuple[str, str]:
    """Return the (city, country) named by a statement, failing the test if it has the wrong format."""
    match = STATEMENT_RE.fullmatch(statement)
    assert match is not None, f"bad statement format: {statement!r}"
    return match["city"], match["country"]


@pytest.fixture(scope="module")
def data() -> CityFacts:
    """Return the default dataset."""
    return city_facts()


def test_table_is_well_formed() -> None:
    """The table has unique cities, 150-200 rows, at least 60 countries and known facts."""
    cities = [city for city, _ in CITY_COUNTRIES]
    assert len(cities) == len(set(cities)), "city names must be unique"
    assert 150 <= len(cities) <= 200
    assert len({country for _, country in CITY_COUNTRIES}) >= 60
    for city, country in CITY_COUNTRIES:
        assert city == city.strip() and city, city
        assert country == country.strip() and country, country
    assert TABLE["Paris"] == "France"
    assert TABLE["Tokyo"] == "Japan"
    assert TABLE["Nairobi"] == "Kenya"


def test_default_size_and_balance(data: CityFacts) -> None:
    """The default dataset has every row, int64 labels and exactly balanced classes."""
    assert len(data) >= 300
    assert len(data) == 2 * len(CITY_COUNTRIES)
    assert len(data.statements) == len(data.labels) == len(data.cities) == len(data)
    assert data.labels.dtype == np.int64
    assert data.labels.shape == (len(data),)
    assert set(np.unique(data.labels).tolist()) == {0, 1}
    assert int(data.labels.sum()) == len(data) // 2
    assert len(data.positives) == len(data.negatives) == len(data) // 2


def test_every_city_has_one_true_and_one_false_statement(data: CityFacts) -> None:
    """Each city contributes exactly one true and one false row."""
    for city, _ in CITY_COUNTRIES:
        rows = [i for i, c in enumerate(data.cities) if c == city]
        assert len(rows) == 2
        assert sorted(data.labels[rows].tolist()) == [0, 1]


def test_statement_format_and_city_column(data: CityFacts) -> None:
    """Statements follow the template and the cities column names the statement's city."""
    for statement, city in zip(data.statements, data.cities, strict=True):
        parsed_city, country = parse(statement)
        assert parsed_city == city
        assert statement == STATEMENT_TEMPLATE.format(city=city, country=country)
    assert "The city of Paris is in France." in data.positives


def test_true_statements_match_table(data: CityFacts) -> None:
    """A statement is labeled true exactly when its country is the city's country in the table."""
    for statement, label in zip(data.statements, data.labels, strict=True):
        city, country = parse(statement)
        assert (country == TABLE[city]) == (label == 1), statement
    assert data.positives == [s for s, y in zip(data.statements, data.labels, strict=True) if y == 1]


def test_false_statements_never_use_true_country() -> None:
    """False statements never name the true country and use many different countries."""
    countries = {country for _, country in CITY_COUNTRIES}
    used: set[str] = set()
    for seed in range(5):
        for statement in city_facts(seed=seed).negatives:
            city, country = parse(statement)
            assert country != TABLE[city], statement
            assert country in countries, statement
            used.add(country)
    # The false countries are spread over the table, not always the same few.
    assert len(used) >= 0.8 * len(countries)


def test_same_seed_is_identical() -> None:
    """The same seed gives an identical dataset."""
    a, b = city_facts(seed=3), city_facts(seed=3)
    assert a == b
    assert a.statements == b.statements
    assert a.cities == b.cities
    np.testing.assert_array_equal(a.labels, b.labels)
    assert city_facts(40, seed=3) == city_facts(40, seed=3)


def test_different_seeds_differ() -> None:
    """Different seeds change the order and the false countries, not the true facts."""
    a, b = city_facts(seed=0), city_facts(seed=1)
    assert a != b
    assert a.statements != b.statements  # different order
    assert set(a.negatives) != set(b.negatives)  # different false countries
    assert set(a.positives) == set(b.positives)  # true statements do not depend on the seed


@pytest.mark.parametrize("n", [2, 3, 10, 51, 300])
def test_n_truncates_with_balanced_classes(n: int) -> None:
    """``n`` keeps n rows, balanced, taken in order from the shuffled full dataset."""
    full = city_facts(seed=7)
    small = city_facts(n, seed=7)
    assert len(small) == n
    assert int(small.labels.sum()) == n - n // 2
    assert int((small.labels == 0).sum()) == n // 2
    # Rows come from the full shuffled dataset, in the same relative order.
    positions = [full.statements.index(s) for s in small.statements]
    assert positions == sorted(positions)


def test_n_equal_to_maximum_is_full_dataset() -> None:
    """``n`` equal to the number of rows gives the full dataset."""
    assert city_facts(2 * len(CITY_COUNTRIES), seed=2) == city_facts(seed=2)


@pytest.mark.parametrize("n", [0, 1, -5])
def test_n_too_small_raises(n: int) -> None:
    """``n`` below 2 raises a ValueError naming the allowed range."""
    with pytest.raises(ValueError, match=rf"n must be between 2 and {2 * len(CITY_COUNTRIES)}.*got {n}"):
        city_facts(n)


def test_n_too_large_raises_naming_maximum() -> None:
    """``n`` above the available rows raises a ValueError naming the maximum."""
    maximum = 2 * len(CITY_COUNTRIES)
    with pytest.raises(ValueError, match=rf"between 2 and {maximum} \(the maximum number of rows available\), got"):
        city_facts(maximum + 1)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.8])
def test_split_by_city(data: CityFacts, fraction: float) -> None:
    """The split puts every city on one side only and matches the requested fraction."""
    train, test = data.split(fraction, seed=1)
    assert set(train.cities).isdisjoint(test.cities)
    assert len(train) + len(test) == len(data)
    assert sorted(train.statements + test.statements) == sorted(data.statements)
    n_cities = len(set(data.cities))
    n_test_cities = len(set(test.cities))
    assert abs(n_test_cities - fraction * n_cities) <= 1
    assert abs(len(test) - fraction * len(data)) <= 2  # two rows per city
    # Both statements about a city stay together, so each side stays balanced.
    assert int(train.labels.sum()) == len(train) // 2
    assert int(test.labels.sum()) == len(test) // 2


def test_split_is_deterministic(data: CityFacts) -> None:
    """The split depends only on its seed."""
    assert data.split(0.3, seed=4) == data.split(0.3, seed=4)
    assert data.split(0.3, seed=4)[1] != data.split(0.3, seed=5)[1]


def test_split_keeps_row_order(data: CityFacts) -> None:
    """Each side of the split keeps the original relative row order."""
    train, test = data.split()
    for part in (train, test):
        positions = [data.statements.index(s) for s in part.statements]
        assert positions == sorted(positions)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_split_bad_fraction_raises(data: CityFacts, fraction: float) -> None:
    """A test fraction outside (0, 1) raises a ValueError stating the value."""
    with pytest.raises(
        ValueError, match=rf"test_fraction must be strictly between 0 and 1, got {re.escape(repr(fraction))}"
    ):
        data.split(fraction)


def test_split_needs_two_cities() -> None:
    """A dataset with a single city cannot be split."""
    one_city = CityFacts(
        statements=["The city of Paris is in France.", "The city of Paris is in Japan."],
        labels=np.array([1, 0]),
        cities=["Paris", "Paris"],
    )
    with pytest.raises(ValueError, match="fewer than 2 distinct cities"):
        one_city.split()


def test_cityfacts_is_frozen_and_validated(data: CityFacts) -> None:
    """CityFacts is immutable and rejects inconsistent fields."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.labels = np.zeros(len(data), dtype=np.int64)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        data.labels[0] = 1 - data.labels[0]
    with pytest.raises(ValueError, match="same length"):
        CityFacts(statements=["a"], labels=np.array([1, 0]), cities=["x"])
    with pytest.raises(ValueError, match="only 0"):
        CityFacts(statements=["a"], labels=np.array([2]), cities=["x"])


def test_docstring_examples() -> None:
    """The examples in the module's docstrings run and give the documented output."""
    result = doctest.testmod(fastprobe.datasets, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0
