"""The examples as a user runs them: every notebook in examples/ executed headless by nbconvert
(Debian's /usr/bin/python3 kernel) against a real server, and `make run`'s script starting a
server, running examples/quickstart.py against it and going on serving.

The notebooks assert their own results (accuracy, AUC, RMSE, row counts), so a notebook whose
model is wrong fails here as well as one that raises.
"""
import os
import signal
import subprocess
import threading
import urllib.request

import nbformat
import pytest

from conftest import HEARTH, HearthServer, free_port, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples")
NOTEBOOKS = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".ipynb"))


def test_every_example_notebook_is_listed_here():
    # A new notebook is picked up by the parametrisation below; this guards against none.
    assert {"linear_learner.ipynb", "xgboost_tuning.ipynb", "sklearn_byo.ipynb",
            "batch_transform.ipynb"} <= set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_headless_against_the_server(server, tmp_path, name):
    env = dict(os.environ, HEARTH_ENDPOINT_URL=server.url,
               PYTHONPATH=os.path.join(ROOT, "python"), HEARTH_BIN=HEARTH,
               HEARTH_DATA_DIR=server.data_dir, PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)  # the kernel's inline backend, so figures become outputs
    proc = subprocess.run(
        ["/usr/bin/python3", "-m", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=600", "--output-dir", str(tmp_path),
         os.path.join(EXAMPLES, name)],
        capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]

    executed = nbformat.read(str(tmp_path / name), as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "a cell was not run"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # Each notebook draws at least one figure.
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"


def test_make_run_starts_the_server_runs_the_quickstart_and_keeps_serving(tmp_path):
    port = free_port()
    data_dir = tmp_path / "data"
    proc = subprocess.Popen([os.path.join(ROOT, "scripts", "run.sh"), HEARTH,
                             f"127.0.0.1:{port}", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("keeps serving" in line for line in lines) or proc.poll() is not None,
                 timeout=300, what="the quickstart to finish")
        out = "".join(lines)
        assert "--- the server keeps serving on" in out, out[-4000:]
        assert "Quickstart done:" in out
        for step in ("train (CreateTrainingJob to Completed", "deploy endpoint",
                     "one-row prediction", "batch transform of 3,000 rows"):
            assert step in out

        # The server still answers, and holds what the quickstart did.
        sm = HearthServer(str(data_dir), port).client("sagemaker")
        jobs = sm.list_training_jobs()["TrainingJobSummaries"]
        assert [j["TrainingJobStatus"] for j in jobs] == ["Completed"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    # SIGTERM stopped the server too.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)


def readme_quickstart_code():
    """The Python block of README.md's Quickstart section, as a user would paste it."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Quickstart"):]
    section = section[:section.index("\n## ", 1)]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_quickstart_works_as_written(server, tmp_path):
    code = readme_quickstart_code()
    assert 'hearth.Session("http://127.0.0.1:7070")' in code
    script = tmp_path / "quickstart.py"
    script.write_text(code.replace("http://127.0.0.1:7070", server.url))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), MPLBACKEND="Agg")
    proc = subprocess.run(["/usr/bin/python3", str(script)], capture_output=True, text=True,
                          env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "{'predictions': [{'score':" in proc.stdout
    assert "[20 rows x" in proc.stdout  # the tuner's DataFrame, one row per trial
    sm = server.client("sagemaker")
    assert [j["TransformJobStatus"] for j in sm.list_transform_jobs()["TransformJobSummaries"]] \
        == ["Completed"]
    assert sm.list_endpoints()["Endpoints"] == []
