"""llama: Low-Latency Algorithm for Multi-messenger Astrophysics.

Joint Bayesian significance of a gravitational-wave alert and the
high-energy neutrinos around it (Bartos, Veske et al. 2019,
arXiv:1810.11467), as operated by the LLAMA pipeline in O3/O4.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llama")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
