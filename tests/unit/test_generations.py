"""The pair's column generations: which columns a backfill's reads may fill on older rows."""
from __future__ import annotations

from streams.generations import plan


def test_a_first_start_records_generation_one_and_nothing_is_fillable():
    new, gens = plan([], ["name", "email"])
    assert new == 1 and gens.current == 1
    assert gens.first == {"name": 1, "email": 1} and gens.fillable == {}


def test_the_same_columns_in_another_order_record_nothing():
    new, gens = plan([(1, ["name", "email"])], ["email", "name"])
    assert new is None and gens.current == 1 and gens.fillable == {}


def test_an_added_column_is_fillable_on_rows_of_older_generations_only():
    new, gens = plan([(1, ["name"])], ["name", "tier"])
    assert new == 2 and gens.current == 2
    assert gens.first == {"name": 1, "tier": 2}
    assert gens.fillable == {"tier": 2}, "rows of generation 1 lack tier; name they all had"


def test_a_column_dropped_then_listed_again_counts_from_its_return():
    # generation 2 did not list tier: rows written then hold no stream value of it
    new, gens = plan([(1, ["name", "tier"]), (2, ["name"])], ["name", "tier"])
    assert new == 3 and gens.first == {"name": 1, "tier": 3}


def test_a_column_listed_since_an_earlier_addition_keeps_that_generation():
    new, gens = plan([(1, ["name"]), (2, ["name", "tier"]), (3, ["name", "tier", "level"])],
                     ["name", "tier", "level"])
    assert new is None and gens.current == 3
    assert gens.fillable == {"tier": 2, "level": 3}
