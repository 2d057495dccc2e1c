#!/bin/sh
# An ActionLoop executable: acknowledges start-up when __OW_WAIT_FOR_ACK is set, then
# for each JSON line on stdin logs it and answers one JSON line on file descriptor 3.
if [ -n "$__OW_WAIT_FOR_ACK" ]; then echo '{"ok": true}' >&3; fi
while read -r line; do
  echo "native got: $line"
  echo "{\"native\": true, \"bytes\": ${#line}}" >&3
done
