"""The docs site (`python dev/docs.py site`) in a real browser: every sidebar page is built, loads in
headless Chromium from a loopback HTTP server without console errors or outside requests, and every
link that stays on the site (anchors included) resolves."""
import functools, importlib.util, json, re, threading, urllib.error, urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

spec = importlib.util.spec_from_file_location("docs", ROOT / "dev" / "docs.py")
docs = importlib.util.module_from_spec(spec); spec.loader.exec_module(docs)

class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    "Build the site into a temporary folder and serve it on 127.0.0.1 (a free port); yields (folder, base url)."
    out = docs.site(tmp_path_factory.mktemp("site") / "_site")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown(); srv.server_close()

def expected_pages() -> list[str]:
    "The HTML pages the sidebar promises, in order, named as the builder names them."
    proc = docs.processed()
    return [docs.page_name(n, docs.front_matter(json.loads((proc / n).read_text()))) for n in docs.sidebar_notebooks()]

def test_every_notebook_is_in_the_sidebar():
    nbs = ROOT / "nbs"
    missing = sorted({p.name for p in nbs.glob("[!_.]*.ipynb")} - set(docs.sidebar_notebooks()))
    assert not missing, f"add {missing} to website.sidebar.contents in nbs/_quarto.yml"

def test_every_page_in_chromium(served):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash dev/setup.sh` (it installs chromium with apt)")
    from playwright.sync_api import sync_playwright
    out, base = served
    pages = expected_pages()
    assert pages[0] == "index.html" or "index.html" in pages, "the sidebar must list index.ipynb"
    problems, ids, links = [], {}, set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context()
        def gate(route):  # only the loopback server may be asked for anything
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"): route.continue_()
            else: problems.append(f"request to a non-loopback host: {route.request.url}"); route.abort()
        ctx.route("**/*", gate)
        page = ctx.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(f"{page.url}: console error: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"{page.url}: page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"{page.url}: request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{page.url}: {r.status} for {r.url}"))
        for name in pages:
            resp = page.goto(base + name, wait_until="load")
            assert resp is not None and resp.status == 200, f"{name}: status {resp and resp.status}"
            side = page.eval_on_selector_all("#sidebar a", "as => as.map(a => a.getAttribute('href'))")
            assert side == pages, f"{name}: sidebar links {side} != {pages}"
            assert page.eval_on_selector_all("#sidebar a.active", "as => as.map(a => a.getAttribute('href'))") == [name]
            assert page.inner_text("h1.title").strip(), f"{name}: no title"
            # every figure the page's notebook saved is shown, and each image has loaded (a decoded, non-empty picture)
            imgs = page.eval_on_selector_all("main img", "es => es.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])")
            broken = [src for src, ok in imgs if not ok]
            assert not broken, f"{name}: images that did not load: {broken}"
            figures = sorted(f"{Path(name).stem}_files/{f.name}" for f in (out / f"{Path(name).stem}_files").glob("figure-*"))
            shown = {src for src, _ in imgs}
            assert all(f in shown for f in figures), f"{name}: figures not on the page: {[f for f in figures if f not in shown]}"
            ids[name] = set(page.eval_on_selector_all("[id]", "es => es.map(e => e.id)"))
            links |= {(name, h) for h in page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")}
            if name == "common.html":
                text = page.inner_text("main")
                assert "Where artifacts live" in page.inner_text("h2#where-artifacts-live")
                assert re.search(r"Path\('.*nanochat'\)", page.inner_text("main .cell-output")), "get_base_dir() output missing"
                assert page.query_selector("h3#get_base_dir"), "show_doc of get_base_dir not rendered"
                assert "nbdev_export" not in text and "#| " not in text, "a hidden cell or a directive leaked"
            if name == "index.html":
                assert page.query_selector("main table a[href='common.html']"), "index: the course table does not link common.html"
                assert imgs, "index: the pipeline map (a figure) is missing"
        browser.close()
    assert not problems, "\n".join(problems)
    # every link that stays on the site resolves, and its #anchor exists on the target page
    status = {}
    for src, href in sorted(links):
        if not href.startswith(base): continue
        url, frag = urldefrag(href)
        path = urlsplit(url).path.lstrip("/") or "index.html"
        if url not in status:
            try: status[url] = urllib.request.urlopen(url).status
            except urllib.error.HTTPError as e: status[url] = e.code
        assert status[url] == 200, f"{src}: broken link {href} ({status[url]})"
        if frag:
            assert path in ids, f"{src}: link {href} has an anchor into a page outside the sidebar"
            assert unquote(frag) in ids[path], f"{src}: link {href}: no id {frag!r} on {path}"
    assert any(href.startswith(base + "common.html") for _, href in links), "no page links common.html"

def test_outputs_render(tmp_path):
    "Images, HTML tables, streams and errors in outputs become HTML; echo: false hides the code; `\\r` rewrites a line."
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    cells = [{"cell_type": "code", "source": "#| echo: false\nsecret_source()", "outputs": [
                {"output_type": "display_data", "data": {"image/png": png, "text/plain": "<Figure>"}}]},
             {"cell_type": "code", "source": "df", "outputs": [
                {"output_type": "execute_result", "data": {"text/html": "<table><tr><td>42</td></tr></table>", "text/plain": "42"}}]},
             {"cell_type": "code", "source": "print('x')", "outputs": [
                {"output_type": "stream", "name": "stdout", "text": "hello ```\n"},
                {"output_type": "stream", "name": "stderr", "text": ["\r", "Loading:   0%| 0/21\r", "Loading: 100%| 21/21\n"]},
                {"output_type": "display_data", "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "m"},
                                                          "text/plain": "Loading weights:   0%|          | 0/35 [00:00<?, ?it/s]"}},
                {"output_type": "display_data", "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "w"},
                                                          "text/plain": "ChatWidget(0 messages)"}},
                {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["\x1b[31mTraceback boom\x1b[0m"]}]}]
    saved = []
    def save(data, ext): saved.append(data); (tmp_path / f"f.{ext}").write_bytes(data); return f"f.{ext}"
    md = "\n\n".join(docs.cell_markdown(c, save) for c in cells)
    assert "secret_source" not in md and saved and saved[0].startswith(b"\x89PNG")
    import subprocess
    html = subprocess.run(["pandoc", "-f", "markdown", "-t", "html5"], input=md, text=True, capture_output=True, check=True).stdout
    assert '<img src="f.png"' in html and "<td>42</td>" in html and "hello ```" in html
    assert "Traceback boom" in html and "\x1b" not in html
    assert "Loading: 100%| 21/21" in html and "0/21" not in html, "a progress bar shows only its last state, as in a terminal"
    assert "0/35" not in html and "ChatWidget(0 messages)" in html, "a progress-bar widget's stale 0% state is dropped, other widgets' text kept"
