"""The chat server for real: `python -m nanochat.scripts.chat_web` in its own process on loopback, serving a
tiny GPT through the real Engine; streaming, limits, 32 concurrent clients, clients that hang up, and the
page in headless Chromium (desktop and phone width)."""
import asyncio, json, os, select, socket, subprocess, sys, threading, time
from pathlib import Path
import httpx, pytest, torch
from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEQ_LEN = 2048
BODY_TIMEOUT = 3       # seconds the test server gives a client to send its body
LOG = {}               # the server's output file, read by the last server test
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

HTTP = httpx.Client(timeout=30)   # one client for the many small requests below: a new one costs ~50 ms (its TLS context)

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    "The real script on a free loopback port with 2 CPU workers; yields its base URL."
    base = tmp_path_factory.mktemp("base")
    old = os.environ.get("NANOCHAT_BASE_DIR")
    tiny_checkpoint(base)
    port = free_port()
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base), "OMP_NUM_THREADS": "1"}
    LOG["path"] = base / "server.log"
    log = open(LOG["path"], "w")   # a file, not a pipe: nobody reads a pipe while the server runs, and a full one would block it
    proc = subprocess.Popen([sys.executable, "-m", "nanochat.scripts.chat_web", "--host", "127.0.0.1", "--port", str(port),
                             "--num-workers", "2", "--device-type", "cpu", "--max-tokens", "24", "--body-timeout", str(BODY_TIMEOUT)],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None: pytest.fail(f"the server exited: {LOG['path'].read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200: break
        except httpx.TransportError: time.sleep(0.1)
    else: pytest.fail("the server did not answer /health within 60 s")
    yield url
    HTTP.close()   # its kept-alive connection, else an unclosed socket warns after pytest's summary line
    proc.terminate(); proc.wait(timeout=10); log.close()
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

def with_fields(text: bytes) -> bytes:
    "A valid conversation plus raw JSON fields, for values `json.dumps` will not write (NaN, Infinity)."
    return b'{"messages": [{"role": "user", "content": "Hello there"}], ' + text + b"}"

def chunked(total: int, piece=2**16):
    "A body of `total` bytes sent with chunked transfer encoding (no Content-Length): httpx does that for a generator."
    return lambda: (b" " * piece for _ in range(total // piece))

MB10 = b'{"messages": [{"role": "user", "content": "' + b"x" * 10 * 2**20 + b'"}]}'
ASSISTANT = {"role": "assistant", "content": "hi"}
BAD = [  # (id, body: a dict sent as JSON, raw bytes, or a chunked body, status, words the message must contain)
    # not JSON, or not a JSON object
    ("bad-json", b"{not json", 400, "not valid JSON"),
    ("empty-body", b"", 400, "not valid JSON"),
    ("trailing-garbage", b'{"messages": []} x', 400, "Extra data"),
    ("raw-nul-byte", b'{"messages": [{"role": "user", "content": "a\x00b"}]}', 400, "Invalid control character"),
    ("invalid-utf8", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', 400, "not UTF-8"),
    ("json-list", b'["a list"]', 400, "JSON object"),
    ("json-null", b"null", 400, "JSON object"),
    ("nested-100k-deep", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("5000-digit-number", with_fields(b'"seed": 1' + b"0" * 5000), 400, "4300 digits"),
    # too large
    ("10MB-content-length", MB10, 413, f"the body is {len(MB10)} bytes (Content-Length); the limit is 1048576"),
    ("10MB-chunked", chunked(10 * 2**20), 413, "the body passed 1048576 bytes"),
    ("10000-messages", {"messages": [USER, ASSISTANT] * 5000}, 413, "10000 messages; the limit is 500"),
    ("501-messages", {"messages": [{"role": "user", "content": "x"}] * 501}, 413, "limit is 500"),
    ("long-message", {"messages": [{"role": "user", "content": "x" * 8001}]}, 413, "messages[0] has 8001 characters; the limit is 8000"),
    ("long-conversation", {"messages": [{"role": "user", "content": "x" * 7000}, {"role": "assistant", "content": "y" * 7000}] * 2
                           + [{"role": "user", "content": "z" * 7000}]}, 413, "35000 characters; the limit is 32000"),
    ("past-the-context", {"messages": [{"role": "user", "content": "ab " * 1000}]}, 413, f"at most {SEQ_LEN}"),  # fits the characters, not the context
    # wrong types and shapes
    ("messages-string", {"messages": "hi"}, 422, "messages must be a non-empty list"),
    ("messages-object", {"messages": USER}, 422, "messages must be a non-empty list"),
    ("messages-empty", {"messages": []}, 422, "messages must be a non-empty list"),
    ("messages-missing", {"prompt": "hi"}, 422, "messages must be a non-empty list"),
    ("message-a-string", {"messages": ["hi"]}, 422, "messages[0] must be an object"),
    ("role-unknown", {"messages": [{"role": "robot", "content": "hi"}]}, 422, "messages[0] has role 'robot'"),
    ("role-tool", {"messages": [USER, {"role": "tool", "content": "42"}]}, 422, "messages[1] has role 'tool'"),
    ("role-missing", {"messages": [{"content": "hi"}]}, 422, "messages[0] has role None"),
    ("role-a-list", {"messages": [{"role": ["user"], "content": "hi"}]}, 422, "messages[0] has role ['user']"),
    ("content-missing", {"messages": [{"role": "user"}]}, 422, "messages[0].content must be a string"),
    ("content-a-number", {"messages": [{"role": "user", "content": 42}]}, 422, "messages[0].content must be a string"),
    ("content-image-part", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 422, "messages[0].content"),
    ("user-tool-parts", {"messages": [{"role": "user", "content": [{"type": "python", "text": "1+1"}]}]}, 422, "messages[0].content"),
    ("nul-character", {"messages": [{"role": "user", "content": "a\x00b"}]}, 422, "messages[0].content has a NUL character"),
    ("lone-surrogate", b'{"messages": [{"role": "user", "content": "hi \\ud800"}]}', 422, "messages[0].content has a lone surrogate"),
    # the conversation's shape
    ("two-users-in-a-row", {"messages": [USER, USER]}, 422, "alternate"),
    ("ends-with-assistant", {"messages": [USER, ASSISTANT]}, 422, "last message"),
    ("system-only", {"messages": [{"role": "system", "content": "Be brief."}]}, 422, "last message"),
    ("system-in-the-middle", {"messages": [USER, ASSISTANT, {"role": "system", "content": "x"}, USER]}, 422, "role 'system' where 'user' was expected"),
    ("assistant-first", {"messages": [ASSISTANT, USER]}, 422, "role 'assistant' where 'user' was expected"),
    # sampling fields: wrong types, out of range, NaN and Infinity (which Python's json reads)
    ("temperature-2.5", {"messages": [USER], "temperature": 2.5}, 422, "temperature=2.5 is out of range"),
    ("temperature-negative", {"messages": [USER], "temperature": -1}, 422, "temperature=-1 is out of range"),
    ("temperature-1e308", {"messages": [USER], "temperature": 1e308}, 422, "temperature=1e+308 is out of range"),
    ("temperature-NaN", with_fields(b'"temperature": NaN'), 422, "temperature=nan is out of range"),
    ("temperature-string", {"messages": [USER], "temperature": "hot"}, 422, "temperature must be a number"),
    ("temperature-bool", {"messages": [USER], "temperature": True}, 422, "temperature must be a number"),
    ("top_k-0", {"messages": [USER], "top_k": 0}, 422, "top_k=0 is out of range"),
    ("top_k-201", {"messages": [USER], "top_k": 201}, 422, "top_k=201"),
    ("top_k-fraction", {"messages": [USER], "top_k": 2.5}, 422, "top_k must be an integer"),
    ("top_k-list", {"messages": [USER], "top_k": [5]}, 422, "top_k must be an integer"),
    ("max_tokens-0", {"messages": [USER], "max_tokens": 0}, 422, "max_tokens=0"),
    ("max_tokens-negative", {"messages": [USER], "max_tokens": -5}, 422, "max_tokens=-5 is out of range"),
    ("max_tokens-huge", {"messages": [USER], "max_tokens": 10**6}, 422, "max_tokens=1000000"),
    ("max_tokens-1e300", {"messages": [USER], "max_tokens": 1e300}, 422, "max_tokens=1e+300 is out of range"),
    ("max_tokens-Infinity", with_fields(b'"max_tokens": Infinity'), 422, "max_tokens=inf is out of range"),
    ("max_tokens-NaN", with_fields(b'"max_tokens": NaN'), 422, "max_tokens=nan is out of range"),
    ("max_tokens-string", {"messages": [USER], "max_tokens": "10"}, 422, "max_tokens must be an integer"),
    ("seed-huge", {"messages": [USER], "seed": 10**30}, 422, "seed=1000000000000000000000000000000 is out of range"),
    ("seed-negative", {"messages": [USER], "seed": -1}, 422, "seed=-1 is out of range"),
    ("seed-string", {"messages": [USER], "seed": "abc"}, 422, "seed must be an integer"),
    ("stream-string", {"messages": [USER], "stream": "yes"}, 422, "stream must be true or false, got 'yes'"),
    ("stream-number", {"messages": [USER], "stream": 0}, 422, "stream must be true or false, got 0"),
]
PATHS = ["/chat/completions", "/v1/chat/completions"]


def stats(url) -> dict: return HTTP.get(url + "/stats").json()

@pytest.mark.parametrize("body, status, words", [pytest.param(*case[1:], id=case[0]) for case in BAD])
@pytest.mark.parametrize("path", PATHS)
def test_bad_requests_get_4xx_with_a_message(server, path, body, status, words):
    before = stats(server)
    if isinstance(body, dict): kw = {"json": body}
    else: kw = {"content": body if isinstance(body, bytes) else body(), "headers": {"content-type": "application/json"}}
    r = HTTP.post(server + path, **kw)
    assert r.status_code == status, r.text[:300]
    assert words in r.json()["error"]["message"], r.json()
    after = stats(server)   # refused before a worker was borrowed
    assert after["served"] == before["served"] and after["busy"] == 0, after

def test_wrong_paths_and_methods_get_4xx_with_a_message(server):
    r = HTTP.get(server + "/chat/completions")
    assert r.status_code == 405 and "GET is not allowed on /chat/completions" in r.json()["error"]["message"]
    r = HTTP.post(server + "/v1/completions", json={"prompt": "hi"})
    assert r.status_code == 404 and "there is no '/v1/completions'" in r.json()["error"]["message"]
    assert "POST /v1/chat/completions" in r.json()["error"]["message"]   # it says where to go instead

def raw_request(url, path, body: bytes, length=None) -> socket.socket:
    "A POST written on a bare socket, so a test can stall it, drip it or hang up on it."
    s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=15)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n")
    s.sendall(head.encode() + body)
    return s

def read_until_closed(s) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test).
    A reset ends it too: a server that closes a socket with the client's unread bytes in it makes the kernel send RST,
    which can overtake the 408 on its way to a client that is still dripping."""
    out = b""
    try:
        while chunk := s.recv(65536): out += chunk
    except ConnectionResetError: out += b"<reset>"
    return out

def test_slow_loris_gets_408_and_holds_no_worker(server):
    """Four clients (more than the 2 workers) send headers and part of a body, then stall or drip a byte every 0.3 s.
    Meanwhile a normal request is answered; each slow one gets a 408 once the body timeout passes, and its connection is closed."""
    before, t0 = stats(server), time.monotonic()
    slow = [raw_request(server, path, b'{"messages": [', length=100_000) for path in PATHS for _ in range(2)]
    stop = threading.Event()
    def drip(s):
        while not stop.wait(0.3):
            try: s.sendall(b" ")         # valid JSON whitespace: the body keeps coming, never completes
            except OSError: return
    drips = [threading.Thread(target=drip, args=(s,), daemon=True) for s in slow[::2]]
    for t in drips: t.start()
    r = httpx.post(server + "/v1/chat/completions", json={"messages": [USER], "max_tokens": 4}, timeout=30)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
    assert select.select(slow, [], [], 0)[0] == [], "the slow clients were answered before the normal one: the test proves nothing"
    assert (s := stats(server))["busy"] == 0 and s["queue"] == 0, s
    try: replies = [read_until_closed(s) for s in slow]
    finally: stop.set(); [s.close() for s in slow]
    waited = time.monotonic() - t0
    for i, reply in enumerate(replies):
        if i % 2 == 0 and reply.endswith(b"<reset>"):   # a dripping client, reset: it may have lost the 408, not the close
            assert reply == b"<reset>" or reply.startswith(b"HTTP/1.1 408"), reply[:200]; continue
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["message"].startswith(f"the body was not complete after {BODY_TIMEOUT:g} s")
    assert BODY_TIMEOUT <= waited < BODY_TIMEOUT + 5, waited
    assert stats(server)["served"] == before["served"] + 1

def test_client_that_leaves_mid_body(server):
    "A Content-Length of 1000, ten bytes, then the client is gone: no worker is taken and the server logs no error."
    before = stats(server)
    for path in PATHS: raw_request(server, path, b'{"messages"', length=1000).close()
    time.sleep(0.3)
    assert stats(server) == before

def wait_for_stats(url, ok, seconds=10) -> dict:
    for _ in range(int(seconds / 0.05)):
        if ok(s := stats(url)): return s
        time.sleep(0.05)
    pytest.fail(f"the pool never reached the expected state: {s}")

@pytest.mark.parametrize("path, stream", [("/chat/completions", True), ("/v1/chat/completions", True), ("/v1/chat/completions", False)])
def test_hang_up_frees_the_worker(server, path, stream):
    "A client asks for 2000 greedy tokens and closes its socket after the first event (or, not streaming, once generation began)."
    before = stats(server)
    s = raw_request(server, path, json.dumps({"messages": [USER], "max_tokens": 2000, "temperature": 0, "stream": stream}).encode())
    if stream:
        got = b""
        while b"\ndata: " not in got: got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
    else: wait_for_stats(server, lambda st: st["busy"] == 1)
    s.close()
    after = wait_for_stats(server, lambda st: st["busy"] == 0 and st["served"] == before["served"] + 1)
    assert after["tokens"] - before["tokens"] < 2000, f"generation went on after the hang-up: {after}"

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



def test_healthy_after_the_abuse(server):
    "After every test above: a normal request is answered, the pool is full and idle, and the server logged no exception (so sent no 500)."
    r = httpx.post(server + "/v1/chat/completions", json={"messages": [USER], "max_tokens": 5}, timeout=30)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 5
    health, s = httpx.get(server + "/health").json(), stats(server)
    assert health["idle"] == health["workers"] == 2 and (s["busy"], s["idle"], s["queue"]) == (0, 2, 0), (health, s)
    log = LOG["path"].read_text()
    assert "Traceback" not in log and "Exception" not in log, log[-3000:]


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
    # a refused request shows what was sent (the console only shows the status)
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} from {r.url}, sent {r.request.post_data!r:.800}"))
    page.goto(url + "/")
    page.wait_for_selector("#input")
    return page

def reply_text(page) -> str: return page.inner_text(".msg.assistant >> nth=-1 >> .body")

def test_ui_streams_regenerates_and_edits(server, browser):
    problems = []
    page = open_page(browser, server, problems)
    page.fill("#temperature", "0")        # greedy never ends: a long reply we can watch arrive
    page.fill("#input", "Hello from Chromium")
    # streamed: part of the reply is on screen while the page still says it is streaming. A DOM observer records it
    # (polling for that state could miss it on a fast machine: the whole reply may stream between two polls)
    page.evaluate("""window.sawStreaming = false; new MutationObserver(() => {
        const b = document.querySelector('.msg.assistant .body');
        if (document.body.dataset.state === 'streaming' && b && b.textContent.length > 0) window.sawStreaming = true;
    }).observe(document.body, {attributes: true, childList: true, subtree: true, characterData: true})""")
    page.press("#input", "Enter")
    page.wait_for_function("window.sawStreaming === true", timeout=30_000)
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
