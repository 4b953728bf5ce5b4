#!/bin/sh
# llama in the IGWN conda environment on CVMFS (llama itself: pip install --user)
. /cvmfs/software.igwn.org/conda/etc/profile.d/conda.sh && conda activate igwn-py311 || exit 1
exec python -m llama.cli.main "$@"
