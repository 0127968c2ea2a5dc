"""`flask forms ...`: check, list and draw the flow files in FLOWS_DIR."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.directory.pins import PinPolicy
from app.flows.graph import FORMATS, GraphError, render
from app.flows.loader import FLOW_NAME, FlowFileError, Problem, load_dir, load_flow
from app.flows.model import Flow
from app.flows.registry import current_registry
from app.neutral.fields import listing

flows_cli = AppGroup("forms", help="Check, list and draw the flows in FLOWS_DIR.")


@flows_cli.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Validate flow files (default: every flow in FLOWS_DIR); exit 1 on any problem.

    Each problem is one line: file:line: field: message (hint: how to fix it).
    A PIN question that cannot take every PIN length the PIN policy allows
    (GLUE_PIN_MIN_LENGTH, GLUE_PIN_MAX_LENGTH) is a problem too.
    """
    # Reads the files afresh: the running registry may hold an older good version.
    pins = PinPolicy.from_config(current_app.config)
    if files:
        flows, problems = _load_files(files, pins)
    else:
        flows, problems = load_dir(Path(current_app.config["FLOWS_DIR"]), pins)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        broken = len({problem.file for problem in problems})
        click.echo(f"{len(problems)} problem(s) in {broken} file(s); {len(flows)} flow(s) OK")
        raise SystemExit(1)
    click.echo(f"{len(flows)} flows OK")


@flows_cli.command("list")
def list_flows() -> None:
    """Show each flow in FLOWS_DIR with its description and questions."""
    flows, problems = load_dir(Path(current_app.config["FLOWS_DIR"]))
    for name, flow in flows.items():
        click.echo(f"{name}: {flow.description}")
        click.echo(f"  questions: {', '.join(q.name for q in flow.questions)}")
    if problems:
        click.echo(f"{len(problems)} problem(s): run `flask forms check`", err=True)


@flows_cli.command("graph")
@click.argument("flow")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="svg", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: graphs/FLOW.svg or .png in the instance folder).",
)
def graph(flow: str, fmt: str, output: Path | None) -> None:
    """Draw FLOW (a flow name in FLOWS_DIR, or a .yaml file) and print the file written.

    By default the drawing goes into the instance folder (instance/graphs/), out
    of the way of the flows and of the code, whatever the current folder.
    """
    loaded = _flow_to_draw(flow)
    try:
        data = render(loaded, fmt)
    except GraphError as exc:
        raise click.ClickException(str(exc)) from None
    path = output or Path(current_app.instance_path) / "graphs" / f"{loaded.name}.{fmt}"
    try:
        if output is None:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None
    click.echo(click.format_filename(path))  # a name that is not UTF-8 still prints


def _flow_to_draw(flow: str) -> Flow:
    """The flow named (read afresh, like check), or a ClickException saying why not."""
    directory = Path(current_app.config["FLOWS_DIR"])
    if FLOW_NAME.fullmatch(flow) and (directory / f"{flow}.yaml").is_file():
        path = directory / f"{flow}.yaml"
    elif flow.endswith(".yaml") and Path(flow).is_file():
        path = Path(flow)
    else:
        known = listing("flows are", current_registry().names(), flow)
        raise click.ClickException(f"no flow {flow!r} in {directory} ({known})")
    try:
        return load_flow(path)
    except FlowFileError as exc:
        count = len(exc.problems)
        raise click.ClickException(
            f"{path} has {count} problem{'s' if count != 1 else ''}: run `flask forms check {path}`"
        ) from None


def _load_files(files: tuple[Path, ...], pins: PinPolicy) -> tuple[dict[str, Flow], list[Problem]]:
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in files:
        try:
            flows[str(path)] = load_flow(path, pins)
        except FlowFileError as exc:
            problems += exc.problems
    return flows, problems
