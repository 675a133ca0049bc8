#!/bin/bash
# capture_strongswan.sh [NAME IKE_PROPOSAL ESP_PROPOSAL [psk|rsa [main|aggressive]]] - produce
# NAME.{log-a,log-b,pcap} for a key-derivation fixture (run by hand as root;
# the results are committed).  Defaults: strongswan_mm_psk
# aes256-sha1-modp2048 aes256-sha1-modp2048 psk.  With "rsa" both sides
# authenticate with RSA signatures and X.509 certificates made here with
# openssl (throw-away CA and RSA-2048 keys; the initiator's key is copied to
# NAME.key-a so a test can re-sign).  "aggressive" runs Aggressive Mode
# instead of Main Mode (FQDN IDs would be usual; the addresses are kept).
#
# Two charon 5.9.8 instances in namespaces kc2-a / kc2-b (removed at the end):
# IKEv1 Main Mode PSK with IKE_PROPOSAL (the default has SKEYID_e shorter than
# the key, so Ka needs RFC 2409 appendix B), then Quick Mode with
# ESP_PROPOSAL (the default has PFS modp2048 and KEYMAT longer than one PRF
# block).  charon logs its keys at
# ike=4 / chd=4 (reference/interop.md section 6).  With kernel-netlink the
# CHILD SA install fails on this kernel after the keys are logged, so the
# initiator answers QM 2 with an encrypted INFORMATIONAL (NO_PROPOSAL_CHOSEN)
# instead of QM 3: that message checks the Informational IV and HASH too.
set -eu
OUT=$(cd "$(dirname "$0")" && pwd)
NAME=${1:-strongswan_mm_psk}
IKE_PROPOSAL=${2:-aes256-sha1-modp2048}
ESP_PROPOSAL=${3:-aes256-sha1-modp2048}
AUTH=${4:-psk}
MODE=${5:-main}
AGGR=no; [ "$MODE" = aggressive ] && AGGR=yes
W=$(mktemp -d /tmp/kc2-sw.XXXXXX)
NSA=kc2-a NSB=kc2-b
CHARON=/usr/lib/ipsec/charon
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    ip netns del $NSA 2>/dev/null || true
    ip netns del $NSB 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

ip netns add $NSA; ip netns add $NSB
ip link add kc2a0 netns $NSA type veth peer name kc2b0 netns $NSB
ip -n $NSA addr add 10.93.0.1/24 dev kc2a0; ip -n $NSB addr add 10.93.0.2/24 dev kc2b0
for ns in $NSA $NSB; do ip -n $ns link set lo up; done
ip -n $NSA link set kc2a0 up; ip -n $NSB link set kc2b0 up
ip -n $NSA addr add 10.93.0.201/32 dev lo; ip -n $NSB addr add 10.93.0.202/32 dev lo

conf() {  # $1 dir, $2 me, $3 peer, $4 my inner, $5 peer inner
    mkdir -p "$1/run" "$1/swanctl"
    cat > "$1/strongswan.conf" <<EOF
charon {
    load_modular = no
    load = random nonce openssl aes sha1 sha2 md5 hmac gmp pem pkcs1 pkcs8 x509 pubkey kdf socket-default vici kernel-netlink
    port = 500
    port_nat_t = 4500
    retransmit_tries = 2
    i_dont_care_about_security_and_use_aggressive_mode_psk = $AGGR
    plugins { vici { socket = unix://$1/charon.vici } }
    filelog {
        main {
            path = $1/charon.log
            time_format = %H:%M:%S
            ike_name = yes
            append = no
            flush_line = yes
            default = 1
            ike = 4
            chd = 4
            knl = 1
        }
    }
    syslog { daemon { default = -1 } auth { default = -1 } }
}
EOF
    if [ "$AUTH" = rsa ]; then
        AUTHCONF="auth = pubkey
                certs = me.pem"
        RAUTH="auth = pubkey"
        SENDCERT=always
    else
        AUTHCONF="auth = psk"
        RAUTH="auth = psk"
        SENDCERT=never
    fi
    cat > "$1/swanctl/swanctl.conf" <<EOF
connections {
    kc2 {
        version = 1
        aggressive = $AGGR
        local_addrs = $2
        remote_addrs = $3
        proposals = $IKE_PROPOSAL
        encap = no
        dpd_delay = 0s
        send_cert = $SENDCERT
        unique = no
        local { $AUTHCONF
                id = $2 }
        remote { $RAUTH
                 id = $3 }
        children {
            kc2 {
                mode = tunnel
                esp_proposals = $ESP_PROPOSAL
                local_ts = $4/32
                remote_ts = $5/32
                start_action = none
            }
        }
    }
}
secrets {
    ike-psk { id-a = 10.93.0.1
              id-b = 10.93.0.2
              secret = "kc2-test-psk-0123456789" }
}
EOF
}
conf "$W/a" 10.93.0.1 10.93.0.2 10.93.0.201 10.93.0.202
conf "$W/b" 10.93.0.2 10.93.0.1 10.93.0.202 10.93.0.201

if [ "$AUTH" = rsa ]; then
    P=$W/pki; mkdir -p "$P"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" \
        -days 3650 -sha256 -subj "/O=kc2/CN=kc2 test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    for s in a b; do
        ip=10.93.0.1; [ $s = b ] && ip=10.93.0.2
        openssl req -newkey rsa:2048 -nodes -keyout "$P/$s.key" -out "$P/$s.csr" \
            -subj "/O=kc2/CN=$s.kc2.test" 2>/dev/null
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=IP:%s\n' \
            "$ip" > "$P/$s.ext"
        openssl x509 -req -in "$P/$s.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" \
            -CAcreateserial -out "$P/$s.pem" -days 3650 -sha256 -extfile "$P/$s.ext" 2>/dev/null
        mkdir -p "$W/$s/swanctl/x509" "$W/$s/swanctl/x509ca" "$W/$s/swanctl/private"
        cp "$P/ca.pem" "$W/$s/swanctl/x509ca/ca.pem"
        cp "$P/$s.pem" "$W/$s/swanctl/x509/me.pem"
        cp "$P/$s.key" "$W/$s/swanctl/private/me.key"
    done
    cp "$P/a.key" "$OUT/$NAME.key-a"
fi

ip netns exec $NSA tcpdump -i kc2a0 -w "$W/cap.pcap" -U udp port 500 or udp port 4500 \
    >/dev/null 2>&1 &
PIDS+=($!)
for s in a b; do
    ns=kc2-$s
    STRONGSWAN_CONF=$W/$s/strongswan.conf ip netns exec $ns /bin/sh -c \
        'mount --bind "$1/run" /run && exec "$2"' sh "$W/$s" $CHARON \
        > "$W/$s/charon.stdout" 2>&1 < /dev/null &
    PIDS+=($!)
done
for s in a b; do
    for _ in $(seq 50); do [ -S "$W/$s/charon.vici" ] && break; sleep 0.1; done
    SWANCTL_DIR=$W/$s/swanctl STRONGSWAN_CONF=$W/$s/strongswan.conf \
        swanctl --load-all --noprompt --uri "unix://$W/$s/charon.vici" >/dev/null
done
SWANCTL_DIR=$W/a/swanctl STRONGSWAN_CONF=$W/a/strongswan.conf \
    swanctl --initiate --child kc2 --timeout 10 --uri "unix://$W/a/charon.vici" || true
sleep 1
cp "$W/a/charon.log" "$OUT/$NAME.log-a"
cp "$W/b/charon.log" "$OUT/$NAME.log-b"
cp "$W/cap.pcap" "$OUT/$NAME.pcap"
echo "captured into $OUT"
