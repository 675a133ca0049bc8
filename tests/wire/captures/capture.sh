#!/bin/bash
# capture.sh - re-capture the peer fixture packets of tests/wire/captures/.
#
# Run once, as root, on a machine with the shared peer harness
# (/work/shared/peers: strongSwan 5.9.8 charon, libreswan 4.10 pluto unpacked in
# /opt/libreswan).  Each scenario brings up two namespaces kw-a / kw-b
# (10.93.0.1 <-> 10.93.0.2), records what crosses kw-b's veth with dumpcap into
# <scenario>.pcap here, and removes everything it started.  The pcaps are the
# fixtures: tests/wire/test_captures.py decodes every ISAKMP datagram in them
# and checks that encoding gives the same bytes back.
#
#   capture.sh [scenario...]     default: all scenarios
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=${PEERS:-/work/shared/peers}
export IKEPEERS_NS_PREFIX=kw IKEPEERS_RUN=/tmp/kw-peers IKEPEERS_NET=10.93.0

teardown() { "$PEERS/teardown.sh" > /dev/null 2>&1; }
trap teardown EXIT

# run_scenario NAME INITIATOR_CMD... ; peers are started by the caller
begin() {
    teardown
    "$PEERS/netns.sh" up "${2:-plain}" || exit 1
    "$PEERS/capture.sh" start "cap-$1" b || exit 1
}
finish() {
    "$PEERS/capture.sh" stop "cap-$1"
    cp "$IKEPEERS_RUN/cap-$1/capture.pcap" "$HERE/$1.pcap"
    echo "== $1: $(tshark -r "$HERE/$1.pcap" -Y isakmp 2>/dev/null | wc -l) ISAKMP packets"
    tshark -r "$HERE/$1.pcap" -Y isakmp 2>/dev/null | sed 's/^/   /'
}
sw() { "$PEERS/sw.sh" "$@"; }
pl() { "$PEERS/pluto.sh" "$@"; }

# Main Mode PSK, three Phase 1 transforms, DPD on (DPD VIDs, R-U-THERE
# informationals), then a DELETE informational when the initiator tears down.
scenario_sw_mm() {
    begin sw-mm
    local ike=aes128-sha256-modp2048,aes256-sha1-modp3072,3des-md5-modp1024
    sw start swb --side b --ike "$ike" --dpd 1 --keylog
    sw start swa --side a --ike "$ike" --dpd 1 --keylog
    sw initiate swa 15
    sleep 3.5
    sw ctl swa --terminate --ike ikp --timeout 5
    sleep 0.5
    # the initiator's logged keying material (test PSK), for key-derivation vectors
    python3 "$PEERS/keys.py" "$IKEPEERS_RUN/swa/charon.log" > "$HERE/sw-mm.keys.json"
    finish sw-mm
}

# Aggressive Mode PSK with FQDN identities.
scenario_sw_am() {
    begin sw-am
    sw start swb --side b --mode aggressive --local-id @b.ikp.test --remote-id @a.ikp.test
    sw start swa --side a --mode aggressive --local-id @a.ikp.test --remote-id @b.ikp.test
    sw initiate swa 15
    finish sw-am
}

# No common proposal: the responder answers MM1 with a cleartext
# informational carrying NO_PROPOSAL_CHOSEN.
scenario_sw_noprop() {
    begin sw-noprop
    sw start swb --side b --ike 3des-md5-modp1024
    sw start swa --side a --ike aes256-sha512-ecp384
    sw initiate swa 5
    finish sw-noprop
}

# Main Mode with RSA signatures and X.509 certificates (CERTREQ in MM3/MM4),
# PFS in Quick Mode.
scenario_sw_rsa() {
    begin sw-rsa
    "$PEERS/certs.sh" > /dev/null 2>&1 || exit 1
    sw start swb --side b --auth rsa --esp aes128-sha1-modp2048
    sw start swa --side a --auth rsa --esp aes128-sha1-modp2048
    sw initiate swa 15
    finish sw-rsa
}

# libreswan pluto initiates Main Mode PSK to a strongSwan responder.
scenario_ls_mm() {
    begin ls-mm
    sw start swb --side b
    pl start lsa --side a --fake-sa no
    pl initiate lsa 10
    sleep 1
    finish ls-mm
}

# libreswan pluto initiates Aggressive Mode PSK (FQDN ids) to strongSwan.
scenario_ls_am() {
    begin ls-am
    sw start swb --side b --mode aggressive --local-id @b.ikp.test --remote-id @a.ikp.test
    pl start lsa --side a --mode aggressive --fake-sa no \
        --local-id @a.ikp.test --remote-id @b.ikp.test
    pl initiate lsa 10
    sleep 1
    finish ls-am
}

# strongSwan initiates Main Mode PSK to a libreswan responder (pluto's MM2/MM4).
scenario_ls_mm_resp() {
    begin ls-mm-resp
    pl start lsb --side b --fake-sa no
    sw start swa --side a
    sw initiate swa 10
    sleep 1
    finish ls-mm-resp
}

# strongSwan initiates Aggressive Mode PSK (FQDN ids) to a libreswan responder.
scenario_ls_am_resp() {
    begin ls-am-resp
    pl start lsb --side b --mode aggressive --fake-sa no \
        --local-id @b.ikp.test --remote-id @a.ikp.test
    sw start swa --side a --mode aggressive --local-id @a.ikp.test --remote-id @b.ikp.test
    sw initiate swa 10
    sleep 1
    finish ls-am-resp
}

# pluto as responder without a common proposal: its cleartext informational.
scenario_ls_noprop() {
    begin ls-noprop
    pl start lsb --side b --fake-sa no --ike "aes256-sha2_512;modp4096"
    sw start swa --side a --ike aes256-sha512-ecp384
    sw initiate swa 5
    finish ls-noprop
}

# strongSwan behind a NAT (nft masquerade): NAT-D mismatch, float to 4500
# (non-ESP marker), keepalives.  Captured on kw-b's side of the NAT.
scenario_sw_nat() {
    begin sw-nat nat
    sw start swb --side b
    sw start swa --side a
    sw initiate swa 15
    sleep 1
    finish sw-nat
}

ALL="sw_mm sw_am sw_noprop sw_rsa ls_mm ls_am ls_mm_resp ls_am_resp ls_noprop sw_nat"
for s in ${@:-$ALL}; do "scenario_${s//-/_}"; done
