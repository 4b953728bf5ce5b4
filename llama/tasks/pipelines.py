"""Named pipelines: the sets of tasks built for an event, and the WrapperTasks that build them.

DEFAULT       the OPA (per-neutrino) search, significance_lvc-i3.json, and its inputs
SUBTHRESHOLD  the subthreshold search, significance_subthreshold_lvc-i3.json, its inputs and
              the products rendered from it (llama.tasks.outputs.OUTPUTS: plots, summary, GCN)
REVIEW        both searches, for a human to compare

``luigi --module llama.tasks <Name>Pipeline --eventid ID`` builds one, e.g.
``luigi --module llama.tasks SubthresholdPipeline --eventid S190425z``.
"""

from __future__ import annotations

from typing import ClassVar

import luigi

from llama.tasks.base import EventTask
from llama.tasks.outputs import OUTPUTS
from llama.tasks.products import (
    Distances,
    GwSkymap,
    NeutrinoList,
    Significance,
    SignificanceOPA,
    SkymapInfo,
)

#: A named pipeline: the task classes it builds for one event.
Pipeline = frozenset[type[luigi.Task]]

_INPUTS: Pipeline = frozenset({SkymapInfo, GwSkymap, Distances, NeutrinoList})
DEFAULT: Pipeline = _INPUTS | {SignificanceOPA}
SUBTHRESHOLD: Pipeline = _INPUTS | {Significance, *OUTPUTS}
REVIEW: Pipeline = DEFAULT | SUBTHRESHOLD

PIPELINES: dict[str, Pipeline] = {
    "DEFAULT": DEFAULT,
    "SUBTHRESHOLD": SUBTHRESHOLD,
    "REVIEW": REVIEW,
}


class PipelineTask(EventTask, luigi.WrapperTask):
    """Every task of the pipeline ``pipeline_name`` (a key of PIPELINES) for one event."""

    pipeline_name: ClassVar[str]

    def requires(self) -> list[EventTask]:
        tasks = sorted(PIPELINES[self.pipeline_name], key=lambda cls: cls.__name__)
        return [self.event_task(cls) for cls in tasks]


class DefaultPipeline(PipelineTask):
    """The DEFAULT pipeline: the OPA search and its inputs."""

    pipeline_name = "DEFAULT"


class SubthresholdPipeline(PipelineTask):
    """The SUBTHRESHOLD pipeline: the subthreshold search and its inputs."""

    pipeline_name = "SUBTHRESHOLD"


class ReviewPipeline(PipelineTask):
    """The REVIEW pipeline: both searches, for a human to compare."""

    pipeline_name = "REVIEW"
