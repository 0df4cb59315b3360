"""`make demo`: the simulated PCP/NAT-PMP gateway on loopback, and a playbook that maps a port on it.

Starts the simulated gateway (python3 -m simgw) on 127.0.0.77:5351, runs demo/demo.yml with the collection
from this checkout, prints the public endpoint the gateway granted, and stops the gateway.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GATEWAY = "127.0.0.77"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="portmap-natpmp-demo-"))
    gateway = None
    try:
        collections = work / "collections" / "ansible_collections" / "portmap"
        collections.mkdir(parents=True)
        (collections / "natpmp").symlink_to(REPO)
        control = work / "gateway.sock"
        gateway = subprocess.Popen(
            [sys.executable, "-m", "simgw", "--listen", f"{GATEWAY}:5351",
             "--control", str(control), "--public-address", "11.22.33.2"],
            stdout=subprocess.PIPE, text=True, cwd=str(REPO))
        ready = gateway.stdout.readline().strip()
        if not ready.startswith("READY"):
            print(f"demo: the simulated gateway did not start ({ready!r})", file=sys.stderr)
            return 1
        print(f"demo: simulated PCP/NAT-PMP gateway listening on {GATEWAY}:5351 (control socket {control})")
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(work / "collections"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=str(work / "tmp"))
        playbook = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
             str(REPO / "demo" / "demo.yml"), "-e", f"demo_gateway={GATEWAY}",
             "-e", f"demo_ledger={work / 'ledger.json'}", "-e", f"ansible_python_interpreter={sys.executable}"],
            env=env, capture_output=True, text=True, check=False)
        print(playbook.stdout)
        if playbook.returncode != 0:
            print(playbook.stderr, file=sys.stderr)
            return playbook.returncode
        endpoint = re.search(r"public endpoint (\S+)", playbook.stdout)
        print(f"demo: public endpoint {endpoint.group(1) if endpoint else '(not found)'}")
        return 0
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
