#!/usr/bin/env bash
# ctest entry for tests/netlab/test_links.sh (skips, with the reason, where
# root, iptables or network namespaces are unavailable).
exec bash "$(dirname "$0")/../netlab/test_links.sh"
