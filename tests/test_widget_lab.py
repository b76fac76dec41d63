"""The notebook chat widget in a real JupyterLab: start Lab on loopback, open a notebook that builds
`ChatWidget` for a tiny GPT, run it, type into the widget, press Send, and see the reply appear."""
import json, os, socket, subprocess, sys, time
from pathlib import Path
import httpx, pytest
from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "nanochat-test-token"
CELLS = [
    "import torch; torch.set_num_threads(1)\n"
    "from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN\n"
    "from nanochat.gpt import GPT, GPTConfig\n"
    "from nanochat.widget import ChatWidget",
    "tok = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)})\n"
    "torch.manual_seed(0)\n"
    "model = GPT(GPTConfig(sequence_len=256, vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_kv_head=1, n_embd=32)).eval()\n"
    "ChatWidget(model, tok, max_tokens=40, seed=0)",  # seeded: a reply that ends at its first token would be empty
]

def free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.fixture
def lab(tmp_path):
    "JupyterLab on a free loopback port, serving a folder with chat.ipynb; its config and state kept in tmp_path."
    root = tmp_path / "root"; root.mkdir()
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c} for c in CELLS],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    (root / "chat.ipynb").write_text(json.dumps(nb))
    port, home = free_port(), tmp_path / "home"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "IPYTHONDIR": str(home / "ipython")}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={TOKEN}", "--allow-root", "--LabApp.extension_manager=readonly", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
                             f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
                             "--LabApp.news_url=", "--LabApp.expose_app_in_browser=True"],
                            env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None: pytest.fail(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/status?token={TOKEN}", timeout=1).status_code == 200: break
        except httpx.TransportError: pass
        time.sleep(0.1)
    else: pytest.fail("JupyterLab did not start within 60 s")
    yield url
    proc.terminate()
    try: proc.wait(timeout=15)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait()
    log.close()

def test_widget_chat_in_jupyterlab(lab):
    if not Path(CHROMIUM).exists(): pytest.fail(f"{CHROMIUM} is missing: run `bash dev/setup.sh` (it installs chromium with apt)")
    from playwright.sync_api import sync_playwright
    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        def gate(route):  # JupyterLab and the widget must work without leaving loopback
            if route.request.url.startswith(lab) or route.request.url.startswith(("data:", "blob:")): route.continue_()
            else: outside.append(route.request.url); route.abort()
        ctx.route("**/*", gate)
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{lab}/lab/tree/chat.ipynb?token={TOKEN}")
        # the notebook is open and its kernel is up, then run every cell through Lab's own command
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=60_000)
        page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                               " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
                               " && w.sessionContext.session.kernel.status === 'idle'; }", timeout=60_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        box = page.wait_for_selector(".nanochat-input input", timeout=60_000)
        box.fill("Hello, widget!")
        page.click(".nanochat-send")
        page.wait_for_function("() => { const m = document.querySelector('.nanochat-widget-log .nanochat-user');"
                               " return m && m.textContent === 'Hello, widget!'; }", timeout=30_000)
        page.wait_for_function("() => { const a = document.querySelector('.nanochat-widget-log .nanochat-assistant');"
                               " const s = document.querySelector('.nanochat-send');"
                               " return a && a.textContent.length > 0 && s && !s.disabled; }", timeout=60_000)
        reply = page.inner_text(".nanochat-widget-log .nanochat-assistant")
        assert len(reply) > 0 and page.input_value(".nanochat-input input") == ""
        # Clear empties the conversation
        page.click(".nanochat-clear")
        page.wait_for_function("!document.querySelector('.nanochat-widget-log .nanochat-msg')", timeout=30_000)
        browser.close()
    assert not errors, errors
    assert not outside, f"requests left loopback: {outside}"
