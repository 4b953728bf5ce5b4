"""Luigi tasks of llama, one product each: ``luigi --module llama.tasks Significance --eventid ID``,
and the named pipelines (PIPELINES: DEFAULT, SUBTHRESHOLD, REVIEW) with their WrapperTasks.

Importing this package puts llama's packaged luigi.cfg under the user's Luigi configuration
(llama.config.luigi_config), so [core], [retcode] and [llama] apply from any directory.
"""

from llama.config import luigi_config
from llama.tasks.base import EventTask, Product, StorageTarget
from llama.tasks.outputs import (
    OUTPUTS,
    GcnCircular,
    GcnNotice,
    NeutrinoTables,
    ScatterPlot,
    Summary,
)
from llama.tasks.pipelines import (
    DEFAULT,
    PIPELINES,
    REVIEW,
    SUBTHRESHOLD,
    DefaultPipeline,
    Pipeline,
    PipelineTask,
    ReviewPipeline,
    SubthresholdPipeline,
)
from llama.tasks.products import (
    Distances,
    GwSkymap,
    NeutrinoList,
    Significance,
    SignificanceOPA,
    SkymapInfo,
)

luigi_config()

__all__ = [
    "DEFAULT",
    "OUTPUTS",
    "PIPELINES",
    "REVIEW",
    "SUBTHRESHOLD",
    "DefaultPipeline",
    "Distances",
    "EventTask",
    "GcnCircular",
    "GcnNotice",
    "GwSkymap",
    "NeutrinoList",
    "NeutrinoTables",
    "Pipeline",
    "PipelineTask",
    "Product",
    "ReviewPipeline",
    "ScatterPlot",
    "Significance",
    "SignificanceOPA",
    "SkymapInfo",
    "StorageTarget",
    "SubthresholdPipeline",
    "Summary",
]
