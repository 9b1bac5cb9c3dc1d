#!/usr/bin/env bash
# `make run`: the improviser on the bundled model, with virtual MIDI ports
# "Cadenza In" / "Cadenza Out".  On a machine with no MIDI system at all (no
# ALSA sequencer, no JACK server: a container, a fresh cloud box) it plays
# the offline duet instead: `cadenza simulate` on the example phrase shipped
# with Cadenza, writing duet.mid and its piano roll duet.png.
#
#   bash scripts/run.sh [options of `cadenza live`]
#   CADENZA=/path/to/cadenza bash scripts/run.sh     # another installation
set -euo pipefail
cd "$(dirname "$0")/.."

cadenza=${CADENZA:-.venv/bin/cadenza}
duet=${DUET:-duet}

# `cadenza ports` exits 1 when no MIDI system works here, or when python-rtmidi
# cannot load the system's MIDI libraries (libasound on a minimal image), and 2
# for a bad config.toml, which the daemon would refuse too.  Its stdout is the port
# list; stderr carries the reason and, from the C libraries, some noise.
set +e
probe=$("$cadenza" ports 2>&1 >/dev/null)
status=$?
set -e

if ((status == 0)); then
  exec "$cadenza" live "$@"
fi
# The reason, without the C libraries' chatter (and without its advice to run
# simulate, which is what happens next).  `|| true`: a grep that finds nothing
# must not end the script under `set -e -o pipefail`.
reason=$(grep -E 'ERROR cadenza' <<<"$probe" | tail -n 1 \
  | sed -E -e 's/^.*ERROR cadenza[.a-z_]*: //' -e 's/ To hear Cadenza without a MIDI system.*$//' \
  || true)
# No log line: it died before logging (a traceback), and its last line says why.
if [[ -z $reason ]]; then
  reason=$(grep -v '^[[:space:]]*$' <<<"$probe" | tail -n 1 || true)
fi
if ((status != 1)); then
  echo "cadenza ports failed (exit $status): ${reason:-$probe}" >&2
  exit "$status"
fi

echo "make run: MIDI does not work on this machine, so no live ports." >&2
echo "  (${reason:-`cadenza ports` failed and gave no reason})" >&2
echo "make run: playing the offline duet instead: cadenza simulate on the example phrase." >&2
"$cadenza" simulate --out "$duet.mid" --plot "$duet.png"
echo "make run: wrote $duet.mid (you and Cadenza, two tracks; open it in any MIDI player or DAW)" >&2
echo "          and $duet.png (its piano roll: the performer and Cadenza in two colours)." >&2
echo "          For the live daemon, give this machine a MIDI system (see docs/daemon.md) and run make run again." >&2
