#!/usr/bin/env bash
# Makes Debian's chromium available for the browser tests of /docs and /console
# (test/e2e/api-docs.e2e.test.ts, test/e2e/console.e2e.test.ts).
# Does nothing when /usr/bin/chromium exists; as root, installs Debian's package (refreshing the
# package lists once if the first try fails); otherwise says what to install and exits 1.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is missing: install Debian's package (sudo apt-get install chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium ||
  { apt-get update && apt-get install -y --no-install-recommends chromium; }
