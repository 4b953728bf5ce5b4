"""WrapperTasks that build a named pipeline (llama.pipeline) for one event:
``luigi --module llama.tasks SubthresholdPipeline --eventid S190425z``."""

from __future__ import annotations

from typing import ClassVar

import luigi

from llama.tasks.base import EventTask


class PipelineTask(EventTask, luigi.WrapperTask):
    """Every task of the pipeline ``pipeline_name`` for one event."""

    pipeline_name: ClassVar[str]

    def requires(self) -> list[EventTask]:
        from llama.pipeline import PIPELINES  # llama.pipeline imports the tasks

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
