#!/usr/bin/env bash
# tool-missing.sh WHAT... -- the end of a test that cannot run because WHAT is not installed.
#
# test/run.sh installs every tool the tests need, so on Debian as root a missing tool is a
# failure of the test command (exit 1), never a test that quietly disappears; elsewhere (not
# root, or not Debian: nothing was installed for us) the test is skipped (exit 77), which
# test/run.sh counts apart from the passes. Scripts call it as `exec tool-missing.sh "..."`;
# meson registers it as the test itself when a tool is missing at configure time.
msg="$*"
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
  echo "FAIL: $msg is not installed (test/run.sh installs it on Debian as root)"
  exit 1
fi
echo "SKIP: $msg is not installed"
exit 77
