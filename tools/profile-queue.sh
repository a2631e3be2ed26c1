#!/usr/bin/env bash
# profile-queue.sh - where a message's CPU and system calls go, imsvc and
# Postfix under the same load as tools/bench-queue.sh.
#
#   bash tools/profile-queue.sh [imsvc|postfix|both]     from the host, as root
#
# A measurement, not a test: it prints figures and fails only if a run does.
# For each side it starts `tools/bench-queue.sh SIDE` (one run; EXE and B
# are passed on), waits until the side's load has run WARM seconds (default
# 2), then records with perf on the host for two windows of WINDOW seconds
# (default 2; both end before Postfix's 5,000 messages do): first CPU
# samples of the whole machine (cpu-clock, 999 Hz), then every system call's
# entry (raw_syscalls:sys_enter) of the side's processes. They are apart
# because tracing every call slows the traced processes. In both windows
# the accept and accept4 calls that returned a connection are counted:
# smtp-source opens one connection per message, so the connections the
# side's server accepted are its messages (imsvc's wineserver accepts for
# the service's AcceptEx, Postfix's smtpd processes for Postfix). It prints
# per message:
#   - CPU ms by component: for imsvc the service process split into
#     imsvc.exe, Wine's Windows-side DLLs (*.dll), Wine's Unix side (*.so
#     under wine/), other libraries and the kernel, and the wineserver
#     (user, kernel); for Postfix each program (smtpd, cleanup, qmgr, smtp,
#     trivial-rewrite, the rest), user and kernel;
#   - system calls by kind: imsvc's service process and its wineserver
#     apart, Postfix's programs together.
# The whole run's accepted msg/s and CPU ms per message from bench-queue
# follow, to show how far the recording moved them.
# Everything the bench starts is stopped by the bench; perf stops by itself.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
WHICH=${1:-both}
WARM=${WARM:-2}
WINDOW=${WINDOW:-2}
command -v perf >/dev/null || { echo "profile-queue: perf is not installed on the host" >&2; exit 1; }
bash "$here/setup.sh" >/dev/null
. "$here/env.sh"
root=$IMSVC_ROOT   # the bench's /tmp is the root's
work=$(mktemp -d /tmp/imsvc-profile.XXXXXX)
trap 'rm -rf "$work"' EXIT
unistd=/usr/include/x86_64-linux-gnu/asm/unistd_64.h
# Postfix's programs, by the names its processes run under.
export POSTFIX_PROGRAMS='smtpd cleanup qmgr smtp trivial-rewrite master anvil bounce proxymap scache tlsmgr pickup'

# profile SIDE PIDFILE-LETTER: one load, one recording.
profile() {
    local side=$1 letter=$2 bench_pid pidfile='' t
    touch "$work/start"   # this bench's PID file is the one written after it
    ( cd "$top" && RUNS=1 ONE_MESSAGES=20 bash tools/bench-queue.sh "$side" ) >"$work/bench-$side.out" 2>&1 &
    bench_pid=$!
    for t in $(seq 1 1200); do
        pidfile=$(find "$root/tmp" -maxdepth 2 -path "*/imsvc-bench-queue.*/pids-$letter" \
                  -newer "$work/start" -size +0 2>/dev/null | head -1)
        [ -n "$pidfile" ] && break
        kill -0 "$bench_pid" 2>/dev/null || break
        sleep 0.25
    done
    if [ -z "$pidfile" ]; then
        wait "$bench_pid" || true
        echo "profile-queue: the $side side never started:" >&2; tail -20 "$work/bench-$side.out" >&2
        return 1
    fi
    local pids
    pids=$(cat "$pidfile")
    # the load starts right after the pids are written
    sleep "$WARM"
    # Whose events count: imsvc's two processes by PID (perf follows their
    # threads); Postfix's programs by name, since its master starts new ones
    # during the load. The connections accepted are counted in both windows.
    local target=() accepts=() calls=(-e raw_syscalls:sys_enter) f='' p acc_pid
    if [ "$side" = imsvc ]; then
        target=(-p "$(echo "$pids" | tr ' ' ,)")
        accepts=(-e syscalls:sys_exit_accept -e syscalls:sys_exit_accept4)
    else
        for p in $POSTFIX_PROGRAMS; do f="$f${f:+ || }comm == \"$p\""; done
        target=(-a)
        accepts=(-e syscalls:sys_exit_accept --filter 'comm == "smtpd"'
                 -e syscalls:sys_exit_accept4 --filter 'comm == "smtpd"')
        calls+=(--filter "$f")
    fi
    # Window 1, CPU: samples of the whole machine, and the accepts beside.
    # Window 2, right after: every system call (-c 1). Apart, because
    # tracing every call slows the traced processes and would swell the
    # first window's kernel time.
    perf record -q -c 1 "${target[@]}" "${accepts[@]}" -o "$work/$side-acc.data" \
        -- sleep "$WINDOW" >/dev/null 2>&1 &
    acc_pid=$!
    perf record -q -a -F 999 -e cpu-clock -o "$work/$side-cpu.data" -- sleep "$WINDOW" >/dev/null 2>&1
    wait "$acc_pid"
    perf record -q -c 1 "${target[@]}" "${calls[@]}" "${accepts[@]}" -o "$work/$side-calls.data" \
        -- sleep "$WINDOW" >/dev/null 2>&1
    wait "$bench_pid" || { echo "profile-queue: bench-queue failed:" >&2; tail -20 "$work/bench-$side.out" >&2; return 1; }
    { perf script -i "$work/$side-cpu.data" -F comm,pid,event,ip,dso
      perf script -i "$work/$side-acc.data" -F comm,pid,event,trace; } 2>/dev/null >"$work/$side-1.txt"
    perf script -i "$work/$side-calls.data" -F comm,pid,event,trace 2>/dev/null >"$work/$side-2.txt"
    python3 - "$side" "$work/$side-1.txt" "$work/$side-2.txt" "$unistd" "$WINDOW" "$top/${EXE:-${B:-build}/imsvc.exe}" $pids <<'EOF'
import collections, os, re, struct, sys
side, paths, unistd, window, exe = sys.argv[1], sys.argv[2:4], sys.argv[4], float(sys.argv[5]), sys.argv[6]
roots = [int(p) for p in sys.argv[7:]]
# imsvc.exe's code is where its PE header says (perf sees Wine's copy of
# the image as anonymous memory): ImageBase and SizeOfImage.
image = (0, 0)
if side == "imsvc":
    with open(exe, "rb") as f:
        pe = f.read(4096)
    opt = struct.unpack_from("<I", pe, 0x3c)[0] + 24
    base, size = struct.unpack_from("<Q", pe, opt + 24)[0], struct.unpack_from("<I", pe, opt + 56)[0]
    image = (base, base + size)
names = {}
for line in open(unistd):
    m = re.match(r"#define __NR_(\w+)\s+(\d+)", line)
    if m:
        names[int(m.group(2))] = m.group(1)
# imsvc: the service process and its wineserver, by PID; Postfix: its
# programs, by name (the master starts new ones during the load).
POSTFIX = os.environ["POSTFIX_PROGRAMS"].split()
samples = collections.Counter()      # component -> samples
calls = collections.Counter()        # (process, syscall name) -> calls
def mine(pid, comm):
    return pid in roots if side == "imsvc" else comm in POSTFIX
pat = re.compile(r"\s*(\S.*?)\s+(\d+)\s+(\S+):\s*(.*)$")
accepted = [0, 0]                    # per window
for window_no, path in enumerate(paths):
    for line in open(path):
        m = pat.match(line)
        if not m:
            continue
        comm, pid, event, rest = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        if not mine(pid, comm):
            continue
        if event == "cpu-clock":
            m2 = re.match(r"([0-9a-f]+)\s+\((.*)\)\s*$", rest)
            ip, dso = (int(m2.group(1), 16), m2.group(2)) if m2 else (0, "[unknown]")
            kernel = "kernel" in dso
            if side == "imsvc":
                if pid != roots[0]:
                    comp = "wineserver: kernel" if kernel else "wineserver: user"
                elif kernel:
                    comp = "service: kernel"
                elif image[0] <= ip < image[1] or dso.lower().endswith("imsvc.exe"):
                    comp = "service: imsvc.exe"
                elif dso.lower().endswith(".dll") or dso.lower().endswith(".exe"):
                    comp = "service: Wine, Windows side (*.dll)"
                elif "/wine/" in dso:
                    comp = "service: Wine, Unix side (*.so)"
                else:
                    comp = "service: " + dso.rsplit("/", 1)[-1]
            else:
                prog = comm if comm in ("smtpd", "cleanup", "qmgr", "smtp", "trivial-rewrite") else "other"
                comp = "%s: %s" % (prog, "kernel" if kernel else "user")
            samples[comp] += 1
        elif event == "raw_syscalls:sys_enter":
            m2 = re.search(r"NR (\d+)", rest)
            if m2:
                who = ("service" if pid == roots[0] else "wineserver") if side == "imsvc" else "Postfix"
                calls[who, names.get(int(m2.group(1)), "nr" + m2.group(1))] += 1
        elif event in ("syscalls:sys_exit_accept", "syscalls:sys_exit_accept4"):
            m2 = re.search(r"0x([0-9a-f]+)$", rest.strip())
            ret = int(m2.group(1), 16) if m2 else -1
            if ret < 0x8000000000000000 and (side == "imsvc" and pid != roots[0] or comm == "smtpd"):
                accepted[window_no] += 1
print()
if 0 in accepted:
    sys.exit("profile-queue: %s: no connection accepted in a window" % side)
print("%s: %d and %d messages accepted in the two %.0f s windows (%.1f and %.1f msg/s)"
      % (side, accepted[0], accepted[1], window, accepted[0] / window, accepted[1] / window))
total = sum(samples.values())
print("CPU ms per message by component (window 1, cpu-clock at 999 Hz)")
for comp, n in sorted(samples.items()):
    print("  %-42s %6.3f  %3.0f %%" % (comp, n * 1000.0 / 999 / accepted[0], 100.0 * n / total))
print("  %-42s %6.3f" % ("all", total * 1000.0 / 999 / accepted[0]))
for who in sorted({w for w, _ in calls}, reverse=True):
    mine_calls = collections.Counter({n: c for (w, n), c in calls.items() if w == who})
    print("system calls per message, %s (window 2; %d kinds, the first 12)" % (who, len(mine_calls)))
    for name, n in mine_calls.most_common(12):
        print("  %-42s %6.1f" % (name, n / accepted[1]))
    print("  %-42s %6.1f" % ("all", sum(mine_calls.values()) / accepted[1]))
EOF
    grep -E '^(accepted msg/s|CPU ms per message)' "$work/bench-$side.out" | head -2 | sed 's/^/  (bench-queue, whole run) /'
}

case "$WHICH" in
    imsvc) profile imsvc a ;;
    postfix) profile postfix b ;;
    both) profile imsvc a; profile postfix b ;;
    *) echo "usage: profile-queue.sh [imsvc|postfix|both]" >&2; exit 2 ;;
esac
