#!/usr/bin/env bash
# The long field-link measurements (about 5 minutes): everything
# tests/netlab/test_links.sh measures plus a 1 MiB attachment over edge-2g
# (40 kbit/s) with three 20 s outages during the upload.
#   RUF_BIN=build/rel RUF_SRC=. bench/field_links.sh
FIELD_LINKS_LONG=1 exec bash "$(dirname "$0")/../tests/netlab/test_links.sh"
