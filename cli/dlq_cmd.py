"""`cdc dlq list|show|redrive|discard`: look into the dead-letter topics and act on them.

Re-drive and discard print what they would do and act only with --yes, so the dry run comes
first; every action is recorded in the operator's audit topic (operate/audit.py)."""
from __future__ import annotations

import getpass
import json

import typer
from rich.console import Console
from rich.table import Table

from cli import stack_env
from operate import audit, letters, redrive
from operate.letters import Letter
from stack.kafka_client import OPERATOR, KafkaAccess, access

app = typer.Typer(help="Dead letters: list them by reason, show one, re-drive or discard them (recorded).",
                  no_args_is_help=True)
out = Console(width=160)


def _kafka() -> KafkaAccess:
    return access(stack_env.load(), OPERATOR)


def _select(kafka: KafkaAccess, topic: str | None, ids: list[str], group: str | None,
            include_handled: bool, handled: dict[str, audit.Action]) -> list[Letter]:
    topics = [topic] if topic else letters.dead_letter_topics(kafka)
    found = [m for t in topics for m in letters.read_topic(kafka, t)]
    if ids:
        by_id = {m.id: m for m in found}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise typer.BadParameter(f"no such dead letter: {', '.join(unknown)} (see `cdc dlq list`)")
        return [by_id[i] for i in ids]
    chosen = [m for m in found if include_handled or m.id not in handled]
    if group is not None:
        chosen = [m for m in chosen if m.group == group or group in m.reason]
    return chosen


@app.command("list")
def list_(topic: str | None = typer.Argument(None, help="one dead-letter topic (default: every dlq.* topic)"),
          all_: bool = typer.Option(False, "--all", help="also the letters already re-driven or discarded"),
          as_json: bool = typer.Option(False, "--json", help="one JSON document per letter (for scripts)")) -> None:
    """Dead letters grouped by reason, with counts of what operators did so far."""
    kafka = _kafka()
    history = audit.history(kafka)
    handled = audit.handled(history)
    chosen = _select(kafka, topic, [], None, all_, handled)
    if as_json:
        for m in chosen:
            action = handled.get(m.id)
            print(json.dumps({"id": m.id, "reason": m.reason, "group": m.group, "origin_topic": m.origin_topic,
                              "origin_partition": m.origin_partition, "origin_offset": m.origin_offset,
                              "redrives": m.redrives, "handled": action.action if action else None,
                              "body": m.body()},
                             default=str))
        return
    table = Table("dead-letter topic", "reason", "letters", "oldest", "example id", title="dead letters")
    per_topic: dict[str, list[Letter]] = {}
    for m in chosen:
        per_topic.setdefault(m.dlq_topic, []).append(m)
    for t, ms in per_topic.items():
        for reason, group in letters.group_by_reason(ms).items():
            table.add_row(t, reason, str(len(group)), str(min(x.offset for x in group)), group[0].id)
    out.print(table)
    done = audit.counts(history)
    out.print(f"pending: {sum(1 for m in chosen if m.id not in handled)}; re-driven so far: {done['redrive']}; "
              f"discarded so far: {done['discard']}")


@app.command()
def show(letter_id: str = typer.Argument(..., help="topic:partition:offset, as `cdc dlq list` prints it"),
         as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """One dead letter: origin, reason, headers, decoded body, and whether it was handled."""
    kafka = _kafka()
    handled = audit.handled(audit.history(kafka))
    m = _select(kafka, letter_id.rsplit(":", 2)[0], [letter_id], None, True, handled)[0]
    done = handled.get(m.id)
    doc = {"id": m.id, "reason": m.reason, "worker": m.worker,
           "origin": {"topic": m.origin_topic, "partition": m.origin_partition, "offset": m.origin_offset},
           "key": m.key.decode(errors="replace") if m.key is not None else None,
           "headers": {k: (v.decode(errors="replace") if v is not None else None) for k, v in m.headers},
           "redrives": m.redrives, "body": m.body(),
           "handled": None if done is None else {"action": done.action, "who": done.who, "why": done.why,
                                                  "at": done.at}}
    if as_json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        out.print_json(json.dumps(doc, default=str))


def _print_plans(plans: list[redrive.Plan]) -> None:
    table = Table("letter", "reason", "to", "what happens", title="re-drive plan")
    for p in plans:
        table.add_row(p.letter.id, p.letter.reason[:60], p.target,
                      f"[yellow]refused: {p.refused}[/yellow]" if p.refused else p.effect)
    out.print(table)


@app.command("redrive")
def redrive_cmd(topic: str | None = typer.Argument(None, help="one dead-letter topic (default: all)"),
                ids: list[str] = typer.Option([], "--id", help="a letter's id (repeatable)"),
                group: str | None = typer.Option(None, "--reason", help="every pending letter of this reason group"),
                all_: bool = typer.Option(False, "--all", help="every pending letter (of TOPIC)"),
                why: str = typer.Option("", "--why", help="recorded with the action"),
                who: str = typer.Option(getpass.getuser(), "--who", help="recorded with the action"),
                yes: bool = typer.Option(False, "--yes", help="act; without it this is a dry run")) -> None:
    """Send letters back to the topic and partition they came from (dry run unless --yes)."""
    if not (ids or group or all_):
        raise typer.BadParameter("choose letters: --id ID, --reason TEXT or --all")
    kafka = _kafka()
    handled = audit.handled(audit.history(kafka))
    plans = redrive.plan(_select(kafka, topic, ids, group, False, handled), handled)
    _print_plans(plans)
    if not yes:
        out.print(f"dry run: {sum(p.refused is None for p in plans)} would be re-driven; add --yes to do it")
        return
    done = redrive.redrive(kafka, plans, who, why or "re-driven by hand")
    out.print(f"re-driven: {len(done)}; refused: {sum(p.refused is not None for p in plans)}")
    if any(p.refused is not None for p in plans):
        raise typer.Exit(1)


@app.command("discard")
def discard_cmd(topic: str | None = typer.Argument(None, help="one dead-letter topic (default: all)"),
                ids: list[str] = typer.Option([], "--id", help="a letter's id (repeatable)"),
                group: str | None = typer.Option(None, "--reason", help="every pending letter of this reason group"),
                all_: bool = typer.Option(False, "--all", help="every pending letter (of TOPIC)"),
                why: str = typer.Option(..., "--why", help="why it is given up on (recorded)"),
                who: str = typer.Option(getpass.getuser(), "--who", help="recorded with the action"),
                yes: bool = typer.Option(False, "--yes", help="act; without it this is a dry run")) -> None:
    """Give letters up, with a reason (dry run unless --yes)."""
    if not (ids or group or all_):
        raise typer.BadParameter("choose letters: --id ID, --reason TEXT or --all")
    kafka = _kafka()
    handled = audit.handled(audit.history(kafka))
    chosen = _select(kafka, topic, ids, group, False, handled)
    for m in chosen:
        out.print(f"{m.id}  {m.reason[:100]}")
    if not yes:
        out.print(f"dry run: {len(chosen)} would be discarded; add --yes to do it")
        return
    done = redrive.discard(kafka, chosen, handled, who, why)
    out.print(f"discarded: {len(done)}")
