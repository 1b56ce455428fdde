"""Issue 12 part 6: at a terminal `invite-bot shell` shows its prompt before reading, edits
lines and recalls them with readline (arrow keys), and Ctrl-C / Ctrl-D leave cleanly.

Each test runs the shell on a pseudo-terminal (`pty.fork`: the child's controlling terminal,
so \\x03 is a real SIGINT and \\x04 a real end of input) and types into it."""

from __future__ import annotations

import os
import re
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")

SCRIPT = Path(sys.executable).parent / "invite-bot"
ESCAPES = re.compile(rb"\x1b(\[[0-9;?]*[A-Za-z]|[=>])")


class Terminal:
    """The shell on a pty: `expect` waits for text on the screen, `type` types keys."""

    def __init__(self, cwd: Path) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWORK_", "INVITE_"))
        }
        env.update(TERM="xterm", INPUTRC=os.devnull)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the shell, with the pty as its terminal
            try:
                os.chdir(cwd)  # no .env here
                os.execve(str(SCRIPT), [str(SCRIPT), "shell"], env)  # noqa: S606
            finally:
                os._exit(127)
        self.seen = b""
        self.pos = 0  # where on the screen the next expectation looks from
        self.status: int | None = None

    @property
    def screen(self) -> str:
        return ESCAPES.sub(b"", self.seen).decode(errors="replace").replace("\r\n", "\n")

    def _pump(self, timeout: float) -> bool:
        """Read what the shell wrote; False once the terminal is closed."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            return False
        self.seen += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait until `text` is on the screen after what earlier expectations matched."""
        deadline = time.monotonic() + timeout
        while (found := self.screen.find(text, self.pos)) < 0:
            assert time.monotonic() < deadline, f"no {text!r} on the screen:\n{self.screen}"
            assert self._pump(0.2), f"the shell ended before {text!r}:\n{self.screen}"
        self.pos = found + len(text)

    def type(self, keys: str, then: str | None = None) -> None:
        """Type `keys`; with `then`, wait until `then` appears."""
        os.write(self.fd, keys.encode())
        if then is not None:
            self.expect(then)

    def settle(self, seconds: float = 0.1) -> None:
        """Let the shell, which has shown it took what was typed (its echo, its next prompt),
        get back to waiting for a key: a SIGINT that arrives before readline waits again is
        only noticed at the next key (and a signal flushes keys not read yet)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(0.05)

    def wait(self, timeout: float = 60) -> int:
        """The shell's exit code, once it has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = self._pump(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while alive and select.select([self.fd], [], [], 0)[0]:
                    alive = self._pump(0)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError(f"the shell did not end:\n{self.screen}")

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal(tmp_path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


def test_the_prompt_comes_before_the_input_and_ctrl_d_leaves(terminal):
    """`@ada> ` is on the screen before anything is typed; Ctrl-D at the prompt ends the
    shell with exit code 0 and no traceback."""
    terminal.expect("You are @ada.")
    terminal.expect("@ada> ")  # nothing typed yet
    terminal.type("as @olga\r", then="@olga> ")
    terminal.type("\x04")
    assert terminal.wait() == 0
    assert "Traceback" not in terminal.screen


def test_arrow_keys_recall_and_edit_earlier_lines(terminal):
    """readline is on: Up brings back `users`, Left moves inside the line being edited."""
    terminal.expect("@ada> ")
    terminal.type("users\r", then="approver\n@ada> ")
    terminal.type("\x1b[A\r", then="@olga  UOLGA  olga@example.com  approver")  # Up, Enter
    terminal.expect("@ada> ")
    terminal.type("as @sm\x1b[Da\r", then="@sam> ")  # Left, then the missing letter
    assert "unknown command" not in terminal.screen
    terminal.type("quit\r")
    assert terminal.wait() == 0


def test_ctrl_c_drops_the_line_not_the_shell(terminal):
    """Ctrl-C at the prompt drops what was typed and shows a new prompt (no traceback); the
    shell goes on, and Ctrl-D then leaves with exit code 0."""
    terminal.expect("@ada> ")
    terminal.type("as @nobody", then="as @nobody")  # readline has read and echoed it
    terminal.settle()
    terminal.type("\x03", then="Ctrl-D or `quit` leaves)\n@ada> ")
    terminal.type("users\r", then="@sam  USAM  sam@example.com  approver\n@ada> ")
    assert "nobody" not in terminal.screen.split("`quit` leaves)")[1]  # the line was dropped
    terminal.type("\x04")
    assert terminal.wait() == 0
    assert "Traceback" not in terminal.screen and "KeyboardInterrupt" not in terminal.screen


def test_ctrl_c_in_a_multi_line_answer_cancels_only_that_answer(terminal):
    """Ctrl-C while the lines of the bulk list are typed drops them; the form stays open with
    the field as it was, and a new list ended by an empty line is taken."""
    terminal.expect("@ada> ")
    terminal.type("/invite bulk\r", then="`submit` (or `cancel`).\n@ada> ")
    terminal.type("1\r", then="... ")
    terminal.type("dropped@x.com\r", then="... ")
    terminal.settle()
    terminal.type("\x03", then="People, one per line is unchanged)\n@ada> ")
    terminal.type("show\r", then="5. Skip awork's welcome email: —\n@ada> ")
    assert "1. People, one per line: —" in terminal.screen
    terminal.type("1\r", then="... ")
    terminal.type("a@x.com b@y.com\r", then="... ")
    terminal.type("c@z.com\r", then="... ")
    terminal.type("\r", then="People, one per line:\n    a@x.com b@y.com\n    c@z.com\n@ada> ")
    terminal.type("\x04")
    assert terminal.wait() == 0
    assert "Traceback" not in terminal.screen


def test_at_a_terminal_messages_are_drawn_with_styles_not_markup(terminal):
    """At a terminal a message's *bold* is drawn bold (an escape code), not between asterisks,
    and its :test_tube: shortcode is the emoji."""
    terminal.expect("@ada> ")
    terminal.type("/invite grace@example.com role:member\r", then="Role: Member")
    terminal.expect("@ada> ")
    assert b"\x1b[1mRole:" in terminal.seen
    assert "*Role:*" not in terminal.screen and ":test_tube:" not in terminal.screen
    assert "🧪 sandbox — no real invitation" in terminal.screen
    terminal.type("\x04")
    assert terminal.wait() == 0
