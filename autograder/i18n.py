"""The grader's messages in the student's language (gettext, standard library only).

Every message is written once, in English, where it is built: ``tr("`{name}` is not defined").format(name=name)``
(the English text is the message id; named placeholders, filled after the lookup, so a translation can put
them in its own order). ``tr`` rather than gettext's usual ``_``, which the checks use as a throwaway name
(``_, loss = model(x, y)``). A message defined before the language is known (a table at module level) is
marked ``N_("...")`` (for extraction: it returns the text unchanged) and translated where it is used, with
``translate(text)``. A check's name (``heads are a module list``) is translated with ``check_name(label)``.
``tr`` looks the text up in ``locale/<lang>/LC_MESSAGES/gptlab.mo`` for the current language, English when
there is none or the text has no translation. The catalogues are made with Babel by
``python -m instructor.i18n update`` / ``compile``.

The current language is per process (one grading run, one check cell): ``pytest autograder --lang es``,
the notebook's ``metadata.gptlab.lang``, or, in a check cell, the notebook's ``LAB_LANGUAGE`` global.
"""

from __future__ import annotations

import contextlib
import gettext
import re
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "gptlab"
DEFAULT = "en"

_current: list = [DEFAULT, gettext.NullTranslations()]


def available() -> tuple[str, ...]:
    """English and every language with a compiled catalogue."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))
    return (DEFAULT, *found)


def set_language(lang: str | None) -> str:
    """Make ``lang`` the language of the messages (None or an unknown language: English). Returns it."""
    lang = lang if lang in available() else DEFAULT
    if lang == DEFAULT:
        _current[:] = [DEFAULT, gettext.NullTranslations()]
    else:
        _current[:] = [lang, gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang])]
    return lang


def language() -> str:
    return _current[0]


@contextlib.contextmanager
def using(lang: str | None):
    """The messages in ``lang`` inside the block, the previous language after it."""
    before = list(_current)
    set_language(lang)
    try:
        yield
    finally:
        _current[:] = before


def tr(message: str) -> str:
    """The message in the current language (the English text when it has no translation)."""
    return _current[1].gettext(message)


class Num(float):
    """A number a message writes the way its language does: ``0.10 of 0.50`` in English, ``0,10 de 0,50``
    in Spanish (Babel's ``format_decimal``, CLDR's symbols for the message language). The format spec
    keeps its meaning: ``{score:.2f}`` two decimals, ``{score:.4g}`` four significant digits."""

    def __format__(self, spec: str) -> str:
        text = format(float(self), spec)
        m = re.fullmatch(r"\.(\d+)([fg])", spec)
        if language() == DEFAULT or not m or not text.replace(".", "").lstrip("-").isdigit():
            return text
        try:
            from babel.numbers import format_decimal
        except ImportError:  # Babel missing: the digits as Python writes them, still right
            return text
        places = int(m.group(1))
        # .Nf: exactly N decimals; .Ng: the significant digits format() kept, trailing zeros dropped
        pattern = "0." + ("0" if m.group(2) == "f" else "#") * places
        return format_decimal(float(text), format=pattern, locale=language(), group_separator=False)


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark for translation, translate later"
    """Mark a message for extraction, untranslated (it is translated later, with ``translate``)."""
    return message


def translate(message: str) -> str:
    """A message marked with ``N_`` (or a check's docstring-free label), in the current language."""
    return _current[1].gettext(message)


CHECK_CONTEXT = "check name"


def check_name(label: str) -> str:
    """A check's name (its function name less ``test_<part>_``, underscores as spaces) in the current
    language; a parametrised check keeps its ``[case]`` suffix untranslated."""
    base, bracket, rest = label.partition(" [")
    return _current[1].pgettext(CHECK_CONTEXT, base) + (bracket + rest if bracket else "")
