"""The one registry of searches: name -> odds function, output file and description.

Every list of searches in llama (CLI choices, Luigi products, population keys, background
trials) is read from :data:`SEARCHES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llama.errors import ConfigurationError


@dataclass(frozen=True)
class Search:
    """One joint search: its name, the file its result goes to and what it computes."""

    name: str
    output_file: str
    description: str
    function_name: str

    @property
    def function(self) -> Callable:
        """The odds function ``(skymap, neutrinos, trigger, model) -> result`` (llama.science.odds;
        imported on first use because scipy is slow to import)."""
        from llama.science import odds

        return getattr(odds, self.function_name)


SEARCHES: dict[str, Search] = {
    search.name: search
    for search in (
        Search(
            "subthreshold",
            "significance_subthreshold_lvc-i3.json",
            "ensemble search over all neutrinos (SCIENCE.md section 4)",
            "subthreshold",
        ),
        Search(
            "opa",
            "significance_lvc-i3.json",
            "per-neutrino (OPA) search (SCIENCE.md section 5)",
            "opa",
        ),
    )
}
SEARCH_NAMES: tuple[str, ...] = tuple(SEARCHES)


def search(name: str) -> Search:
    """The search called ``name``; ConfigurationError names the known ones."""
    try:
        return SEARCHES[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown search {name!r}; choose one of {', '.join(SEARCH_NAMES)}"
        ) from None
