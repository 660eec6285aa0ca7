"""The shared configuration checks: one bare string is never taken for a list; a duration
is a finite number of seconds above zero."""

from __future__ import annotations

from typing import Any

import pytest

from jwkguard import ConfigurationError
from jwkguard._checks import lowered_options
from jwkguard.pipeline import Exemptions
from jwkguard.settings import list_of, positive_seconds, string_list


def test_a_list_of_names_comes_back_as_a_tuple_in_order() -> None:
    assert string_list(["b", "a", "b"], "scopes") == ("b", "a", "b")
    assert string_list(["b", "a", "b"], "scopes", unique=True) == ("b", "a")
    assert string_list((name for name in ("x",)), "scopes") == ("x",)
    assert string_list([], "scopes") == ()


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        ("read", {}, "scopes must be a list of non-empty strings, not one string"),
        (b"read", {}, "scopes must be a list of non-empty strings, not one string"),
        (5, {}, r"scopes must be a list of non-empty strings$"),
        (["read", ""], {}, r"scopes must be a list of non-empty strings \(got ''\)"),
        (["read", 1], {}, r"scopes must be a list of non-empty strings \(got 1\)"),
        ([], {"allow_empty": False}, r"scopes must be a non-empty list of strings$"),
        ([""], {"allow_empty": False}, r"scopes must be a non-empty list of strings \(got ''\)"),
        (("read",), {"container": list}, r"scopes must be a list of non-empty strings$"),
    ],
)
def test_a_bad_list_of_names_is_refused_naming_the_setting(
    value: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        string_list(value, "scopes", **options)


def test_list_of_checks_each_item_with_the_given_rule() -> None:
    def is_path(item: object) -> bool:
        return isinstance(item, str) and item.startswith("/")

    assert list_of(["/a", "/b"], "paths", each=is_path, described="paths") == ("/a", "/b")
    with pytest.raises(ConfigurationError, match=r"paths must be a list of paths \(got 'a'\)"):
        list_of(["/a", "a"], "paths", each=is_path, described="paths")
    with pytest.raises(ConfigurationError, match="paths must be a list of paths, not one string"):
        list_of("/a", "paths", each=is_path, described="paths")


def test_a_long_bad_item_is_shortened_in_the_message() -> None:
    with pytest.raises(ConfigurationError) as caught:
        string_list(["", "x"], "scopes", allow_empty=False)
    with pytest.raises(ConfigurationError) as long:
        string_list([["x" * 500]], "scopes")
    assert "(got '')" in str(caught.value)
    assert len(str(long.value)) < 120


def test_exempt_methods_given_as_one_string_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="exempt_methods must be a list"):
        Exemptions((), "GET")
    with pytest.raises(ConfigurationError, match="exempt_methods must be a list of method names"):
        Exemptions((), [" "])


def test_options_are_keyed_in_lower_case_and_unknown_ones_named_with_a_hint() -> None:
    assert lowered_options({"MAX_AGE": 5}, "DPOP", {"max_age"}) == {"max_age": 5}
    assert lowered_options({"Anything": 1}, "X") == {"anything": 1}
    with pytest.raises(ConfigurationError, match=r"DPOP: unknown options: MAX_AEG \(did you mean"):
        lowered_options({"MAX_AEG": 5}, "DPOP", {"max_age"})
    with pytest.raises(ConfigurationError, match="DPOP: option names must be strings"):
        lowered_options({1: 5}, "DPOP")


def test_a_duration_comes_back_as_a_float() -> None:
    assert positive_seconds(2, "heartbeat") == 2.0
    assert type(positive_seconds(2, "heartbeat")) is float
    assert positive_seconds(0.25, "heartbeat") == 0.25


@pytest.mark.parametrize(
    "value", [0, -1, 0.0, float("nan"), float("inf"), float("-inf"), True, False, "1", None, [1]]
)
def test_anything_but_a_finite_positive_number_is_refused_naming_the_setting(value: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^FLEET\.HEARTBEAT must be a positive number"):
        positive_seconds(value, "FLEET.HEARTBEAT")
