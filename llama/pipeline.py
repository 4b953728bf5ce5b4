"""Named pipelines: the sets of tasks built for an event. ``luigi --module llama.tasks
<Name>Pipeline --eventid ID`` builds one (see llama.tasks.pipelines).

DEFAULT       the OPA (per-neutrino) search, significance_lvc-i3.json, and its inputs
SUBTHRESHOLD  the subthreshold search, significance_subthreshold_lvc-i3.json, and its inputs
REVIEW        both searches, for a human to compare
"""

from __future__ import annotations

import luigi

from llama.tasks.products import (
    Distances,
    GwSkymap,
    NeutrinoList,
    Significance,
    SignificanceOPA,
    SkymapInfo,
)

Pipeline = frozenset[type[luigi.Task]]

_INPUTS: Pipeline = frozenset({SkymapInfo, GwSkymap, Distances, NeutrinoList})
DEFAULT: Pipeline = _INPUTS | {SignificanceOPA}
SUBTHRESHOLD: Pipeline = _INPUTS | {Significance}
REVIEW: Pipeline = DEFAULT | SUBTHRESHOLD

PIPELINES: dict[str, Pipeline] = {
    "DEFAULT": DEFAULT,
    "SUBTHRESHOLD": SUBTHRESHOLD,
    "REVIEW": REVIEW,
}
