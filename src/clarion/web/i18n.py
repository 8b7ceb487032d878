# ruff: noqa: E501 - catalog phrases read best on one line each
"""The preference center's words in English and French, chosen by `Accept-Language`.

Why a dict and not gettext: two short catalogs, no build step, and a test
can check that every language has every key. Add a language by adding a
catalog; `negotiate` picks the best one the browser asked for (q-values
honoured, `fr-CA` matches `fr`), English otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

DEFAULT_LANGUAGE = "en"

CATALOGS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "page_title": "Notification preferences · {app}",
        "heading": "Your notifications from {app}",
        "intro": "Choose what {app} may send you, and when. Changes apply to the next notification.",
        "saved": "Your choices are saved.",
        "categories": "What you receive",
        "no_categories": "{app} has not described kinds of notifications yet.",
        "switch_on": "On",
        "quiet_hours": "Quiet hours",
        "quiet_help": "Notifications due in this window wait until it ends (times in your time zone).",
        "quiet_default": "Use {app}'s quiet hours ({window})",
        "quiet_default_none": "Use {app}'s setting (no quiet hours)",
        "quiet_custom": "My own quiet hours",
        "quiet_none": "No quiet hours",
        "quiet_from": "From",
        "quiet_to": "To",
        "timezone": "Time zone",
        "timezone_default": "{app}'s default ({zone})",
        "save": "Save my choices",
        "pause_heading": "Take a break",
        "pause_help": "Pausing turns every kind of notification off; turn on again the ones you miss.",
        "pause": "Pause everything",
        "off_heading": "Stop all notifications",
        "off_help": "Withdraws your consent on every device ({count}) where you allowed notifications.",
        "off": "Turn off all notifications",
        "on_help": "Notifications are off on your devices because you turned them off here.",
        "on": "Turn notifications back on",
        "devices_none": "No device of yours is registered yet.",
        "error_title": "This link cannot be used",
        "error_invalid": "This link is not valid. Use the newest link {brand} sent you.",
        "error_expired": "This link has expired. Ask the app for a new one: links work for a limited time.",
        "error_form": "This form is out of date. Reload the page and try again.",
        "error_input": "Please check the highlighted fields.",
        "bad_time": "Enter a time as HH:MM.",
        "same_time": "Start and end must differ.",
        "bad_zone": "Choose a time zone from the list.",
    },
    "fr": {
        "page_title": "Préférences de notification · {app}",
        "heading": "Vos notifications de {app}",
        "intro": "Choisissez ce que {app} peut vous envoyer, et quand. Les changements valent pour la prochaine notification.",
        "saved": "Vos choix sont enregistrés.",
        "categories": "Ce que vous recevez",
        "no_categories": "{app} n'a pas encore décrit de types de notifications.",
        "switch_on": "Activé",
        "quiet_hours": "Heures calmes",
        "quiet_help": "Les notifications prévues pendant cette plage attendent sa fin (heures de votre fuseau).",
        "quiet_default": "Utiliser les heures calmes de {app} ({window})",
        "quiet_default_none": "Utiliser le réglage de {app} (pas d'heures calmes)",
        "quiet_custom": "Mes propres heures calmes",
        "quiet_none": "Pas d'heures calmes",
        "quiet_from": "De",
        "quiet_to": "À",
        "timezone": "Fuseau horaire",
        "timezone_default": "Fuseau par défaut de {app} ({zone})",
        "save": "Enregistrer mes choix",
        "pause_heading": "Faire une pause",
        "pause_help": "La pause désactive tous les types de notifications ; réactivez ensuite ceux qui vous manquent.",
        "pause": "Tout mettre en pause",
        "off_heading": "Arrêter toutes les notifications",
        "off_help": "Retire votre consentement sur chaque appareil ({count}) où vous avez autorisé les notifications.",
        "off": "Désactiver toutes les notifications",
        "on_help": "Les notifications sont désactivées sur vos appareils parce que vous les avez coupées ici.",
        "on": "Réactiver les notifications",
        "devices_none": "Aucun de vos appareils n'est encore enregistré.",
        "error_title": "Ce lien ne peut pas être utilisé",
        "error_invalid": "Ce lien n'est pas valide. Utilisez le dernier lien que {brand} vous a envoyé.",
        "error_expired": "Ce lien a expiré. Demandez-en un nouveau à l'application : les liens ont une durée limitée.",
        "error_form": "Ce formulaire est périmé. Rechargez la page et réessayez.",
        "error_input": "Vérifiez les champs signalés.",
        "bad_time": "Saisissez une heure au format HH:MM.",
        "same_time": "Le début et la fin doivent différer.",
        "bad_zone": "Choisissez un fuseau horaire dans la liste.",
    },
}

Translate = Callable[..., str]


def negotiate(accept_language: str | None) -> str:
    """The best catalog for an `Accept-Language` header (RFC 9110 q-values)."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        primary = tag.split("-")[0]
        if primary in CATALOGS:
            return primary
    return DEFAULT_LANGUAGE


def translator(language: str) -> Translate:
    """`t("key", app=...)`: the phrase in `language`, falling back to English."""
    catalog = CATALOGS.get(language, CATALOGS[DEFAULT_LANGUAGE])

    def translate(key: str, **values: Any) -> str:
        text = catalog.get(key) or CATALOGS[DEFAULT_LANGUAGE][key]
        return text.format(**values) if values else text

    return translate
