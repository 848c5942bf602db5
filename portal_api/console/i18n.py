"""Khmer and English: the message catalogues, and numbers, dates and riel as each language writes them.

The catalogues are gettext `.po` files compiled in memory when first used, so no build step and no
compiled files in git. Khmer is the default: the people the console serves work in Khmer first.
"""

import io
import math
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LANGUAGES = ("km", "en")
DEFAULT_LANGUAGE = "km"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
_KHMER_DIGITS = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")
# Cambodia's time zone: dates shown to people are theirs, not UTC.
TIME_ZONE = ZoneInfo("Asia/Phnom_Penh")


def is_language(value: object) -> bool:
    return isinstance(value, str) and value in LANGUAGES


@cache
def translations(lang: str) -> Translations:
    """The catalogue of `lang`, compiled from its `.po` file (an unknown language gets none)."""
    po_file = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if lang not in LANGUAGES or not po_file.is_file():
        return Translations()
    with po_file.open("rb") as source:
        catalogue = read_po(source, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def gettext(lang: str, message: str) -> str:
    return translations(lang).ugettext(message)


def ngettext(lang: str, singular: str, plural: str, count: int) -> str:
    return translations(lang).ungettext(singular, plural, count)


def khmer_digits(text: str) -> str:
    return text.translate(_KHMER_DIGITS)


def localise_digits(text: str, lang: str) -> str:
    return khmer_digits(text) if lang == "km" else text


def format_number(value: object, lang: str) -> str:
    """A number, grouped and in the language's digits. Anything else is shown as it is (escaped by
    the template): pages show report bodies, data of any shape, and must not fail on them."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return str(value)
    return localise_digits(format_decimal(value, locale=_locale(lang)), lang)


def format_riel(amount: int, lang: str) -> str:
    """Riel have no minor unit in use: whole riel, grouped, with the currency sign after the number."""
    number = format_decimal(amount, locale=_locale(lang), format="#,##0")
    return localise_digits(f"{number} ៛", lang) if lang == "km" else f"{number} KHR"


def format_date(value: date | datetime | None, lang: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return localise_digits(babel_datetime(value, format="d MMMM y", tzinfo=TIME_ZONE, locale=_locale(lang)), lang)
    return localise_digits(babel_date(value, format="d MMMM y", locale=_locale(lang)), lang)


def format_datetime(value: datetime | None, lang: str) -> str:
    if value is None:
        return ""
    text = babel_datetime(value, format="d MMM y HH:mm:ss", tzinfo=TIME_ZONE, locale=_locale(lang))
    return localise_digits(text, lang)


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


def negotiate(*, chosen: str | None, remembered: str | None, accept_language: str | None) -> str:
    """The page's language: `?lang=` first, then the signed-in user's choice (or the pre-login
    cookie), then the browser's Accept-Language, then Khmer."""
    for candidate in (chosen, remembered):
        if is_language(candidate):
            return str(candidate)
    for lang in _accepted(accept_language or ""):
        if lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE


def _accepted(header: str) -> list[str]:
    """Primary language tags of an Accept-Language header, most preferred first (hostile input:
    anything unparseable is skipped)."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:500].split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].lower()
        if primary.isalpha() and 0 < quality <= 1:
            weighted.append((-quality, position, primary))
    return [lang for _, _, lang in sorted(weighted)]
