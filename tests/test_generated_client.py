"""The Python client generated from ``/openapi.json`` (clients/python): never out of date, and it works end to end.

``bash scripts/generate_client.sh`` writes it with openapi-python-client, as a phone-app team would
from the published contract. Here: regenerating from the current app gives exactly the committed
files, and against a running stack (a real broker, a test-tiny CLIP processor) the generated client
uploads a photo, polls its result until CLIP's is there, and parses a documented error as its
``Problem`` model. The package is imported from clients/python, not installed, as lesson 15 does.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from test_resilience import _wait_until

from labkit.samples import sample_photos

REPO = Path(__file__).resolve().parents[1]
CLIENTS = REPO / "clients"
REGENERATE = "bash scripts/generate_client.sh"
#: What running or linting the client leaves beside it (ignored by git), not what the generator writes.
NOT_GENERATED = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}

sys.path.insert(0, str(CLIENTS / "python"))  # `import labkit_api_client`, as lesson 15 does


def _written(root: Path) -> dict[str, bytes]:
    """The generator's output under ``root`` (``openapi.json`` and ``python/``): relative path → bytes."""
    files = [root / "openapi.json", *(root / "python").rglob("*")]
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in files
        if path.is_file() and not NOT_GENERATED & set(path.relative_to(root).parts)
    }


@pytest.mark.skipif(sys.version_info < (3, 11), reason="openapi-python-client needs Python 3.11 or newer")
def test_the_committed_client_is_exactly_what_the_generator_writes_from_the_current_app(tmp_path):
    script = subprocess.run(
        ["bash", "scripts/generate_client.sh", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert script.returncode == 0, f"`{REGENERATE}` failed:\n{script.stdout}\n{script.stderr}"
    fresh, committed = _written(tmp_path), _written(CLIENTS)
    assert len(fresh) > 50 and "python/labkit_api_client/api/uploads/upload_image.py" in fresh
    differ = sorted(path for path in fresh.keys() | committed.keys() if fresh.get(path) != committed.get(path))
    if differ:
        first = differ[0]
        diff = difflib.unified_diff(
            committed.get(first, b"").decode().splitlines(),
            fresh.get(first, b"").decode().splitlines(),
            f"clients/{first} (committed)",
            f"clients/{first} (generated now)",
            lineterm="",
        )
        pytest.fail(
            f"clients/ is not what the generator writes from the current app: run `{REGENERATE}` and commit "
            f"clients/. Differing files ({len(differ)}): {', '.join(differ[:10])}\n" + "\n".join(list(diff)[:60])
        )


def test_the_generated_client_uploads_a_photo_and_reads_its_clip_result(web):
    from labkit_api_client import Client
    from labkit_api_client.api.uploads import get_results as result
    from labkit_api_client.api.uploads import upload_image as upload
    from labkit_api_client.models import ImageStatus, ImageUpload, LabelScore, Problem, TaskResult, UploadAccepted
    from labkit_api_client.types import File

    photo = sample_photos()["kitten"]
    # raise_on_unexpected_status: an answer the document does not promise raises instead of parsing to None.
    with Client(base_url=web.url, raise_on_unexpected_status=True, timeout=httpx.Timeout(30)) as client:
        with photo.open("rb") as image:
            form = ImageUpload(file=File(payload=image, file_name=photo.name, mime_type="image/jpeg"), tasks=["clip"])
            accepted = upload.sync(client=client, body=form)
        assert isinstance(accepted, UploadAccepted), accepted
        assert accepted.status == "processing" and accepted.tasks == ["clip"], accepted
        assert accepted.result_url.endswith(f"/api/images/{accepted.request_id}") and accepted.offset >= 0

        def answered() -> ImageStatus | None:
            polled = result.sync(accepted.request_id, client=client)
            assert isinstance(polled, ImageStatus), polled
            return polled if polled.status != "processing" else None

        status = _wait_until(answered, "CLIP's result through the generated client", timeout=30)
        clip = status.tasks["clip"]
        assert status.status == "done" and isinstance(clip, TaskResult) and clip.status == "done", status
        assert clip.request_id == accepted.request_id and clip.task == "clip"
        assert status.labels and all(isinstance(label, LabelScore) for label in status.labels)
        assert [label.label for label in status.labels] == [label["label"] for label in clip.answer["labels"]]
        assert sum(label.score for label in status.labels) <= 1.0001
        # The typed objects hold everything the server answered: back to JSON, they are its answer.
        assert status.to_dict() == httpx.get(f"{web.url}/api/images/{accepted.request_id}").json()

        # Errors are the document's one model, parsed: an id this app never saw (404), one that is no id (422),
        # and a file that is no image (415).
        missing = result.sync_detailed("0" * 32, client=client)
        assert missing.status_code == 404 and isinstance(missing.parsed, Problem), missing
        assert "upload it again" in missing.parsed.detail
        malformed = result.sync_detailed("not-an-id", client=client)
        assert malformed.status_code == 422 and isinstance(malformed.parsed, Problem), malformed
        assert "request_id" in malformed.parsed.detail
        pdf = File(payload=BytesIO(b"%PDF-1.7 not an image"), file_name="report.pdf", mime_type="application/pdf")
        refused = upload.sync_detailed(client=client, body=ImageUpload(file=pdf))
        assert refused.status_code == 415 and isinstance(refused.parsed, Problem), refused
        assert "JPEG, PNG, WebP or GIF" in refused.parsed.detail
