"""Writes the lab's notebooks from the cell lists below (run: python notebooks/build_notebooks.py).

Keeping the source here means notebook diffs are reviewable Python, and no stale outputs are
ever committed: the .ipynb files are written without outputs.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

QUICKSTART = [
    new_markdown_cell("""# 00 · Quickstart: one photo through Kafka and CLIP

In this notebook you send a photo through the same pipeline the web app uses and read the
result as a table. Nothing here is notebook-only code: every call is the `labkit` package
that the services run.

```
 you ──► image-requests ──► processor (CLIP) ──► image-results ──► you
        (Kafka topic)        consumer group        (Kafka topic)
```

1. **`ensure_pipeline()`** finds a running Kafka broker and processor (for example the ones
   `labkit lab` started) or starts what is missing.
2. **`LabClient`** produces your image to the `image-requests` topic, keyed by a new request id,
   and listens on `image-results` for the answer with the same id.
"""),
    new_code_cell("""import labkit

settings = labkit.load_settings()          # LABKIT_* environment variables, or the defaults
pipeline = labkit.ensure_pipeline(settings)
print("Kafka:", settings.bootstrap_servers)
print("started here:", [c.name for c in pipeline.children] + (["broker"] if pipeline.broker else []) or "nothing (reused)")"""),
    new_markdown_cell("""## Send one photo

`classify` = `submit` (produce the record and wait for the broker's acknowledgement) +
`wait` (block until the result with the same request id arrives)."""),
    new_code_cell("""from IPython.display import Image, display
from labkit.samples import sample_photos

photos = sample_photos()                   # {label: path} of the photos that ship with labkit
lab = labkit.LabClient(settings)
display(Image(photos["kitten"], width=160))
result = lab.classify(photos["kitten"])
print(result.status, "by", result.processor, "in", result.timings_ms.total, "ms")
assert result.status == "ok" and len(result.labels) == settings.top_k"""),
    new_markdown_cell("""The result is JSON on the `image-results` topic. Its `labels` are the top
candidates with softmax probabilities, like *"Photo of a kitten: 89.5%"*. As a pandas table:"""),
    new_code_cell("""import pandas as pd

top = pd.DataFrame([s.model_dump() for s in result.labels])
top["percent"] = (top["score"] * 100).round(1)
assert top["score"].is_monotonic_decreasing
top"""),
    new_code_cell("""if settings.uses_test_model:
    print("This is the random test model (LABKIT_MODEL=test-tiny): its labels are meaningless noise.\\n"
          "With real weights (LABKIT_MODEL=ViT-B-32, the default) the kitten scores 'kitten' or 'cat'.")
else:
    print("Model:", result.model)"""),
    new_markdown_cell("""## Several photos, and where the time goes

Each request is independent: they are spread over the topic's partitions by key and the
processor scores them in small batches. `timings_ms` tells you how long each one waited in
Kafka (`queued`), was decoded, and was run through CLIP."""),
    new_code_cell("""for name in ["dog", "pizza", "pyramids"]:
    lab.classify(photos[name])
frame = lab.results_frame()
assert len(frame) == 4 and (frame["status"] == "ok").all()  # the kitten + these three
frame[["file", "top label", "probability", "total ms", "inference ms"]]"""),
    new_markdown_cell("""## Your own labels

CLIP is *zero-shot*: the candidate labels are just text, so you can ask your own question.
The probabilities are relative to the candidates you give (they always sum to 100 %)."""),
    new_code_cell("""own = lab.classify(photos["dog"], labels=["dog", "cat", "teapot", "a bowl of soup"])
assert sorted(s.label for s in own.labels) == ["a bowl of soup", "cat", "dog", "teapot"]
pd.DataFrame([s.model_dump() for s in own.labels])"""),
    new_markdown_cell("""## Try it yourself

Upload your own photos with the widget below: each is sent to Kafka at once and the table
fills in as results arrive (it refreshes from a background thread, so the notebook stays
usable). Then open the web app (`labkit up`, http://localhost:8080) and see the same pipeline
behind a browser."""),
    new_code_cell("""from labkit.widgets import LiveResults

live = LiveResults(lab)
live"""),
    new_markdown_cell("When you are done, stop what this notebook started (a broker or processor that `labkit lab` runs keeps running)."),
    new_code_cell("""live.close()
lab.close()
pipeline.stop()"""),
]


def write(name: str, cells: list) -> None:
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbformat.write(notebook, HERE / name)


if __name__ == "__main__":
    write("00_quickstart.ipynb", QUICKSTART)
