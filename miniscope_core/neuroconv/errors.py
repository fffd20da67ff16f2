"""The one error this layer adds: a NeuroConv call or option the library does not carry out.

Errors in a user's files or metadata stay the library's own (`MiniscopeFormatError`,
`MetadataError`); this one says that a NeuroConv feature is not mapped, and what to do instead,
so a script never gets a silently different file.
"""

from __future__ import annotations


class NeuroConvUnsupported(NotImplementedError):
    """A NeuroConv feature this compatibility layer refuses rather than imitates."""

    def __init__(self, feature: str, alternative: str) -> None:
        self.feature = feature
        self.alternative = alternative
        super().__init__(f"{feature} is not supported by miniscope_core: {alternative}")
