"""The labkit command as a user runs it: one-line errors, topic admin output, and `labkit up` start/stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil

from labkit.broker import free_port


def labkit(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_unreachable_broker_is_one_line_within_ten_seconds():
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = labkit("topics", "list", "--bootstrap", address)
    assert time.monotonic() - started < 12
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "labkit broker" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_one_line():
    result = labkit("config", "--web-port", "eighty")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "web_port" in result.stderr


def test_topics_create_list_describe(settings):
    flags = ["--bootstrap", settings.bootstrap_servers, "--requests-topic", settings.requests_topic,
             "--results-topic", settings.results_topic, "--dead-letter-topic", settings.dead_letter_topic]
    created = labkit("topics", "create", *flags)
    assert created.returncode == 0 and f"{settings.requests_topic}: created" in created.stdout
    again = labkit("topics", "create", *flags)
    assert f"{settings.requests_topic}: exists" in again.stdout
    listed = labkit("topics", "list", *flags)
    assert f"* {settings.results_topic}  (3 partitions)" in listed.stdout
    described = labkit("topics", "describe", *flags)
    rows = [line.split() for line in described.stdout.splitlines() if line.startswith(settings.requests_topic)]
    assert [row[1] for row in rows] == ["0", "1", "2"]


def test_up_serves_the_pipeline_and_ctrl_c_stops_everything(photos):
    web_port, broker_port = free_port(), free_port()
    env = {**os.environ, "LABKIT_MODEL": "test-tiny", "LABKIT_WEB_PORT": str(web_port),
           "LABKIT_BROKER_PORT": str(broker_port),
           "LABKIT_LOG_LEVEL": "WARNING"}  # readiness must not depend on INFO log lines
    env.pop("LABKIT_BOOTSTRAP", None)
    up = subprocess.Popen([sys.executable, "-m", "labkit", "up"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.monotonic() + 120
        for line in up.stdout:
            output.append(line)
            if "Press Ctrl-C" in line:
                break
            assert time.monotonic() < deadline and up.poll() is None, "".join(output)
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 3, children  # broker, processor, web
        request_id = httpx.post(f"http://127.0.0.1:{web_port}/api/images",
                                files={"file": ("cat.jpg", photos[0].read_bytes(), "image/jpeg")}).json()["id"]
        deadline = time.monotonic() + 30
        while (body := httpx.get(f"http://127.0.0.1:{web_port}/api/images/{request_id}").json())["status"] == "processing":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert body["status"] == "done"
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=30)
    assert up.returncode == 0, "".join(output) + rest
    assert "stopped." in rest
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {alive}"


def test_send_prints_labels_of_each_image(settings, start_processor, photos):
    start_processor()
    result = labkit("send", str(photos[0]), str(photos[1]), "--bootstrap", settings.bootstrap_servers,
                    "--requests-topic", settings.requests_topic, "--results-topic", settings.results_topic)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(photos[0])) and "%" in lines[0]


def test_lab_starts_jupyterlab_and_stops_it(tmp_path):
    (tmp_path / "notebooks").mkdir()
    env = {**os.environ, "LABKIT_MODEL": "test-tiny", "LABKIT_BROKER_PORT": str(free_port()),
           "LABKIT_JUPYTER_PORT": str(free_port()), "BROWSER": "true", "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    env.pop("LABKIT_BOOTSTRAP", None)
    lab = subprocess.Popen([sys.executable, "-m", "labkit", "lab", "--no-web", "--notebook-dir",
                            str(tmp_path / "notebooks")], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        for line in lab.stdout:
            output.append(line)
            if "Press Ctrl-C" in line:
                break
        assert any("00_quickstart" in line for line in output), "".join(output)
        children = psutil.Process(lab.pid).children(recursive=True)
        assert any("jupyterlab" in " ".join(c.cmdline()) for c in children)
        status = httpx.get(f"http://127.0.0.1:{env['LABKIT_JUPYTER_PORT']}/lab", follow_redirects=False)
        assert status.status_code in (200, 302, 403)  # JupyterLab answers (login page without the token)
    finally:
        lab.send_signal(signal.SIGTERM)
        rest, _ = lab.communicate(timeout=30)
    assert lab.returncode == 0, "".join(output) + rest
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive


def test_config_masks_the_api_token():
    result = subprocess.run([sys.executable, "-m", "labkit", "config"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "LABKIT_API_TOKEN": "very-secret"})
    assert result.returncode == 0 and "LABKIT_API_TOKEN=**********" in result.stdout
    assert "very-secret" not in result.stdout + result.stderr
