"""Stand-in for pip's get-pip.py, used by ansible-test (which downloads get-pip.py from a
host that may be unreachable). It bootstraps pip from the interpreter's own ensurepip,
then runs `pip install` with the arguments ansible-test gave. pip's settings (index,
certificates) come from pip's configuration files, as ansible-test passes no PIP_*
variables."""

import subprocess
import sys


def main() -> int:
    subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], check=True,
                   stdout=subprocess.DEVNULL)
    # get-pip.py's own options, which pip install does not know.
    own = ("--disable-pip-version-check", "--no-setuptools", "--no-wheel")
    args = [a for a in sys.argv[1:] if a not in own]
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
