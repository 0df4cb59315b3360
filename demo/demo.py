"""`make demo`: two simulated gateways on loopback, and a playbook that maps a port through each.

Starts the simulated gateway (python3 -m simgw) twice: on 127.0.0.77, speaking PCP and NAT-PMP; on
127.0.0.78, speaking only UPnP IGD (port 5351 dropped, its IGD found with a unicast SSDP search). Runs
demo/demo.yml with the collection from this checkout (method auto against both), prints the public
endpoints granted and which protocol auto chose for each gateway, and stops the gateways.
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
GATEWAYS = {  # address: (what it speaks, simgw options)
    "127.0.0.77": ("PCP/NAT-PMP", []),
    "127.0.0.78": ("UPnP IGD only", ["--speaks", "none", "--igd", "v2", "--ssdp", "unicast"]),
}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="portmap-natpmp-demo-"))
    gateways = []
    try:
        collections = work / "collections" / "ansible_collections" / "portmap"
        collections.mkdir(parents=True)
        (collections / "natpmp").symlink_to(REPO)
        for address, (kind, options) in GATEWAYS.items():
            control = work / f"gateway-{address}.sock"
            gateway = subprocess.Popen(
                [sys.executable, "-m", "simgw", "--listen", f"{address}:5351", "--control", str(control),
                 "--public-address", "11.22.33.2", *options],
                stdout=subprocess.PIPE, text=True, cwd=str(REPO))
            gateways.append(gateway)
            ready = gateway.stdout.readline().strip()
            if not ready.startswith("READY"):
                print(f"demo: the simulated gateway on {address} did not start ({ready!r})", file=sys.stderr)
                return 1
            print(f"demo: simulated {kind} gateway on {address} (control socket {control})")
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(work / "collections"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=str(work / "tmp"))
        playbook = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
             str(REPO / "demo" / "demo.yml"),
             "-e", f"demo_ledger={work / 'ledger.json'}", "-e", f"ansible_python_interpreter={sys.executable}"],
            env=env, capture_output=True, text=True, check=False)
        print(playbook.stdout)
        if playbook.returncode != 0:
            print(playbook.stderr, file=sys.stderr)
            return playbook.returncode
        for endpoint in re.findall(r"public endpoint (\S+ -> .*?) over (\w+)", playbook.stdout):
            print(f"demo: public endpoint {endpoint[0]} over {endpoint[1]}")
        for chosen in re.findall(r"auto chose \S+ for gateway \S+ \([^)]*\)", playbook.stdout):
            print(f"demo: {chosen}")
        return 0
    finally:
        for gateway in gateways:
            gateway.terminate()
            gateway.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
