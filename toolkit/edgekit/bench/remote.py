"""Run the bench runner on another machine over the system `ssh`/`scp`.

The system tools, not a Python SSH library, so that `~/.ssh/config`, agents, keys and ProxyJump all work as they
do for the user. Every remote command is one string built with `shlex.join`, so no target-file value reaches the
remote shell unquoted, and the host itself must match the target schema's strict pattern.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..config.target import HOST_PATTERN
from ..errors import EdgekitError
from ..runtime.registry import device_side_files

# The modules the device-side runner needs: numpy-only code, the runtime registry, and every runtime file that
# says it can travel (`Runtime.device_side`; torch_eager stays home).
RUNNER_MODULES = ("__init__.py", "fingerprint.py", "metrics.py", "slices.py", "landmarks.py", "schemes.py",
                  "outputs.py", "errors.py", "bench/__init__.py", "bench/protocol.py", "bench/reference.py",
                  "bench/runner.py", "runtime/__init__.py", "runtime/registry.py", "runtime/timing.py", "scan.py")


def runner_files() -> tuple[str, ...]:
    return (*RUNNER_MODULES, *device_side_files())
_REMOTE_DIR = re.compile(r"^/[A-Za-z0-9/._-]+$")


def runner_bundle(dest: Path) -> Path:
    """Copy the runner's modules into `dest/edgekit/...`; `PYTHONPATH=dest python -m edgekit.bench.runner` runs."""
    src = Path(__file__).resolve().parent.parent
    for rel in runner_files():
        out = dest / "edgekit" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, out)
    return dest


class Remote:
    def __init__(self, host: str, ssh_config: str | Path | None = None, python: str = "python3", timeout: float = 900):
        if not HOST_PATTERN.match(host):
            raise EdgekitError(f"bad host {host!r}: expected user@host or host[:port] (letters, digits, '.', '-', '_'; "
                               "starting with a letter or digit)")
        self.host, _, port = host.partition(":")
        self.port = port or None
        self.ssh_config = str(ssh_config) if ssh_config else None
        self.python, self.timeout = python, timeout
        for tool in ("ssh", "scp"):
            if shutil.which(tool) is None:
                raise EdgekitError(f"remote bench needs the system {tool!r} (OpenSSH client); install it")

    def _options(self, port_flag: str) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        if self.ssh_config:
            opts += ["-F", self.ssh_config]
        if self.port:
            opts += [port_flag, self.port]
        return opts

    def run(self, argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run `argv` on the host; the remote shell sees one fully quoted command line."""
        words = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()] + [shlex.join(argv)]
        line = " ".join(words)
        if cwd:
            line = f"cd {shlex.quote(cwd)} && {line}"
        proc = subprocess.run(["ssh", *self._options("-p"), "--", self.host, line], capture_output=True, text=True,
                              timeout=self.timeout)
        if check and proc.returncode != 0:
            raise EdgekitError(f"ssh {self.host}: {' '.join(argv[:3])}... exited {proc.returncode}: "
                               f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:] or ''}")
        return proc

    def put(self, paths: list[Path], remote_dir: str) -> None:
        if not _REMOTE_DIR.match(remote_dir):
            raise EdgekitError(f"refusing to copy to odd remote path {remote_dir!r}")
        # Absolute local paths: scp reads "name:rest" (a colon before the first slash) as a remote host.
        local = [str(Path(p).resolve()) for p in paths]
        proc = subprocess.run(["scp", "-q", "-r", *self._options("-P"), "--", *local,
                               f"{self.host}:{remote_dir}/"], capture_output=True, text=True, timeout=self.timeout)
        if proc.returncode != 0:
            raise EdgekitError(f"scp to {self.host}:{remote_dir} failed: {proc.stderr.strip()}")

    def workdir(self) -> str:
        """A fresh remote working folder (mktemp there), checked before anything uses it."""
        out = self.run(["mktemp", "-d", "-t", "edgekit-bench.XXXXXX"]).stdout.strip()
        if not _REMOTE_DIR.match(out):
            raise EdgekitError(f"ssh {self.host}: mktemp gave an odd path {out!r}")
        return out

    def upload_runner(self, remote_dir: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            self.put([runner_bundle(Path(tmp)) / "edgekit"], remote_dir)

    def cleanup(self, remote_dir: str) -> None:
        if _REMOTE_DIR.match(remote_dir) and "edgekit-bench." in remote_dir:
            self.run(["rm", "-rf", "--", remote_dir], check=False)
