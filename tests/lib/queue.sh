# queue.sh - waiting for the service's queue in integration tests.
#
# queue_settle DATA_DIR [SECONDS]: wait until the queue under DATA_DIR holds
# no message (no *.env left in Queue/active or the hash folders Queue/XX/YY), so what was
# accepted has been delivered or bounced. Returns 1 if it has not settled by the deadline (default 30 s).
queue_settle() {
    local dir=$1/Queue deadline=$(( $(date +%s) + ${2:-30} ))
    local glob="$dir/[0-9A-F][0-9A-F]/[0-9A-F][0-9A-F]/*.env" active="$dir/active/*.env"
    while [ "$(date +%s)" -le "$deadline" ]; do
        if ! compgen -G "$glob" >/dev/null && ! compgen -G "$active" >/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "queue_settle: $( (compgen -G "$active"; compgen -G "$glob") | wc -l) messages still queued in $dir" >&2
    return 1
}
