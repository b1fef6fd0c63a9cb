"""How figures look: the CJK font for Chinese labels, and numbers written for people.

Chinese labels need a font with CJK glyphs; matplotlib's own DejaVu Sans draws empty
boxes instead. `figure_language` finds an installed CJK font or, when there is none,
warns once with how to install one and falls back to English."""
from __future__ import annotations

import functools
import math
import re
import warnings
from contextlib import contextmanager

import matplotlib
import matplotlib.text

if matplotlib.get_backend().lower() in ("", "agg"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager, ticker  # noqa: E402

from fupin_sim.plots.text import check_language, text  # noqa: E402

# Simplified-Chinese fonts, best first: Noto/Source Han (Linux, free), WenQuanYi (small,
# Debian's fonts-wqy-*), then the system fonts of Windows and macOS.
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei",
             "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC",
             "Sarasa Gothic SC", "AR PL UMing CN")
_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "msyh", "simhei", "pingfang")


class FontWarning(UserWarning):
    """Chinese was asked for and no CJK font is installed: figures fall back to English."""


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of an installed CJK font, or None. Fonts installed after matplotlib built its
    cache are found by scanning the system font folders once."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in names:
            return name
    for path in font_manager.findSystemFonts():
        if any(h in path.lower().replace("-", "").replace("_", "") for h in _FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in names), None)


def figure_language(lang: str) -> str:
    """The language figures can be drawn in: `lang`, or English when Chinese has no font."""
    if check_language(lang) == "zh" and cjk_font() is None:
        warnings.warn(text("font_missing", "en"), FontWarning, stacklevel=3)
        return "en"
    return lang


@contextmanager
def language(lang: str):
    """rcParams for drawing in `lang`: in Chinese the CJK font first, DejaVu Sans for Latin
    glyphs; in English the reverse, so the Chinese policy terms in English labels show."""
    rc = {"axes.unicode_minus": lang != "zh"}
    font = cjk_font()
    if font is not None:
        rc["font.family"] = [font, "DejaVu Sans"] if lang == "zh" else ["DejaVu Sans", font]
    with plt.rc_context(rc):
        yield


_CJK = re.compile(r",?\s*\(?[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+\)?")


def without_cjk(fig) -> None:
    """Drop the Chinese terms from an English figure's texts (e.g. "Relapses, 返贫
    (households)" → "Relapses (households)") when no font could draw them."""
    for t in fig.findobj(matplotlib.text.Text):
        s = t.get_text()
        if _CJK.search(s):
            t.set_text(re.sub(r"\s{2,}", " ", _CJK.sub("", s)).strip())


def localised(draw):
    """Decorate a figure function taking `lang=`: check it, fall back when no font, draw
    inside the language's rcParams."""
    @functools.wraps(draw)
    def wrapper(*args, lang: str = "en", **kwargs):
        lang = figure_language(lang)
        with language(lang):
            fig = draw(*args, lang=lang, **kwargs)
        if cjk_font() is None:
            without_cjk(fig)
        return fig
    return wrapper


def number(value, decimals: int | None = None) -> str:
    """A number for people: thousands separators, decimals by size, '–' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–" if value is None or math.isnan(value) else ("∞" if value > 0 else "−∞")
    if isinstance(value, bool):
        return str(value)
    if decimals is None:
        a = abs(value)
        decimals = 0 if a >= 100 or float(value).is_integer() else 1 if a >= 10 else 2 if a >= 1 else 3
        if a and a < 0.001:
            return f"{value:.2e}"
    return f"{value:,.{decimals}f}"


def scale(values, unit: str, lang: str) -> tuple[float, str]:
    """Divisor and unit name so an axis reads in small numbers: yuan in millions (万元 in
    Chinese), persons in 万人 in Chinese."""
    top = max((abs(float(v)) for v in values if v == v), default=0.0)
    if unit == "yuan":
        if lang == "zh":
            return (1e4, text("10k_yuan", lang)) if top >= 1e5 else (1.0, text("yuan", lang))
        return (1e6, text("million_yuan", lang)) if top >= 1e6 else (1.0, text("yuan", lang))
    if unit == "persons" and lang == "zh" and top >= 1e5:
        return 1e4, text("10k_persons", lang)
    return 1.0, text(f"{unit}_unit", lang)


def thousands(ax, axis: str = "y") -> None:
    """Tick labels with thousands separators."""
    fmt = ticker.FuncFormatter(lambda v, _: number(v) if abs(v) >= 1 or v == 0 else f"{v:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def integer_years(ax) -> None:
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
