"""core.processes: a zombie or a reused pid is not the process that was started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import processes, runs
from tests.conftest import fake_run


def test_a_zombie_worker_is_not_alive(workspace):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # never waited for: stays a zombie
    deadline = time.time() + 10
    while time.time() < deadline:
        stat = Path(f"/proc/{zombie.pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.02)
    else:
        pytest.skip("the child did not become a zombie")
    os.kill(zombie.pid, 0)  # signal 0 still reaches it...
    assert not processes.process_alive(zombie.pid)  # ...but it is not running anything
    path = fake_run(workspace, state="running", pid=zombie.pid, heartbeat=time.time())
    assert runs.read_status(path)["state"] == "interrupted"
    zombie.wait()
