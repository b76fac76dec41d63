"""The sandbox under hostile programs: each is contained, reported as a failure with a reason, and the host is unharmed.

`HOSTILE` is a table of attacks. Each program succeeds (exit 0) only if its attack worked, so a contained attack is a
failed run; the host-side checks then look for what the attack would have left behind: the secret in the output, a
file outside the sandbox, a changed secret file, a dead or signalled process, a connection to our server."""
import os, signal, socket, resource, shutil, subprocess, sys, threading, time, textwrap
from pathlib import Path
import pytest
from nanochat.common import get_base_dir
from nanochat import execution
from nanochat.execution import execute_code, sandbox_problem, SandboxUnavailable

def run(code, **kw): return execute_code(textwrap.dedent(code), **kw)
def host_rss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # high-water mark, KB on Linux

PROBLEM = sandbox_problem()  # None where the kernel layers work (the course machines and CI)
confined = pytest.mark.skipif(PROBLEM is not None, reason=f"the sandbox cannot confine programs here: {PROBLEM}")

SECRET = "s3cr3t-7f1d2c"  # in every file and environment the attacks aim at, never in what they may print

# --- the attacks; {NAMES} are filled in from the `host` fixture -----------------------------------------------------------
LIBC = "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True)\n"
HOSTILE = {
    # reading what is not its own
    "read /etc/shadow": "print(open('/etc/shadow').read())",
    "read /etc/passwd": "print(open('/etc/passwd').read())",
    "list /root": "import os; print(os.listdir('/root'))",
    "read ~/.ssh key": "print(open({SSH_KEY!r}).read())",
    "list ~/.ssh": "import os; print(os.listdir({SSH_DIR!r}))",
    "read a checkpoint": "print(open({CKPT!r}, 'rb').read())",
    "walk the base dir": "import os; print([f for _, _, fs in os.walk({BASE!r}) for f in fs]); assert os.listdir({BASE!r})",
    "read /proc/self/environ": "print(open('/proc/self/environ').read())",
    "inherit the environment": "import os; print(dict(os.environ)); assert os.environ.get('NANOCHAT_TEST_SECRET')",
    "read the host's environ": "print(open('/proc/{CANARY}/environ').read())",
    "read the parent's maps": "print(open('/proc/{PPID}/maps').read())",
    "read the parent's mem": "f = open('/proc/{PPID}/mem', 'rb'); f.seek(int(open('/proc/{PPID}/maps').read().split('-')[0], 16)); print(f.read(64))",
    "list the parent's fds": "import os; print(os.listdir('/proc/{PPID}/fd'))",
    "import the project": "import nanochat; print(nanochat.__file__)",
    # going around the Python-level guard
    "os.open bypass": "import os; print(os.read(os.open({SECRET_FILE!r}, os.O_RDONLY), 100))",
    "ctypes open bypass": LIBC + "fd = libc.open({SECRET_FILE!r}.encode(), 0); assert fd >= 0, os.strerror(ctypes.get_errno()); print(os.read(fd, 100))",
    "symlink escape": "import os; os.symlink({SECRET_FILE!r}, 'link'); print(open('link').read())",
    "hard link escape": "import os; os.link({SECRET_FILE!r}, 'hard'); print(open('hard').read())",
    "'..' escape": "import os; print(open(os.path.relpath({SECRET_FILE!r})).read())",
    "ctypes chdir escape": LIBC + "assert libc.chdir(b'/') == 0; open({MARK!r}.lstrip('/'), 'w').write('x')",
    # changing what is not its own
    "write outside": "open({MARK!r}, 'w').write('x')",
    "'..' write": "import os; open(os.path.relpath({MARK!r}), 'w')",
    "os.open create": "import os; os.close(os.open({MARK!r}, os.O_CREAT | os.O_WRONLY))",
    "ctypes unlink": LIBC + "assert libc.unlink({SECRET_FILE!r}.encode()) == 0, os.strerror(ctypes.get_errno())",
    "ctypes rename": LIBC + "assert libc.rename({SECRET_FILE!r}.encode(), {MARK!r}.encode()) == 0, os.strerror(ctypes.get_errno())",
    "ctypes chmod": LIBC + "assert libc.chmod({SECRET_FILE!r}.encode(), 0o777) == 0, os.strerror(ctypes.get_errno())",
    "ctypes truncate": LIBC + "assert libc.truncate({SECRET_FILE!r}.encode(), 0) == 0, os.strerror(ctypes.get_errno())",
    "overwrite its own stdout file": "open('../stdout', 'w').write('forged')",
    # new processes
    "os.fork": "import os\nif os.fork() == 0: open({MARK!r}, 'w')",
    "ctypes fork": LIBC + "pid = libc.fork(); assert pid >= 0, os.strerror(ctypes.get_errno())\nif pid == 0: open({MARK!r}, 'w')",
    "fork bomb": LIBC + "for _ in range(200): assert libc.fork() >= 0, os.strerror(ctypes.get_errno())",
    "posix.system bypass": "import posix; assert posix.system('touch {MARK}') == 0",
    "posix.execv bypass": "import posix; posix.execv('/usr/bin/touch', ['touch', {MARK!r}])",
    "reloaded subprocess": "import importlib, subprocess; importlib.reload(subprocess); subprocess.run(['touch', {MARK!r}], check=True)",
    "_posixsubprocess.fork_exec": "import os, _posixsubprocess as ps; r, w = os.pipe()\n"
        "ps.fork_exec([b'/usr/bin/touch', {MARK!r}.encode()], [b'/usr/bin/touch'], True, (w,), None, None, "
        "-1, -1, -1, -1, -1, -1, r, w, False, False, -1, None, None, None, -1, None, True)\nassert os.read(r, 100) == b''",
    "thread bomb": "import threading, time\nwhile True: threading.Thread(target=time.sleep, args=(30,), daemon=True).start()",
    # signals and debugging of host processes
    "kill the parent": "import os, signal; os.kill(os.getppid(), signal.SIGUSR1)",
    "posix.kill the parent": "import posix, signal; posix.kill({PPID}, signal.SIGUSR1)",
    "kill a host process": "import posix, signal; posix.kill({CANARY}, signal.SIGKILL)",
    "signal every process": "import posix; posix.kill(-1, 0)",  # signal 0 only asks whether it could
    "ptrace the parent": LIBC + "assert libc.ptrace(16, {PPID}, 0, 0) == 0, os.strerror(ctypes.get_errno())",  # PTRACE_ATTACH
    "process_vm_readv": LIBC + "assert libc.syscall(310, {PPID}, 0, 0, 0, 0, 0) >= 0, os.strerror(ctypes.get_errno())",
    # the network
    "tcp to the host": "import socket; socket.create_connection(('127.0.0.1', {PORT}), timeout=2)",
    "raw _socket to the host": "import _socket; s = _socket.socket(); s.settimeout(2); s.connect(('127.0.0.1', {PORT}))",
    "unix socket to the host": "import _socket; s = _socket.socket(_socket.AF_UNIX); s.connect({UNIX_SOCK!r})",
    # devices
    "read /dev/sda": "print(open('/dev/sda', 'rb').read(512))",
    "read the root disk": "print(open('/dev/vda', 'rb').read(512))",  # / on the course machines
    "read /dev/mem": "print(open('/dev/mem', 'rb').read(64))",
    "read /dev/kmsg": "print(open('/dev/kmsg', 'rb').read(64))",
    "write /dev/shm": "open('/dev/shm/nanochat-sandbox-test', 'w').write('x')",
    # undoing the confinement
    "raise rlimits": "import resource; resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)",
    "unshare again": LIBC + "assert libc.unshare(0x10000000) == 0, os.strerror(ctypes.get_errno())",
    "mount over /": LIBC + "assert libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None) == 0, os.strerror(ctypes.get_errno())",
    "io_uring": LIBC + "import ctypes as c; p = c.create_string_buffer(120); assert libc.syscall(425, 8, p) >= 0, os.strerror(c.get_errno())",
}
# attacks that read: run without the sandbox they must print the secret, so their tests can fail
READS = ["read ~/.ssh key", "read a checkpoint", "read the host's environ", "os.open bypass", "ctypes open bypass", "symlink escape", "'..' escape"]

@pytest.fixture
def host(tmp_path, monkeypatch):
    "A host with things to protect: secret files, a fake ~/.ssh and checkpoint, processes with a secret in their environment, servers."
    monkeypatch.setenv("NANOCHAT_TEST_SECRET", SECRET)
    d = tmp_path / "host"; (d / "home/.ssh").mkdir(parents=True)
    ssh_key = d / "home/.ssh/id_ed25519"; ssh_key.write_text(f"-----BEGIN KEY----- {SECRET}")
    secret_file = d / "secret.txt"; secret_file.write_text(SECRET)
    ckpt = get_base_dir() / "checkpoints/sft/d4/model_000100.pt"; ckpt.parent.mkdir(parents=True); ckpt.write_bytes(SECRET.encode())
    canary = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env={**os.environ, "CANARY_SECRET": SECRET})
    tcp = socket.create_server(("127.0.0.1", 0)); tcp.settimeout(0.2)
    unix = socket.socket(socket.AF_UNIX); unix.bind(str(d / "sock")); unix.listen(); unix.settimeout(0.2)
    got = []; old = signal.signal(signal.SIGUSR1, lambda *a: got.append(a))
    names = dict(SECRET=SECRET, SSH_KEY=str(ssh_key), SSH_DIR=str(ssh_key.parent), CKPT=str(ckpt), BASE=str(get_base_dir()),
                 SECRET_FILE=str(secret_file), MARK=str(d / "mark"), CANARY=canary.pid, PPID=os.getpid(), PORT=tcp.getsockname()[1],
                 UNIX_SOCK=str(d / "sock"))
    yield dict(names=names, dir=d, secret_file=secret_file, canary=canary, tcp=tcp, unix=unix, usr1=got)
    signal.signal(signal.SIGUSR1, old); canary.kill(); canary.wait(); tcp.close(); unix.close()

def accepted(srv):
    try: srv.accept()[0].close(); return True
    except (socket.timeout, BlockingIOError): return False

@confined
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_is_contained(name, host):
    before = sorted(p.name for p in host["dir"].iterdir()), host["secret_file"].stat().st_mode
    r = execute_code(HOSTILE[name].format(**host["names"]), timeout=3)
    assert not r.success and r.error, r
    assert not r.error.split(":")[0].endswith(("NameError", "SyntaxError", "TypeError", "KeyError")), r.error  # the attack ran
    assert SECRET not in r.stdout + r.stderr  # nothing it read came out
    time.sleep(0.05)  # anything it started has had time to act
    assert (sorted(p.name for p in host["dir"].iterdir()), host["secret_file"].stat().st_mode) == before  # no file made, none changed
    assert host["secret_file"].read_text() == SECRET and not os.path.exists("/dev/shm/nanochat-sandbox-test")
    assert host["canary"].poll() is None and host["usr1"] == []  # host processes alive, not signalled
    assert not accepted(host["tcp"]) and not accepted(host["unix"])

@pytest.mark.parametrize("name", READS)
def test_the_read_attacks_work_unconfined(name, host, tmp_path):
    "The control: the same programs in a plain interpreter do print the secret, so the test above can fail."
    r = subprocess.run([sys.executable, "-I", "-c", HOSTILE[name].format(**host["names"])], cwd=tmp_path, capture_output=True, text=True)
    assert SECRET in r.stdout, r.stderr

def test_at_least_30_attacks(): assert len(HOSTILE) >= 30

# --- limits ------------------------------------------------------------------------------------------------------------------
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

def test_the_kernel_layers_work_here():
    "A machine that cannot confine programs fails here, loudly, unless its user accepted the weak sandbox (then the rest is skipped)."
    if PROBLEM and os.environ.get("NANOCHAT_ALLOW_WEAK_SANDBOX") == "1": pytest.skip(f"weak sandbox accepted: {PROBLEM}")
    assert PROBLEM is None, PROBLEM

@confined
def test_normal_programs():
    r = run(HUMANEVAL + "print('passed')")
    assert (r.success, r.stdout, r.error, r.timed_out, r.memory_exceeded) == (True, "passed\n", None, False, False)
    r = run(HUMANEVAL.replace("balance < 0", "balance < -1"))
    assert not r.success and r.error == "AssertionError" and "candidate([1, 2, -4, 5, 6])" in r.stderr
    r = run("def f(:\n  pass")
    assert not r.success and r.error.startswith("SyntaxError")
    r = run("import math, json, collections, hashlib, re, threading\nprint(json.dumps({'pi': round(math.pi, 3)}), file=__import__('sys').stderr)")
    assert r.success and r.stderr == '{"pi": 3.142}\n'

@confined
def test_own_folder_is_usable_and_invisible_to_the_host():
    r = run("""
        import os, pathlib, tempfile
        open('a.txt', 'w').write('hi'); os.rename('a.txt', 'b.txt'); assert open('b.txt').read() == 'hi'
        os.mkdir('d'); pathlib.Path('d/c.txt').write_text('x'); os.remove('d/c.txt'); os.rmdir('d')
        with tempfile.NamedTemporaryFile() as f: f.write(b'scratch')
        print(os.getcwd())
    """)
    assert r.success, r.stderr
    assert "nanochat_sandbox_" in r.stdout and not os.path.exists(r.stdout.strip())

@confined
def test_infinite_loop_times_out():
    t0 = time.monotonic()
    r = run("while True: pass", timeout=1)
    assert time.monotonic() - t0 < 3
    assert (r.success, r.timed_out, r.error) == (False, True, "timed out after 1 s")
    r = run("import time\nprint('started', flush=True)\ntime.sleep(60)", timeout=0.5)
    assert r.timed_out and r.stdout == "started\n"  # what it printed before the kill is kept

@confined
@pytest.mark.parametrize("code", ["x = bytearray(4 << 30)", "x = [0] * 10**9", "s = 'x' * 10**9",
                                  "chunks = []\nwhile True: chunks.append(bytearray(10 << 20))"])
def test_huge_allocation_hits_memory_limit(code):
    before = host_rss_mb()
    r = run(code, max_memory_mb=128)
    assert not r.success and r.memory_exceeded and r.error == "memory limit exceeded (128 MB)", r
    assert host_rss_mb() - before < 50

@confined
def test_filling_the_disk_stops_at_its_quota():
    free = shutil.disk_usage(os.environ.get("TMPDIR", "/tmp")).free
    r = run("i = 0\nwhile True: open(f'f{i}', 'wb').write(b'x' * 60_000); i += 1", timeout=10, max_disk_mb=4)
    assert not r.success and not r.timed_out and "No space left on device" in r.error, r
    r = run("i = 0\nwhile True: open(f'e{i}', 'w').close(); i += 1", timeout=10)
    assert not r.success and not r.timed_out and "No space left on device" in r.error, r  # the tmpfs' file count
    assert free - shutil.disk_usage(os.environ.get("TMPDIR", "/tmp")).free < 50 << 20

@confined
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

@confined
def test_open_files_are_limited():
    r = run("fs = [open('/dev/null') for _ in range(1000)]")
    assert not r.success and "Too many open files" in r.error, r

@confined
def test_exit_does_not_skip_the_tests():
    for code in ["import sys; sys.exit(0)\nassert False", "exit(0)\nassert False", "import os; os._exit(0)\nassert False",
                 "raise SystemExit\nassert False"]:
        r = run(code)
        assert not r.success and ("exit()" in r.error or "disabled" in r.error), (code, r)

@confined
def test_python_guard_messages_are_kept():
    "The Python-level layer still answers first with a readable reason."
    for code in ["import os; os.fork()", "import subprocess; subprocess.run(['true'])", "import os; os.remove('/etc/hostname')"]:
        r = run(code)
        assert not r.success and "PermissionError" in r.error and "sandbox" in r.error, r

@confined
def test_host_keeps_its_real_functions():
    run("import os, socket, builtins; os.remove = None; socket.socket = None; builtins.open = None")
    import builtins, subprocess
    assert os.fork.__module__ == "posix" and isinstance(socket.socket, type) and builtins.open.__module__ == "io"
    assert shutil.rmtree.__module__ == "shutil" and subprocess.Popen.__name__ == "Popen"

# --- where the kernel cannot confine -----------------------------------------------------------------------------------------
def test_refuses_without_the_kernel_layers(monkeypatch):
    monkeypatch.setattr(execution, "sandbox_problem", lambda: "Landlock is not available: Function not implemented")
    monkeypatch.setattr(execution, "_warned", [])
    monkeypatch.delenv("NANOCHAT_ALLOW_WEAK_SANDBOX", raising=False)
    with pytest.raises(SandboxUnavailable, match="Landlock is not available.*allow_weak=True.*NANOCHAT_ALLOW_WEAK_SANDBOX=1"):
        execute_code("print('hi')")
    with pytest.warns(UserWarning, match="WEAK sandbox: Landlock is not available"):
        assert execute_code("print('hi')", allow_weak=True).stdout == "hi\n"
    monkeypatch.setenv("NANOCHAT_ALLOW_WEAK_SANDBOX", "1")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: the second weak run is silent
        r = execute_code("import os; os.fork()")
    assert not r.success and "disabled in the sandbox" in r.error  # the Python-level guard still answers

@confined
def test_a_failing_layer_stops_the_program(monkeypatch):
    "In strict mode a layer that cannot be applied stops the child before the program runs."
    monkeypatch.setattr(execution, "_CHILD", execution._CHILD[:1] + (_broken_landlock,) + execution._CHILD[2:])
    r = execution._run_limited(f"open({os.devnull!r}, 'w'); print('ran')", 5, 256, 4096, 1, strict=True)
    assert r[0] == 97 and b"cannot confine (landlock)" in r[3] and b"ran" not in r[2]

def _landlock(rules): raise OSError(38, "Landlock is not available: Function not implemented")
_broken_landlock = _landlock

# --- HumanEval through the real grading path -----------------------------------------------------------------------------
@confined
def test_humaneval_canonical_solutions_pass_in_the_sandbox():
    from concurrent.futures import ThreadPoolExecutor
    from nanochat.tasks import HumanEval
    task = HumanEval()
    convs = [task.example(i) for i in range(task.num_examples())]
    with ThreadPoolExecutor(2) as ex:
        passed = list(ex.map(lambda c: task.evaluate(c, c["messages"][1]["content"], timeout=10), convs))
    assert len(passed) == 164 and sum(passed) == 164, [c["entry_point"] for c, p in zip(convs, passed) if not p]
    c = convs[0]  # has_close_elements: a wrong body fails
    assert task.evaluate(c, c["messages"][0]["content"] + "    return False\n") == 0
