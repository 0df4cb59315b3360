"""Record classes behave as the dataclasses they replace: fields in order, defaults, factories, equality, frozen."""

from __future__ import annotations

import pytest

from portmap.records import FrozenInstanceError, asdict, field, fields, record_class

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List


@record_class(frozen=True)
class Point:
    x: int
    y: int = 0


@record_class
class Bag:
    name: str
    items: List[int] = field(default_factory=list)
    inner: object = None


def test_positional_keyword_and_default():
    assert Point(1, 2) == Point(x=1, y=2) == Point(1, y=2)
    assert Point(3).y == 0
    assert fields(Point) == ("x", "y")
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"


@pytest.mark.parametrize("call, message", [
    (Point, "missing required argument: 'x'"),
    (lambda: Point(1, 2, 3), "takes 2 positional arguments but 3 were given"),
    (lambda: Point(1, z=2), "unexpected keyword argument 'z'"),
    (lambda: Point(1, x=2), "multiple values for argument 'x'"),
])
def test_wrong_calls_are_type_errors(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_frozen_refuses_assignment_and_hashes_by_value():
    point = Point(1, 2)
    with pytest.raises(FrozenInstanceError):
        point.x = 5
    with pytest.raises(AttributeError):
        del point.y
    assert hash(point) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2


def test_mutable_records_are_unhashable_and_get_a_new_factory_value_each():
    first, second = Bag("a"), Bag("b")
    first.items.append(1)
    assert second.items == []
    assert "items" not in Bag.__dict__  # the factory is not left as a class attribute
    with pytest.raises(TypeError):
        hash(first)
    first.name = "changed"
    assert first.name == "changed"


def test_equality_needs_the_same_class():
    assert Point(1, 2) != (1, 2)
    assert Bag("a") == Bag("a") and Bag("a") != Bag("a", [1])


def test_asdict_converts_nested_records_lists_and_dicts():
    bag = Bag("b", [1, 2], {"p": [Point(1, 2)], "t": (Point(3),)})
    assert asdict(bag) == {"name": "b", "items": [1, 2], "inner": {"p": [{"x": 1, "y": 2}], "t": ({"x": 3, "y": 0},)}}
    assert asdict(bag)["items"] is not bag.items


def test_a_field_without_default_after_one_with_is_refused():
    with pytest.raises(TypeError, match="without a default follows one with a default"):
        @record_class
        class _Wrong:
            a: int = 1
            b: int
