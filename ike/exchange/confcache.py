"""A memo in front of isakmpd.conf lookups, for the engine's per-message reads.

Every exchange reads its sections tag by tag, as isakmpd does; with built-in sections generated
on demand those reads cost more than the protocol work around them.  The cache answers repeated
reads from a dict.  Whoever changes the configuration (FIFO ``C`` transactions, SIGHUP reload)
calls :meth:`ConfCache.invalidate` (the engine's ``reload``).
"""

from __future__ import annotations

from typing import Any

from ike.conf import Conf

__all__ = ["ConfCache"]


class ConfCache(Conf):
    """The read API of :class:`Conf`, memoised; everything else goes to the wrapped Conf."""

    def __init__(self, conf: Conf) -> None:  # Conf.__init__ is not called: no state of its own
        self.inner = conf
        self._memo: dict[tuple[object, ...], Any] = {}
        self.derived: dict[object, Any] = {}
        """Answers computed from the configuration alone (e.g. Phase 1 choices), same life."""

    def invalidate(self) -> None:
        """Forget every answer (the configuration changed)."""
        self._memo.clear()
        self.derived.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _get(self, kind: str, section: str, tag: str, extra: object, fn: Any) -> Any:
        try:  # the spelling the engine used last time: no lower() on the hot path
            return self._memo[(kind, section, tag, extra)]
        except KeyError:
            pass
        key = (kind, section.lower(), tag.lower(), extra)
        try:
            value = self._memo[key]
        except KeyError:
            value = self._memo[key] = fn()
        self._memo[(kind, section, tag, extra)] = value
        return value

    # The three readers the engine calls per message try the memo first, inline: a hit then
    # costs one dict lookup, without the _get call and the closure it would be handed.

    def get_str(self, section: str, tag: str, default: str | None = None) -> str | None:
        try:
            return self._memo[("s", section, tag, default)]  # type: ignore[no-any-return]
        except KeyError:
            return self._get("s", section, tag, default,  # type: ignore[no-any-return]
                             lambda: self.inner.get_str(section, tag, default))

    def get_num(self, section: str, tag: str, default: int) -> int:
        try:
            return self._memo[("n", section, tag, default)]  # type: ignore[no-any-return]
        except KeyError:
            return self._get("n", section, tag, default,  # type: ignore[no-any-return]
                             lambda: self.inner.get_num(section, tag, default))

    def get_list(self, section: str, tag: str) -> list[str]:
        try:
            return list(self._memo[("l", section, tag, None)])
        except KeyError:
            return list(self._get("l", section, tag, None,
                                  lambda: tuple(self.inner.get_list(section, tag))))

    def get_tag_list(self, section: str) -> list[str]:
        return list(self._get("t", section, "", None,
                              lambda: tuple(self.inner.get_tag_list(section))))

    def match_num(self, section: str, tag: str, x: int) -> bool:
        return self._get("m", section, tag, x,  # type: ignore[no-any-return]
                         lambda: self.inner.match_num(section, tag, x))

    def has_section(self, section: str) -> bool:
        return self.inner.has_section(section)

    def sections(self) -> list[str]:
        return self.inner.sections()
