# shellcheck shell=bash
# The real observers the monitoring tests look at the platform with, from Debian's packages:
# Prometheus 2.42 with `promtool` (package `prometheus`: the agent's /metrics must pass
# `promtool check metrics`, and a real Prometheus scrapes it) and headless Chromium (package
# `chromium`: the agent's status page is loaded in it), and the `age` CLI (package `age`: the
# backup test decrypts the bucket's objects with it, not with the code under test). Source this
# file after engine.sh:
#
#   source scripts/lib/engine.sh && source scripts/lib/observers.sh
#   observers_ensure   # installs whichever is missing; fails loudly when one cannot be had
#
# Nothing is started here: each test starts its own Prometheus and Chromium and stops them.
# (Debian's prometheus package does not start its service without systemd, as here.)

observers_ensure() {
    local missing=()
    command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v age >/dev/null 2>&1 || missing+=(age)
    if ((${#missing[@]})); then
        _engine_apt_install "${missing[@]}" || return 1
    fi
    local tool
    for tool in promtool prometheus chromium curl age; do
        command -v "$tool" >/dev/null 2>&1 \
            || { _engine_die "$tool is not on PATH after installing ${missing[*]}"; return 1; }
    done
}
