"""`flask forms ...`: check and list the flow files in FORMS_DIR."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.flows.loader import FlowFileError, Problem, load_dir, load_flow
from app.flows.model import Flow

forms_cli = AppGroup("forms", help="Check and list the flows in FORMS_DIR.")


@forms_cli.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Validate flow files (default: every flow in FORMS_DIR); exit 1 on any problem."""
    # Reads the files afresh: the running registry may hold an older good version.
    if files:
        flows, problems = _load_files(files)
    else:
        flows, problems = load_dir(Path(current_app.config["FORMS_DIR"]))
    for problem in problems:
        click.echo(str(problem))
    if problems:
        broken = len({problem.file for problem in problems})
        click.echo(f"{len(problems)} problem(s) in {broken} file(s); {len(flows)} flow(s) OK")
        raise SystemExit(1)
    click.echo(f"{len(flows)} flows OK")


@forms_cli.command("list")
def list_flows() -> None:
    """Show each flow in FORMS_DIR with its description and questions."""
    flows, problems = load_dir(Path(current_app.config["FORMS_DIR"]))
    for name, flow in flows.items():
        click.echo(f"{name}: {flow.description}")
        click.echo(f"  questions: {', '.join(q.name for q in flow.questions)}")
    if problems:
        click.echo(f"{len(problems)} problem(s): run `flask forms check`", err=True)


def _load_files(files: tuple[Path, ...]) -> tuple[dict[str, Flow], list[Problem]]:
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in files:
        try:
            flows[str(path)] = load_flow(path)
        except FlowFileError as exc:
            problems += exc.problems
    return flows, problems
