"""Personalization templates: syntax, rendering per device, and request-time checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.model.content import Content, LocalizedText
from clarion.model.template import (
    ALWAYS_PRESENT,
    TemplateError,
    check_content,
    device_values,
    parse_template,
    personalize,
    render,
)

ANNA = device_values("webpush", "u-1", "fr-CA", {"first_name": "Anna", "plan": "pro"})
NOBODY = device_values("apns", None, None, {})


def test_a_tag_with_a_default_renders_the_value_or_the_default() -> None:
    text = 'Hi {{ tag.first_name | default: "there" }}!'
    assert render(text, ANNA) == "Hi Anna!"
    assert render(text, NOBODY) == "Hi there!"


def test_user_id_locale_and_platform() -> None:
    text = "{{user_id}} / {{ locale }} / {{ platform }}"
    assert render(text, ANNA) == "u-1 / fr-CA / webpush"


def test_quoted_literals_write_braces_and_escapes_work() -> None:
    assert render('{{ "{{" }}x}}', ANNA) == "{{x}}"
    assert render(r"""{{ tag.nick | default: 'it\'s "you"' }}""", NOBODY) == 'it\'s "you"'


def test_text_without_placeholders_is_untouched() -> None:
    assert render("50% off } { today", ANNA) == "50% off } { today"


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("Hi {{ tag.first_name", 3, "not closed"),
        ("Hi {{ name.__class__ }}", 3, "expected a name"),
        ("{{ os.system }}", 0, "expected a name"),
        ("ok {{ secret }}", 3, "unknown name 'secret'"),
        ("{{ tag.a | upper }}", 0, "expected a name"),
        ('{{ "x" | default: "y" }}', 0, "needs no default"),
    ],
)
def test_bad_templates_name_the_position(text: str, position: int, message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        parse_template(text)
    assert raised.value.position == position
    assert message in str(raised.value)


def test_a_value_that_may_be_missing_needs_a_default() -> None:
    content = Content(
        title="Hi {{ tag.first_name }}",
        body="{{ platform }} {{ user_id | default: 'friend' }}",
        localized={"fr": LocalizedText(body="Salut {{ locale }}")},
    )
    errors = check_content(content)
    assert [e.field for e in errors] == ["content.title", "content.localized.fr.body"]
    assert "give it a default" in errors[0].message
    assert check_content(Content(title="{{ user_id }}"), ALWAYS_PRESENT | {"user_id"}) == []


def test_personalize_renders_title_subtitle_and_body() -> None:
    content = Content(
        title="Hi {{ tag.first_name | default: 'you' }}", body="plan {{ tag.plan | default: '-' }}"
    )
    assert personalize(content, ANNA) == Content(title="Hi Anna", body="plan pro")


@given(st.text(max_size=60))
def test_any_text_parses_or_is_a_template_error(text: str) -> None:
    try:
        rendered = render(text, ANNA)
    except TemplateError as error:
        assert 0 <= error.position < len(text)
    else:
        assert isinstance(rendered, str)


@given(st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=60))
def test_text_without_braces_renders_as_itself(text: str) -> None:
    assert render(text, ANNA) == text
