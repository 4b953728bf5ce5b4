"""The status page: every event of every run, its product states, plots and numbers, the notices
received, and whether the daemon and listeners are alive (``llama serve``).

Reads files only (llama.health, llama.provenance, llama.event): no Luigi in the page process.
See llama.serve.app for the addresses and the security model, llama.serve.data for what each
page shows.
"""

from llama.serve.app import check_exposure, create_app, load_credentials, make_http_server
from llama.serve.data import Site

__all__ = ["Site", "check_exposure", "create_app", "load_credentials", "make_http_server"]
