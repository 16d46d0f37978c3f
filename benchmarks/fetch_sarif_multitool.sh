#!/usr/bin/env bash
# Fetch Microsoft's SARIF multitool (npm @microsoft/sarif-multitool, pinned) into a cache, for the SARIF tests:
# a real client checks what GitHub code scanning will read (`validate --rule-kind "Sarif;Gh"`).
#
#   benchmarks/fetch_sarif_multitool.sh [CACHE_DIR]   (default: $SYSSCAN_TOOL_CACHE, else ~/.cache/sysscan-tools)
# Prints SYSSCAN_SARIF_MULTITOOL=PATH on stdout for `eval` in .ci/run. Needs npm (Debian's `npm` package).
#
# The native binary is called directly: the package's node wrapper passes its arguments through a shell unquoted,
# so the ";" in "Sarif;Gh" ends the command there. 4.5.4 and 4.6.5 abort in `validate` on Linux; 5.7.0 works.
set -euo pipefail
VERSION=5.7.0
cache="${1:-${SYSSCAN_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sysscan-tools}}/sarif-multitool-$VERSION"
bin="$cache/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
if [[ ! -x "$bin" ]]; then
    mkdir -p "$cache"
    echo "fetch_sarif_multitool: npm install @microsoft/sarif-multitool@$VERSION ..." >&2
    for i in 1 2 3; do
        npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "@microsoft/sarif-multitool@$VERSION" >&2 && break
        sleep $((i * 5))
    done
    chmod u+x "$bin"  # its postinstall does this, when npm runs install scripts
fi
"$bin" --version >/dev/null 2>&1 || { echo "fetch_sarif_multitool: $bin does not run" >&2; exit 1; }
echo "SYSSCAN_SARIF_MULTITOOL=$bin"
