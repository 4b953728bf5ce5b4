"""Listeners: hear every notice, archive it first, then hand LVK alerts to the alert intake.

Transports (each a loop bounded by :class:`Limits`, surviving bad notices and transport errors,
reconnecting with backoff):

    vtp          VOEvent Transport Protocol over TCP, through pygcn (llama.listen.vtp)
    kafka        GCN Kafka (gcn-kafka): igwn.gwalert JSON, IceCube lvk_nu_track_search
    igwn-alert   LVK's igwn-alert (hop/SCiMMA) messages
    dir          a directory watched for dropped notice files (offline, archive replay)

Every notice goes through :meth:`Listener.handle` -> llama.ingest.receive: archived in
``<output dir>/gcn/YYYY-MM/DD/`` (duplicates idempotent), then, for an LVK alert, the event
directory created or updated. The listener's heartbeat is
``<output dir>/logs/listen-<transport>.json``.
"""

from llama.listen.core import Limits, Listener

__all__ = ["Limits", "Listener"]
