"""pydantic's errors in the author's words, shared by every file the project reads."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from newsletter.files.problems import Loc, dotted, field_problems, indexed


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    why: str
    count: int = 0

    @field_validator("why")
    @classmethod
    def _short(cls, value: str) -> str:
        if len(value) > 5:
            raise ValueError(f"must be short (got {value!r})")
        return value


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    items: list[Item] = []


def errors(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        Document.model_validate(data)
    return err.value


def test_fields_are_spelt_as_the_author_writes_them() -> None:
    assert indexed(("items", 0, "why")) == "items[0].why"
    assert dotted(("send_window", 0)) == "send_window.0"
    assert indexed(()) == dotted(()) == ""


def test_each_error_in_words_with_its_field() -> None:
    found = field_problems(errors({"items": [{"why": "far too long", "colour": "red"}]}))
    assert found == [
        ("title", "is required"),
        ("items[0].why", "must be short (got 'far too long')"),
        ("items[0].colour", "is not a known field"),
    ]


def test_the_whole_document_the_hint_and_the_value_given() -> None:
    def hint(loc: Loc) -> str:
        return f" (known in {loc[0]}: why, count)"

    found = field_problems(
        errors({"title": "t", "items": [{"why": "a", "count": "x", "size": 1}, {"why": "abcdef"}]}),
        spell=dotted,
        unknown_hint=hint,
        show_input=True,
    )
    assert found == [
        ("items.0.count", "Input should be a valid integer, unable to parse string as an integer "
         "(got 'x')"),
        ("items.0.size", "is not a known field (known in items: why, count)"),
        ("items.1.why", "must be short (got 'abcdef')"),  # a validator's words say it already
    ]  # fmt: skip
    assert field_problems(errors("not a mapping"), whole="front matter")[0][0] == "front matter"
