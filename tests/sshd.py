"""A throwaway OpenSSH server on 127.0.0.1 for the remote-bench test: real ssh, real scp, no mocks."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
ALIAS = "edgekit-loopback"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp: Path, alias: str = ALIAS, cpus: set[int] | None = None) -> tuple[subprocess.Popen, Path]:
    """Start sshd on a free loopback port; returns the process and an ssh config naming host `alias`. With `cpus`,
    sshd and everything it starts (the bench runners) are pinned to those cores."""
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.run([*keygen, "-f", str(tmp / "host_key")], check=True)
    subprocess.run([*keygen, "-f", str(tmp / "client_key")], check=True)
    shutil.copy(tmp / "client_key.pub", tmp / "authorized_keys")
    os.chmod(tmp / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation dir sshd insists on as root
    port = free_port()
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n"
        f"StrictModes no\nUsePAM no\nPidFile {tmp / 'sshd.pid'}\nSubsystem sftp internal-sftp\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "sshd.log", "w"),
                            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    config = tmp / "ssh_config"
    config.write_text(
        f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
        f"  IdentityFile {tmp / 'client_key'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {(tmp / 'sshd.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, config
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("sshd did not start listening")
