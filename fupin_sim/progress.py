"""A progress bar for long experiments: tqdm when it is installed (its notebook widget in
Jupyter), a plain counter on stderr otherwise; quiet by default when stderr is not a
terminal and not a notebook (logs, CI, pipes)."""
from __future__ import annotations

import sys
import time


def _notebook() -> bool:
    return "ipykernel" in sys.modules


def _interactive() -> bool:
    if _notebook():
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Counter:
    """Fallback: 'sweep: 120/1000 runs' rewritten in place, at most a few times a second."""

    def __init__(self, total: int, initial: int, desc: str):
        self.total, self.n, self.desc = total, initial, desc
        self._last = 0.0
        self._show(force=True)

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last > 0.25 or self.n >= self.total:
            self._last = now
            print(f"\r{self.desc}: {self.n}/{self.total} runs", end="", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        self._show()

    def close(self) -> None:
        self._show(force=True)
        print(file=sys.stderr, flush=True)


class _Quiet:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, *, initial: int = 0, desc: str = "runs", enable: bool | None = None):
    """An object with `update(n)` and `close()`.

    `enable=None` shows the bar only when stderr is a terminal; True forces it (e.g. in a
    notebook, where tqdm's text bar works), False silences it.
    """
    if enable is None:
        enable = _interactive()
    if not enable:
        return _Quiet()
    try:
        if _notebook():
            from tqdm.auto import tqdm  # a widget when ipywidgets is installed, text otherwise
        else:
            from tqdm import tqdm
    except ImportError:
        return _Counter(total, initial, desc)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm.auto warns when ipywidgets is missing, then falls back to text
        return tqdm(total=total, initial=initial, desc=desc, unit="run", file=sys.stderr, dynamic_ncols=True,
                    smoothing=0.1)
