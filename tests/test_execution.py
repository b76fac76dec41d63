"The sandbox under hostile programs: each is contained, reported as a failure with a reason, and the host is unharmed."
import os, socket, resource, threading, time, textwrap
import pytest
from nanochat.execution import execute_code

def run(code, **kw): return execute_code(textwrap.dedent(code), **kw)
def host_rss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # high-water mark, KB on Linux

HUMANEVAL = '''
def below_zero(ops: list[int]) -> bool:
    "True if a running balance starting at 0 ever drops below zero."
    balance = 0
    for op in ops:
        balance += op
        if balance < 0: return True
    return False

def check(candidate):
    assert candidate([]) is False
    assert candidate([1, 2, -3, 1, 2, -3]) is False
    assert candidate([1, 2, -4, 5, 6]) is True
    assert candidate([1, -1, 2, -2, 5, -5, 4, -5]) is True

check(below_zero)
'''

def test_normal_programs():
    r = run(HUMANEVAL + "print('passed')")
    assert (r.success, r.stdout, r.error, r.timed_out, r.memory_exceeded) == (True, "passed\n", None, False, False)
    r = run(HUMANEVAL.replace("balance < 0", "balance < -1"))
    assert not r.success and r.error == "AssertionError" and "candidate([1, 2, -4, 5, 6])" in r.stderr
    r = run("def f(:\n  pass")
    assert not r.success and r.error.startswith("SyntaxError")
    r = run("import math, json, collections\nprint(json.dumps({'pi': round(math.pi, 3)}), file=__import__('sys').stderr)")
    assert r.success and r.stderr == '{"pi": 3.142}\n'

def test_own_folder_is_usable_and_deleted_afterwards():
    r = run("""
        import os, pathlib
        open('a.txt', 'w').write('hi'); os.rename('a.txt', 'b.txt'); assert open('b.txt').read() == 'hi'
        os.mkdir('d'); pathlib.Path('d/c.txt').write_text('x'); os.remove('d/c.txt'); os.rmdir('d'); os.unlink('b.txt')
        print(os.getcwd())
    """)
    assert r.success, r.stderr
    assert "nanochat_sandbox_" in r.stdout and not os.path.exists(r.stdout.strip())

def test_infinite_loop_times_out():
    t0 = time.monotonic()
    r = run("while True: pass", timeout=1)
    assert time.monotonic() - t0 < 3
    assert (r.success, r.timed_out, r.error) == (False, True, "timed out after 1 s")
    r = run("import time\nprint('started', flush=True)\ntime.sleep(60)", timeout=0.5)
    assert r.timed_out and r.stdout == "started\n"  # what it printed before the kill is kept

@pytest.mark.parametrize("code", ["x = bytearray(4 << 30)", "x = [0] * 10**9", "s = 'x' * 10**9",
                                  "chunks = []\nwhile True: chunks.append(bytearray(10 << 20))"])
def test_huge_allocation_hits_memory_limit(code):
    before = host_rss_mb()
    r = run(code, max_memory_mb=128)
    assert not r.success and r.memory_exceeded and r.error == "memory limit exceeded (128 MB)", r
    assert host_rss_mb() - before < 50

@pytest.mark.parametrize("code", [
    "import os\nif os.fork() == 0: open(MARK, 'w').write('child')",
    "import os; os.system('touch ' + MARK)",
    "import subprocess; subprocess.run(['touch', MARK])",
    "import subprocess; subprocess.check_output('touch ' + MARK, shell=True)",
    "import os; os.posix_spawn('/usr/bin/touch', ['touch', MARK], {})",
    "import os; os.execv('/usr/bin/touch', ['touch', MARK])",
    "import multiprocessing as mp\np = mp.Process(target=print); p.start(); p.join(); open(MARK, 'w')",
    "import os, signal; os.kill(os.getppid(), signal.SIGTERM)",
])
def test_no_new_processes_or_signals(code, tmp_path):
    mark = tmp_path / "spawned"
    r = run(f"MARK = {str(mark)!r}\n" + code)
    assert not r.success and "PermissionError" in r.error and "disabled in the sandbox" in r.error, r
    time.sleep(0.1)
    assert not mark.exists()  # neither the program nor a child it tried to start wrote it

@pytest.mark.parametrize("code", [
    "import os; os.remove(S)", "import os; os.unlink(S)", "import pathlib; pathlib.Path(S).unlink()",
    "import os; os.rename(S, S + '.moved')", "import os; os.replace(S, 'stolen.txt')",
    "import os; os.rmdir(os.path.dirname(S))", "import shutil; shutil.rmtree(os.path.dirname(S))",
    "import shutil; shutil.move(S, 'here.txt')", "open(S, 'w').write('overwritten')",
    "import pathlib; pathlib.Path(S).write_text('overwritten')", "open(S, 'a').write('appended')",
    "import os; os.truncate(S, 0)", "import os; os.chmod(S, 0)", "import os; os.chdir('..'); os.remove(S)",
    "import os; os.symlink(S, 'link'); os.remove(os.readlink('link'))",
])
def test_files_outside_its_folder_survive(code, tmp_path):
    sentinel = tmp_path / "sentinel.txt"; sentinel.write_text("precious")
    r = run(f"import os\nS = {str(sentinel)!r}\n" + code)
    assert not r.success and "PermissionError" in r.error, r
    assert sentinel.read_text() == "precious" and oct(sentinel.stat().st_mode)[-3:] != "000"

@pytest.fixture
def loopback_server():
    "A listening TCP socket on 127.0.0.1; yields (port, a function returning whether anyone connected)."
    srv = socket.create_server(("127.0.0.1", 0))
    def connected():
        srv.settimeout(0.3)
        try: srv.accept()[0].close(); return True
        except socket.timeout: return False
    yield srv.getsockname()[1], connected
    srv.close()

@pytest.mark.parametrize("code", [
    "import socket; socket.create_connection(('127.0.0.1', PORT))",
    "import socket; s = socket.socket(); s.connect(('127.0.0.1', PORT))",
    "import urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{PORT}/', timeout=2)",
    "import http.client; c = http.client.HTTPConnection('127.0.0.1', PORT, timeout=2); c.request('GET', '/')",
])
def test_no_network(code, loopback_server):
    port, connected = loopback_server
    r = run(f"PORT = {port}\n" + code)
    assert not r.success and r.error, r
    assert not connected()

def test_network_namespace_blocks_raw_sockets(loopback_server):
    "Below the Python patches: the C `_socket` module still cannot reach the host, where the kernel gives us a namespace."
    port, connected = loopback_server
    probe = run("import os; print(os.readlink('/proc/self/ns/net'))")
    if probe.stdout.strip() == os.readlink("/proc/self/ns/net"): pytest.skip("no network namespace on this machine")
    r = run(f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))")
    assert not r.success and ("unreachable" in r.error.lower() or "refused" in r.error.lower()), r
    assert not connected()

def test_printing_gigabytes_is_stopped_quickly():
    before = host_rss_mb(); t0 = time.monotonic()
    r = run("import sys\nwhile True: sys.stdout.write('x' * 10**6)", timeout=10)
    assert time.monotonic() - t0 < 5 and not r.timed_out
    assert (r.success, r.output_truncated, r.error) == (False, True, "output limit exceeded (65536 bytes)")
    assert r.stdout == "x" * 65536
    # a program that ignores the write errors keeps going until the clock stops it, still bounded
    r = run("while True:\n    try: print('y' * 1000)\n    except OSError: pass", timeout=1, max_output=1000)
    assert r.timed_out and r.output_truncated and len(r.stdout) == 1000
    r = run("open('big.bin', 'wb').write(b'0' * 10**8)")  # files in its own folder are capped too
    assert not r.success and "File too large" in r.error
    assert host_rss_mb() - before < 50

def test_exit_does_not_skip_the_tests():
    for code in ["import sys; sys.exit(0)\nassert False", "exit(0)\nassert False", "import os; os._exit(0)\nassert False",
                 "raise SystemExit\nassert False"]:
        r = run(code)
        assert not r.success and ("exit()" in r.error or "disabled" in r.error), (code, r)

def test_host_keeps_its_real_functions():
    run("import os, socket, builtins; os.remove = None; socket.socket = None; builtins.open = None")
    import builtins, shutil, subprocess
    assert os.fork.__module__ == "posix" and isinstance(socket.socket, type) and builtins.open.__module__ == "io"
    assert shutil.rmtree.__module__ == "shutil" and subprocess.Popen.__name__ == "Popen"
