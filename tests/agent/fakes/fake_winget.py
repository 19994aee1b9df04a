"""A stand-in for winget.exe, for the runner's tests. Driven by environment variables, which
the runner passes on to the process it starts:

FAKE_WINGET_OUTPUT  a file whose bytes are written to stdout unchanged (default: nothing)
FAKE_WINGET_EXIT    the exit code (default 0)
FAKE_WINGET_MODE    "print" (default); "hang": start a child, print "pids <own> <child>", and
                    sleep until killed; "flood": print FAKE_WINGET_FLOOD_BYTES of filler lines
                    before the output file
FAKE_WINGET_ARGV    a file to record the arguments in, as JSON
FAKE_WINGET_OUTPUT_<COMMAND>, FAKE_WINGET_EXIT_<COMMAND>
                    the same for one command only (its first argument, upper-case: ``LIST``,
                    ``UPGRADE``), so one stand-in answers ``winget list`` and the scan apart
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    argv_log = os.environ.get("FAKE_WINGET_ARGV")
    if argv_log:
        Path(argv_log).write_text(json.dumps(sys.argv[1:]), encoding="utf-8")
    out = sys.stdout.buffer
    mode = os.environ.get("FAKE_WINGET_MODE", "print")
    if mode == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        out.write(f"pids {os.getpid()} {child.pid}\n".encode())
        out.flush()
        time.sleep(3600)
    if mode == "flood":
        line = b"x" * 99 + b"\n"
        for _ in range(int(os.environ["FAKE_WINGET_FLOOD_BYTES"]) // len(line)):
            out.write(line)
    command = sys.argv[1].upper() if len(sys.argv) > 1 else ""
    output = os.environ.get(f"FAKE_WINGET_OUTPUT_{command}", os.environ.get("FAKE_WINGET_OUTPUT"))
    if output:
        out.write(Path(output).read_bytes())
    out.flush()
    return int(
        os.environ.get(f"FAKE_WINGET_EXIT_{command}", os.environ.get("FAKE_WINGET_EXIT", "0"))
    )


if __name__ == "__main__":
    sys.exit(main())
