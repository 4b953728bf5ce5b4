"""Luigi tasks of llama, one product each: ``luigi --module llama.tasks Significance --eventid ID``.

Importing this package puts llama's packaged luigi.cfg under the user's Luigi configuration
(llama.config.luigi_config), so [core], [retcode] and [llama] apply from any directory.
"""

from llama.config import luigi_config
from llama.tasks.base import EventTask, Product
from llama.tasks.pipelines import (
    DefaultPipeline,
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
    "DefaultPipeline",
    "Distances",
    "EventTask",
    "GwSkymap",
    "NeutrinoList",
    "PipelineTask",
    "Product",
    "ReviewPipeline",
    "Significance",
    "SignificanceOPA",
    "SkymapInfo",
    "SubthresholdPipeline",
]
