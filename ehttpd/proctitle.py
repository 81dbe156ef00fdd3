"""Process titles, so `ps` and `top` tell the master from its workers: `ehttpd: worker 3 [app]`."""

from __future__ import annotations

try:
    from setproctitle import setproctitle as _setproctitle
except ImportError:  # a dependency, but titles are a nicety: never fail a start for them
    _setproctitle = None


def title(role: str, name: str, note: str = "") -> str:
    """`ehttpd: master [app]`, `ehttpd: worker 3 [app] (draining)`."""
    text = f"ehttpd: {role} [{name}]"
    return f"{text} ({note})" if note else text


def set_title(role: str, name: str, note: str = "") -> None:
    if _setproctitle is not None:
        _setproctitle(title(role, name, note))
