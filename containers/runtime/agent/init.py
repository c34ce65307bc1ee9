"""PID 1 of every function container: `python3 init.py node /opt/afp/agent.mjs`.

Runs the runtime agent as its child and stays out of its way:
- forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 to the agent (the platform's
  container.signal, a rollout's or host drain's SIGTERM, `docker kill -s TERM` reach PID 1; the
  agent records them, and on SIGTERM tells the running execution the platform is stopping the
  container and forwards it to the handler's process group);
- reaps every child (waitpid(-1)), so processes orphaned by a handler (a double fork) never stay
  zombies: orphans are re-parented to PID 1 (or to this process as a child subreaper when it is
  not PID 1), and Node.js does not reap what it did not spawn;
- sets RLIMIT_NPROC to AFP_PIDS_LIMIT before starting the agent: root (the agent) is exempt, and
  handler processes, which run as a per-boot uid, inherit it, so a fork bomb stops there;
- exits with the agent's status (128 + signal number when a signal ended it).
"""
import ctypes
import os
import resource
import signal
import sys

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
"""Signals passed on to the agent."""
DEFAULT_PIDS_LIMIT = 512
"""Processes and threads of the handler user when AFP_PIDS_LIMIT is absent or not a number."""
SIGNAL_EXIT_BASE = 128
"""A child ended by signal N is reported as exit status 128 + N, as shells do."""
PR_SET_CHILD_SUBREAPER = 36
"""prctl option: orphans of descendants are re-parented here even when this is not PID 1."""


def become_subreaper():
    """Makes this process the reaper of orphaned descendants (already true as PID 1)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def pids_limit():
    """The process cap for handler users, from AFP_PIDS_LIMIT."""
    try:
        value = int(os.environ.get("AFP_PIDS_LIMIT", ""))
    except ValueError:
        return DEFAULT_PIDS_LIMIT
    return value if value > 0 else DEFAULT_PIDS_LIMIT


def main():
    command = sys.argv[1:]
    if not command:
        print("usage: init.py PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    become_subreaper()
    limit = pids_limit()
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    agent = os.fork()
    if agent == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)  # noqa: SLF001 - exec failed in the child

    def forward(signum, _frame):
        try:
            os.kill(agent, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)

    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        if pid == agent:
            if os.WIFSIGNALED(status):
                return SIGNAL_EXIT_BASE + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
