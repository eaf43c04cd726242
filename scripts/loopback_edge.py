"""A release `periodic-edge` on a free loopback port for the benchmark scripts: its own data
folder, a write and a read token of one tenant, stopped by `stop()`. Standard library only."""

import subprocess
import sys
import time
import urllib.request


class LoopbackEdge:
    """A release periodic-edge on a free loopback port with its own data and tokens."""

    def __init__(self, binary, folder):
        self.binary = binary
        tokens = folder / "tokens.json"
        self.write_token = self._token(tokens, "write")
        self.read_token = self._token(tokens, "read")
        address_file = folder / "edge.addr"
        self.process = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--data", folder / "edge-data", "--tokens", tokens,
             "--addr-file", address_file, "--analysis-cache-mib", "8192"],
            stdout=subprocess.DEVNULL, stderr=open(folder / "edge.log", "ab"))
        deadline = time.monotonic() + 60
        while not (address_file.exists() and address_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit("periodic-edge did not start")
            time.sleep(0.05)
        self.url = "http://" + address_file.read_text().strip()

    def _token(self, tokens, role):
        completed = subprocess.run([self.binary, "token", "create", "--tokens", tokens, "--tenant", "bench", "--role", role],
                                   capture_output=True, text=True, check=True)
        return completed.stdout.strip()

    def metric(self, prefix):
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(prefix):
                    return float(line.split()[-1])
        return 0.0

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
