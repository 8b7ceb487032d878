from hypothesis import given
from hypothesis import strategies as st

from clarion.model.content import Content, LocalizedText, best_locale, locale_chain


def test_regional_locale_falls_back_to_its_language() -> None:
    content = Content(title="Shipped", localized={"fr": LocalizedText(title="Expédiée")})
    assert content.for_locale("fr-CA").title == "Expédiée"


def test_exact_region_wins_over_language() -> None:
    tags = ["fr", "fr-CA", "en"]
    assert best_locale(tags, "fr-CA") == "fr-CA"
    assert best_locale(tags, "fr-FR") == "fr"


def test_unknown_locale_gets_default_content() -> None:
    content = Content(title="Shipped", body="Thursday", localized={"de": LocalizedText("Versandt")})
    chosen = content.for_locale("ja-JP")
    assert chosen.title == "Shipped"
    assert chosen.localized == {}


def test_variant_keeps_default_for_fields_it_does_not_translate() -> None:
    content = Content(
        title="Shipped", body="Thursday", localized={"fr": LocalizedText(body="Jeudi")}
    )
    chosen = content.for_locale("fr")
    assert (chosen.title, chosen.body) == ("Shipped", "Jeudi")


def test_matching_ignores_case_and_underscores() -> None:
    assert best_locale(["pt-BR"], "pt_br") == "pt-BR"


@given(st.lists(st.from_regex(r"[a-z]{2,3}", fullmatch=True), min_size=1, max_size=4))
def test_chain_ends_with_primary_language(parts: list[str]) -> None:
    tag = "-".join(parts)
    chain = locale_chain(tag)
    assert chain[0] == tag
    assert chain[-1] == parts[0]
    assert len(chain) == len(parts)
