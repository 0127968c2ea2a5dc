"""`flask forms ...`: check, list and draw the flow files in FLOWS_DIR; publish
them as versions, and show, compare, roll back and export those versions."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.db import begin_write, get_session
from app.directory.pins import PinPolicy
from app.flows import versions
from app.flows.graph import FORMATS, GraphError, render
from app.flows.loader import FLOW_NAME, FlowFileError, Problem, load_dir, load_flow
from app.flows.model import Flow
from app.flows.registry import current_registry
from app.models import FlowVersion
from app.neutral.fields import listing

flows_cli = AppGroup(
    "forms", help="Check, list and draw the flows in FLOWS_DIR; publish and manage their versions."
)


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


@flows_cli.command("publish")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--note", default="", help="Said of each version published.")
def publish(files: tuple[Path, ...], note: str) -> None:
    """Publish each flow file that changed as its flow's next version (default:
    every flow in FLOWS_DIR); exit 1 if any file fails the check.

    A file is published under its name (verify_caller.yaml: verify_caller).
    New calls start on it within GLUE_FLOWS_POLL_SECONDS on every worker;
    calls in progress keep the version they started on.
    """
    paths = files or tuple(sorted(Path(current_app.config["FLOWS_DIR"]).glob("*.yaml")))
    session = get_session()
    failed = 0
    for path in paths:
        name = path.stem
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"{path}: cannot read: {exc}")
            failed += 1
            continue
        begin_write(session)
        try:
            row = versions.publish(
                session, name, source, by="cli", note=note, origin="file", file=str(path)
            )
        except versions.PublishError as exc:
            session.rollback()
            for problem in exc.problems:
                click.echo(str(problem))
            click.echo(f"{name}: not published ({len(exc.problems)} problem(s))")
            failed += 1
            continue
        session.commit()
        if row is None:
            current = versions.published(session, name)
            click.echo(f"{name}: unchanged (v{current.number if current else '?'})")
        else:
            click.echo(f"{name}: published v{row.number}")
    current_registry().poll(force=True)
    if failed:
        raise SystemExit(1)


@flows_cli.command("history")
@click.argument("flow")
def history(flow: str) -> None:
    """List FLOW's versions, newest (the published one) first."""
    rows = versions.history(get_session(), flow)
    if not rows:
        raise click.ClickException(_no_versions(flow))
    for row in rows:
        published = "  (published)" if row is rows[0] else ""
        note = f"  {row.note}" if row.note else ""
        click.echo(
            f"v{row.number}  {row.created_at:%Y-%m-%d %H:%M:%S}  {row.created_by}  "
            f"{row.origin}{note}{published}"
        )


@flows_cli.command("diff")
@click.argument("flow")
@click.argument("a", required=False)
@click.argument("b", required=False)
def diff(flow: str, a: str | None, b: str | None) -> None:
    """Show what changed in FLOW from A to B, each a version number or a file
    (default: from the version before the published one to the published one;
    with A alone, from A to the published one)."""
    session = get_session()
    current = versions.published(session, flow)
    if current is None:
        raise click.ClickException(_no_versions(flow))
    if a is None:
        if current.number == 1:
            click.echo(f"{flow} has one version (v1): nothing to compare")
            return
        older: FlowVersion | str = _side(flow, str(current.number - 1))
        newer: FlowVersion | str = current
    else:
        older = _side(flow, a)
        newer = _side(flow, b) if b is not None else current
    # A file's side is labelled with the path given.
    text = versions.diff(
        older,
        newer,
        a_label=a if isinstance(older, str) and a else "",
        b_label=b if isinstance(newer, str) and b else "",
    )
    click.echo(text or "no differences", nl=not text)


@flows_cli.command("rollback")
@click.argument("flow")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--note", default="", help="Why (default: rollback to VERSION).")
def rollback(flow: str, version: int, note: str) -> None:
    """Publish FLOW's VERSION again, as a new version: new calls start on it;
    calls in progress keep theirs."""
    session = get_session()
    begin_write(session)
    try:
        row = versions.rollback(session, flow, version, by="cli", note=note)
    except LookupError:
        session.rollback()
        known = [f"v{r.number}" for r in versions.history(session, flow)]
        raise click.ClickException(
            f"{flow} has no version {version}"
            + (f" (versions: {', '.join(reversed(known))})" if known else "")
        ) from None
    session.commit()
    current_registry().poll(force=True)
    click.echo(f"{flow}: published v{row.number} (the source of v{version})")


@flows_cli.command("export")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path | None) -> None:
    """Write each flow's published source to DIRECTORY/<flow>.yaml (default:
    FLOWS_DIR), as it was published."""
    target = directory or Path(current_app.config["FLOWS_DIR"])
    session = get_session()
    names = versions.flow_names(session)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            row = versions.published(session, name)
            assert row is not None  # a name listed has a version
            path = target / f"{name}.yaml"
            # newline="": the source is written byte for byte as published.
            with path.open("w", encoding="utf-8", newline="") as handle:
                handle.write(row.source)
            click.echo(f"{click.format_filename(path)}: {name} v{row.number}")
    except OSError as exc:
        raise click.ClickException(f"{target}: {exc.strerror}") from None
    if not names:
        click.echo("no flow has been published")


def _side(flow: str, given: str) -> FlowVersion | str:
    """A version (a number, with or without v) or a file's source."""
    number = given.removeprefix("v")
    if number.isdigit():
        row = versions.version(get_session(), flow, int(number))
        if row is None:
            raise click.ClickException(f"{flow} has no version {number}")
        return row
    path = Path(given)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(
            f"{given}: not a version number, nor a file read ({exc})"
        ) from None


def _no_versions(flow: str) -> str:
    known = listing("published flows are", versions.flow_names(get_session()), flow)
    return f"no version of {flow!r} ({known}): `flask forms publish` publishes the files"
