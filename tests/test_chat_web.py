"""The chat server for real: `python -m nanochat.scripts.chat_web` in its own process on loopback, serving a
tiny GPT through the real Engine; streaming, limits, 32 concurrent clients, clients that hang up, and the
page in headless Chromium (desktop and phone width)."""
import asyncio, json, os, socket, subprocess, sys, time
from pathlib import Path
import httpx, pytest, torch
from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEQ_LEN = 2048
USER = {"role": "user", "content": "Hello there"}

def free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def tiny_checkpoint(base: Path):
    """A byte-level tokenizer and a 2-layer GPT saved as an SFT checkpoint under `base`. The special tokens'
    output rows are zero and the byte rows large, so greedy decoding (temperature 0) never ends a reply:
    a test can make a reply as long as it needs."""
    os.environ["NANOCHAT_BASE_DIR"] = str(base)
    from nanochat.tokenizer import Tokenizer, SPLIT_PATTERN
    from nanochat.gpt import GPT, GPTConfig
    from nanochat.checkpoint import save_checkpoint
    tok = Tokenizer(SPLIT_PATTERN, {bytes([i]): i for i in range(256)}); tok.save()
    cfg = GPTConfig(sequence_len=SEQ_LEN, vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_kv_head=1, n_embd=32)
    torch.manual_seed(0); model = GPT(cfg)
    with torch.no_grad():
        model.lm_head.weight.normal_(0, 1.0); model.lm_head.weight[256:] = 0
    save_checkpoint("sft", "d2", 1, model.state_dict(), {"config": cfg.__dict__})

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    "The real script on a free loopback port with 2 CPU workers; yields its base URL."
    base = tmp_path_factory.mktemp("base")
    old = os.environ.get("NANOCHAT_BASE_DIR")
    tiny_checkpoint(base)
    port = free_port()
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nanochat.scripts.chat_web", "--host", "127.0.0.1", "--port", str(port),
                             "--num-workers", "2", "--device-type", "cpu", "--max-tokens", "24"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None: pytest.fail(f"the server exited: {proc.stdout.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200: break
        except httpx.TransportError: time.sleep(0.1)
    else: pytest.fail("the server did not answer /health within 60 s")
    yield url
    proc.terminate(); proc.wait(timeout=10)
    if old is None: os.environ.pop("NANOCHAT_BASE_DIR", None)
    else: os.environ["NANOCHAT_BASE_DIR"] = old

def sse_events(lines) -> list:
    return [l[6:] for l in lines if l.startswith("data: ")]

def test_valid_chats_stream(server):
    page = httpx.get(server + "/")
    assert page.status_code == 200 and "<title>nanochat</title>" in page.text and "http" not in page.text.split("<script>")[1]
    with httpx.stream("POST", server + "/chat/completions", json={"messages": [USER], "max_tokens": 12, "temperature": 0}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(e) for e in sse_events(r.iter_lines())]
    assert events[-1]["done"] and events[-1]["tokens"] == 12 and events[-1]["finish_reason"] == "length"
    assert len(events) > 2 and all(e["part"] == "text" and isinstance(e["token"], str) for e in events[:-1])
    text = "".join(e["token"] for e in events[:-1])
    # OpenAI's protocol gives the same greedy text, streamed and not
    body = {"model": "x", "messages": [{"role": "system", "content": "Be brief."}, USER], "max_tokens": 12, "temperature": 0}
    plain = httpx.post(server + "/v1/chat/completions", json=body).json()
    assert plain["object"] == "chat.completion" and plain["choices"][0]["finish_reason"] == "length"
    with httpx.stream("POST", server + "/v1/chat/completions", json={**body, "stream": True}) as r:
        chunks = sse_events(r.iter_lines())
    assert chunks[-1] == "[DONE]"
    chunks = [json.loads(c) for c in chunks[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[-1]["choices"][0]["finish_reason"] == "length"
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert streamed == plain["choices"][0]["message"]["content"] and len(streamed) > 0
    # without the system message the greedy reply is the /chat/completions one
    again = httpx.post(server + "/v1/chat/completions", json={**body, "messages": [USER]}).json()
    assert again["choices"][0]["message"]["content"] == text

@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "not valid JSON"),
    (b'["a list"]', 400, "JSON object"),
    ({"messages": "hi"}, 422, "non-empty list"),
    ({"messages": [{"role": "user", "content": "x"}] * 501}, 413, "limit is 500"),
    ({"messages": [{"role": "user", "content": "x" * 8001}]}, 413, "limit is 8000"),
    ({"messages": [{"role": "user", "content": "x" * 7000}, {"role": "assistant", "content": "y" * 7000}] * 2 + [{"role": "user", "content": "z" * 7000}]}, 413, "35000 characters; the limit is 32000"),
    ({"messages": [{"role": "user", "content": "ab " * 1000}]}, 413, f"at most {SEQ_LEN}"),   # fits the character limit, not the context
    ({"messages": [USER], "temperature": 2.5}, 422, "temperature=2.5 is out of range"),
    ({"messages": [USER], "temperature": "hot"}, 422, "temperature must be a number"),
    ({"messages": [USER], "top_k": 0}, 422, "top_k=0 is out of range"),
    ({"messages": [USER], "top_k": 201}, 422, "top_k=201"),
    ({"messages": [USER], "max_tokens": 0}, 422, "max_tokens=0"),
    ({"messages": [USER], "max_tokens": 10**6}, 422, "max_tokens=1000000"),
    ({"messages": [USER, USER]}, 422, "alternate"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 422, "role"),
    ({"messages": [USER, {"role": "assistant", "content": "hi"}]}, 422, "last message"),
])
@pytest.mark.parametrize("path", ["/chat/completions", "/v1/chat/completions"])
def test_bad_requests_get_4xx_with_a_message(server, path, body, status, words):
    kw = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {"json": body}
    r = httpx.post(server + path, **kw)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"], r.json()

def test_32_concurrent_streams(server):
    before = httpx.get(server + "/stats").json()
    async def one(client, i):
        async with client.stream("POST", server + "/chat/completions",
                                 json={"messages": [{"role": "user", "content": f"Question {i}?"}], "max_tokens": 16, "seed": i}) as r:
            assert r.status_code == 200
            events = [json.loads(e) async for e in aiter_events(r)]
        assert not any("error" in e for e in events) and events[-1].get("done"), events[-3:]
        return events[-1]
    async def aiter_events(r):
        async for line in r.aiter_lines():
            if line.startswith("data: "): yield line[6:]
    async def main():
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(one(client, i) for i in range(32)))
    t0 = time.perf_counter()
    done = asyncio.run(main())
    assert len(done) == 32 and {d["worker"] for d in done} == {0, 1}, "both workers should have served"
    after = httpx.get(server + "/stats").json()
    assert after["served"] - before["served"] == 32 and after["busy"] == 0 and after["queue"] == 0, after
    print(f"32 concurrent streams in {time.perf_counter() - t0:.2f} s")

def test_disconnect_mid_stream_frees_the_worker(server):
    before = httpx.get(server + "/stats").json()
    long = {"messages": [USER], "max_tokens": 2000, "temperature": 0}      # greedy never ends: 2000 tokens if nobody stops it
    with httpx.Client(timeout=30) as c:
        for _ in range(2):                                                 # hang up on both workers
            with c.stream("POST", server + "/chat/completions", json=long) as r:
                for i, line in enumerate(l for l in r.iter_lines() if l.startswith("data: ")):
                    if i == 5: break                                       # leave mid-stream: the connection closes
            assert httpx.get(server + "/health").status_code == 200
    for _ in range(100):
        s = httpx.get(server + "/stats").json()
        if s["busy"] == 0 and s["served"] - before["served"] == 2: break
        time.sleep(0.1)
    else: pytest.fail(f"the workers were not freed after the clients left: {s}")
    assert s["tokens"] - before["tokens"] < 2 * 2000 // 2, f"generation went on after the disconnect: {s}"
    r = httpx.post(server + "/v1/chat/completions", json={"messages": [USER], "max_tokens": 5})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 5


# ---------- the page in Chromium ----------

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists(): pytest.fail(f"{CHROMIUM} is missing: run `bash dev/setup.sh` (it installs chromium with apt)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()

def open_page(browser, url, problems, **ctx):
    context = browser.new_context(**ctx)
    def gate(route):  # the page must not reach outside loopback
        if route.request.url.startswith(url) or route.request.url.startswith("data:"): route.continue_()
        else: problems.append(f"outside request: {route.request.url}"); route.abort()
    context.route("**/*", gate)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(url + "/")
    page.wait_for_selector("#input")
    return page

def reply_text(page) -> str: return page.inner_text(".msg.assistant >> nth=-1 >> .body")

def test_ui_streams_regenerates_and_edits(server, browser):
    problems = []
    page = open_page(browser, server, problems)
    page.fill("#temperature", "0")        # greedy never ends: a long reply we can watch arrive
    page.fill("#input", "Hello from Chromium")
    page.press("#input", "Enter")
    # streamed: part of the reply is on screen while the page still says it is streaming
    page.wait_for_function("document.body.dataset.state === 'streaming' && "
                           "document.querySelector('.msg.assistant .body').textContent.length > 0", timeout=30_000)
    page.wait_for_selector("body[data-state=idle]", timeout=30_000)
    first = reply_text(page)
    assert len(first) > 0 and page.inner_text(".msg.user").startswith("Hello from Chromium")
    # regenerate at temperature 1: a new sampled reply replaces the old one
    page.fill("#temperature", "1")
    page.click(".regenerate")
    page.wait_for_selector("body[data-state=idle]", timeout=30_000)
    assert page.locator(".msg.assistant").count() == 1 and reply_text(page) != first
    # edit the user message: the conversation is cut there and answered again
    page.click(".msg.user .edit")
    page.fill(".edit-box", "An edited question")
    page.click(".save-edit")
    page.wait_for_selector("body[data-state=idle]", timeout=30_000)
    assert page.locator(".msg.user").count() == 1 and page.inner_text(".msg.user").startswith("An edited question")
    assert page.locator(".msg.assistant").count() == 1 and len(reply_text(page)) > 0
    # a second turn, then a new conversation empties the page
    page.fill("#input", "And another"); page.press("#input", "Enter")
    page.wait_for_selector("body[data-state=idle]", timeout=30_000)
    assert page.locator(".msg.assistant").count() == 2
    page.click("#new-chat")
    assert page.locator(".msg").count() == 0
    assert not problems, problems

def test_ui_shows_tool_calls_distinctly(server, browser):
    "A reply with a calculator call (served by a route standing in for the model) shows the call and its result apart."
    problems = []
    page = open_page(browser, server, problems)
    events = [{"token": "It is ", "part": "text"}, {"token": "12*", "part": "python"}, {"token": "34", "part": "python"},
              {"token": "408", "part": "python_output"}, {"token": ", so 408.", "part": "text"}, {"done": True}]
    page.route("**/chat/completions", lambda route: route.fulfill(status=200, content_type="text/event-stream",
               body="".join(f"data: {json.dumps(e)}\n\n" for e in events)))
    page.fill("#input", "What is 12*34?"); page.press("#input", "Enter")
    page.wait_for_selector("body[data-state=idle] .msg.assistant .tool-output", timeout=30_000)
    assert page.inner_text(".msg.assistant .tool-call").endswith("12*34")
    assert page.inner_text(".msg.assistant .tool-output").endswith("408")
    styles = page.eval_on_selector_all(".msg.assistant .body > span", "es => es.map(e => getComputedStyle(e).fontFamily)")
    assert styles[0] != styles[1], "a tool call should not look like prose"
    assert not problems, problems

def test_ui_at_phone_width(server, browser):
    problems = []
    page = open_page(browser, server, problems, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.fill("#input", "x" * 400)            # one unbreakable word must wrap, not widen the page
    page.press("#input", "Enter")
    page.wait_for_selector("body[data-state=idle] .msg.assistant", timeout=30_000)
    box = page.locator("#input").bounding_box()
    send = page.locator("#send").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844 and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert send["x"] + send["width"] <= 390 and send["y"] + send["height"] <= 844, send
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("Math.max(...[...document.querySelectorAll('.msg')].map(e => e.getBoundingClientRect().right))") <= 390
    assert page.locator("#new-chat").is_visible()
    assert not problems, problems
