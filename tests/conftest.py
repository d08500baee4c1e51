"""The test processes make the command line's CPU settings (two JAX devices on a 2-core
machine), as `deepq` does, before any test module imports JAX; and `cli`, the command line
run in the test's own process."""

from deepq.cpu import setup_process

setup_process()

import pytest  # noqa: E402


@pytest.fixture
def cli(capsys, monkeypatch):
    """`deepq ARGS` in this process, whose error handling is the whole difference from a
    subprocess: (exit code, stdout, stderr)."""
    from deepq.cli import main  # loaded by the tests that use it

    monkeypatch.setenv("DEEPQ_JAX_CACHE", "off")

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # --help
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err
    return call
