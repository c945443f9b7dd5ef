#!/usr/bin/env bash
# The CLI's client commands end to end, as a user types them: acquire via
# eval, put, list under the lease, release, public list, get the bytes back;
# then a rollback, and an error printed as one line with a non-zero exit.
# Needs ATTACHE_URL (a running `attache serve`) and ATTACHE_BIN (dist/bin.js).
set -euo pipefail
attache() { node "$ATTACHE_BIN" "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf 'hello from bash\n' > "$work/note.txt"

eval "$(attache acquire --key orders/1 --ttl 30)"
test -n "$ATTACHE_LEASE_ID" && test -n "$ATTACHE_TXN_ID" && test "$ATTACHE_KEY" = orders/1 && test "$ATTACHE_NAMESPACE" = default
attache attachments put --name note.txt --file "$work/note.txt" --content-type text/plain
attache keepalive --ttl 30 > /dev/null
attache attachments list | grep -q '^note.txt	16	text/plain	'
# Not visible to others before release.
test "$(attache attachments list --key orders/1 --public --json)" = '{"attachments":[]}'
attache release
attache attachments list --key orders/1 --public | grep -q '^note.txt	16	'
attache attachments get --name note.txt --key orders/1 --public -o "$work/back.txt"
cmp "$work/note.txt" "$work/back.txt"
test "$(attache attachments get --name note.txt --key orders/1 --public)" = 'hello from bash'

# Rollback keeps nothing.
eval "$(attache acquire --key orders/2 --ttl 30)"
attache attachments put --name gone.txt --file "$work/note.txt"
attache release --rollback
test "$(attache attachments list --key orders/2 --public --json)" = '{"attachments":[]}'

# The document face.
ref=$(attache put "$work/note.txt")
case "$ref" in attachment://*) ;; *) echo "not a ref: $ref" >&2; exit 1 ;; esac
attache get "$ref" -o "$work/doc.txt"
cmp "$work/note.txt" "$work/doc.txt"

# Errors: one line on stderr, the exit code of their class.
set +e
attache attachments get --name missing --key orders/1 --public -o "$work/x" 2> "$work/err"; code=$?
set -e
test "$code" = 6
test "$(wc -l < "$work/err")" = 1
grep -q '^attache: attachment_not_found: ' "$work/err"
eval "$(attache acquire --key orders/3 --ttl 30)"
set +e
ATTACHE_URL="$ATTACHE_URL" attache acquire --key orders/3 --ttl 30 > /dev/null 2> "$work/err"; code=$?
set -e
test "$code" = 5
grep -q '^attache: waiting: ' "$work/err"
# Past --max-bytes: the server's 413 is the error, not the broken write.
head -c 3000000 /dev/zero > "$work/big.bin"
set +e
attache attachments put --name big.bin --file "$work/big.bin" --max-bytes 5 2> "$work/err"; code=$?
set -e
test "$code" = 3 || { cat "$work/err" >&2; exit 1; }
grep -q '^attache: attachment_too_large: ' "$work/err"
attache release --json | grep -q '"released":true'
echo "lifecycle ok"
