"""A throwaway Redis server of a test's own that insists on a password, over TCP, a Unix socket
and TLS (a CA and a server certificate made with openssl for 127.0.0.1), with an ACL user
`alice` too — so every credential form conveyor accepts is used against a real server."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from .servers import free_port


class SecureRedis:
    def __init__(self, directory: Path, password: str) -> None:
        self.dir = directory
        self.password = password
        self.port = free_port()
        self.tls_port = free_port()
        self.socket = directory / "redis.sock"
        self.ca = directory / "ca.crt"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self._certificates()
        self.proc = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--unixsocket", str(self.socket), "--unixsocketperm", "700"),
                *("--tls-port", str(self.tls_port), "--tls-auth-clients", "no"),
                *("--tls-cert-file", str(self.dir / "server.crt")),
                *("--tls-key-file", str(self.dir / "server.key")),
                *("--tls-ca-cert-file", str(self.ca)),
                *("--requirepass", self.password, "--save", "", "--appendonly", "no"),
                *("--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_and_add_alice()

    def _certificates(self) -> None:
        """A CA, and a server certificate it signs for the IP address 127.0.0.1."""
        d = self.dir

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

        openssl(
            *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=conveyor-test-ca", "-keyout", "ca.key", "-out", "ca.crt"),
        )
        openssl(
            *("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"),
            *("-keyout", "server.key", "-out", "server.csr"),
        )
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        openssl(
            *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
            *("-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt"),
        )

    def _wait_and_add_alice(self) -> None:
        import redis

        deadline = time.monotonic() + 30
        while True:
            client = redis.Redis(port=self.port, password=self.password)
            try:
                client.acl_setuser(
                    "alice",
                    enabled=True,
                    passwords=[f"+{self.password}"],
                    keys=["*"],
                    channels=["*"],
                    commands=["+@all"],
                )
                return
            except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
                assert time.monotonic() < deadline, "the secure redis did not start"
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
