"""The catalog of mistakes: every one detected, each single-place one blamed on its layer and
parameter, and the shared correct code passing every check."""

import pytest

from reference.bugs import CATALOG, MISTAKES
from reference.bugs.detect import correct_passes, detection_matrix, render_matrix


@pytest.fixture(scope="module")
def matrix():
    return {row.name: row for row in detection_matrix()}


def test_the_catalog_is_large_enough():
    assert len(MISTAKES) >= 20 and len(CATALOG) == len(MISTAKES)


def test_the_correct_base_passes_every_check():
    assert correct_passes() == []


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_mistake_is_detected_by_the_checks_it_should_be(matrix, name):
    row = matrix[name]
    assert row.detected, f"{name} went unnoticed"
    assert row.missed_expected == [], f"{name} was not caught by {row.missed_expected}"
    assert row.diagnosis and row.diagnosis != "nothing caught it"


@pytest.mark.parametrize("name", sorted(n for n, m in CATALOG.items() if m.blame is not None))
def test_single_place_mistakes_are_blamed_on_their_layer_and_parameter(matrix, name):
    row = matrix[name]
    assert row.blame_ok, f"{name}: blamed {row.blame}, expected {row.expected_blame}"


def test_the_matrix_renders_a_row_per_mistake(matrix):
    text = render_matrix(list(matrix.values()))
    assert f"{len(CATALOG)} of {len(CATALOG)} mistakes detected" in text
    assert all(name in text for name in CATALOG)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_mistake_documents_the_line_that_differs(name):
    doc = type(CATALOG[name]).__doc__
    assert "\n" in doc and ("- " in doc or "+ " in doc), (
        f"{name}: say the mistake and show the line"
    )
