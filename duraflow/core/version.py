"""Version numbers: the engine's own, and semantic versions of registered orchestrations."""

from __future__ import annotations

import re
from functools import total_ordering

ENGINE_VERSION = "0.1.0"

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-.]+)?$"
)


@total_ordering
class SemVer:
    """A parsed semantic version, ordered by semver precedence (build metadata ignored)."""

    __slots__ = ("major", "minor", "patch", "pre", "text")

    def __init__(self, text: str) -> None:
        match = _SEMVER.match(text)
        if match is None:
            raise ValueError(f"invalid semantic version {text!r} (expected MAJOR.MINOR.PATCH)")
        self.text = text
        self.major = int(match.group(1))
        self.minor = int(match.group(2))
        self.patch = int(match.group(3))
        self.pre: tuple[tuple[int, int | str], ...] = tuple(
            (0, int(part)) if part.isdigit() else (1, part)
            for part in (match.group(4).split(".") if match.group(4) else ())
        )

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after every pre-release of the same version.
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, self.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"SemVer({self.text!r})"


def pack(version: SemVer | str) -> int:
    """``major * 1e6 + minor * 1e3 + patch``: how stores compare engine versions in SQL
    (the capability filter); pre-release and build parts are ignored."""
    parsed = version if isinstance(version, SemVer) else SemVer(version)
    if parsed.minor > 999 or parsed.patch > 999:
        raise ValueError(f"version {parsed.text!r}: minor and patch must be below 1000")
    return parsed.major * 1_000_000 + parsed.minor * 1_000 + parsed.patch
