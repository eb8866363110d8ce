"""Starting a child process the way a user's shell would, for the Ctrl-C tests."""

import signal


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that must take Ctrl-C: SIGINT back to its default action.

    Why: a test runner started in the background of a non-interactive shell (``cmd &``,
    ``nohup``) ignores SIGINT, children inherit that, and Python then installs no
    KeyboardInterrupt handler, so the test's SIGINT would do nothing. A terminal does not.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
