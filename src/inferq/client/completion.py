"""``inferq completion SHELL``: the shell completion script click generates for ``inferq``."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
EXAMPLES = """\b
Examples:
  eval "$(inferq completion bash)"            # in ~/.bashrc
  eval "$(inferq completion zsh)"             # in ~/.zshrc
  inferq completion fish > ~/.config/fish/completions/inferq.fish

\b
The same script, straight from click:
  eval "$(_INFERQ_COMPLETE=bash_source inferq)"
"""


@click.command("completion", epilog=EXAMPLES)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (commands, options, choices, paths)."""
    completion_class = get_completion_class(shell)
    assert completion_class is not None
    root = ctx.find_root().command
    click.echo(completion_class(root, {}, "inferq", "_INFERQ_COMPLETE").source())
