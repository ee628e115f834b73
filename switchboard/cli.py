"""The `switchboard` command: serve, demo, migrate, create-user, settings.

Bad input ends with one readable line on stderr and exit status 2; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard import accounts, migrate
from switchboard.audit import SYSTEM
from switchboard.db import create_engine, create_sessionmaker, transaction
from switchboard.errors import DomainError
from switchboard.permissions import Role
from switchboard.redact import configure_logging, redact_url
from switchboard.settings import Settings

log = logging.getLogger("switchboard")

DEMO_BRANCH = "Chișinău Centru"
DEMO_USERS: tuple[tuple[str, Role, str], ...] = (
    ("admin", Role.ADMIN, "Ana Administrator"),
    ("supervisor", Role.SUPERVISOR, "Sergiu Supervizor"),
    ("expert1", Role.AGENT, "Elena Expert"),
    ("expert2", Role.AGENT, "Victor Expert"),
    ("marketer", Role.MARKETER, "Maria Marketing"),
)


class CliError(Exception):
    """A problem the person at the terminal can fix; printed as one line."""


def _load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"SWITCHBOARD_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise CliError(f"invalid settings: {problems}") from None


async def _migrate(settings: Settings) -> None:
    try:
        await migrate.upgrade(settings.database_url)
    except (OSError, SQLAlchemyError) as exc:
        raise CliError(f"cannot migrate {redact_url(settings.database_url)}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _serve(settings: Settings) -> None:
    from switchboard.app import build_app  # the web stack loads only for commands that serve

    try:
        settings.secret  # noqa: B018 - create or read the key now: a bad key must fail before listening
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    app = build_app(settings)
    print(f"Switchboard listening on http://{settings.host}:{settings.port}", flush=True)
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    except OSError as exc:
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None


def cmd_serve(args: argparse.Namespace) -> None:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = _load_settings(**overrides)
    configure_logging(settings.log_level)
    if settings.auto_migrate:
        asyncio.run(_migrate(settings))
    _serve(settings.model_copy(update={"auto_migrate": False}))


async def seed_demo(settings: Settings) -> list[tuple[str, str, Role]]:
    """Creates the demo branch and users, giving each a fresh password (returned, to be printed)."""
    engine = create_engine(settings.database_url)
    credentials: list[tuple[str, str, Role]] = []
    try:
        sessions = create_sessionmaker(engine)
        async with transaction(sessions) as db:
            branch = await accounts.get_or_create_branch(db, DEMO_BRANCH)
            existing = {u.username: u for u in await accounts.list_users(db)}
            for username, role, name in DEMO_USERS:
                password = secrets.token_urlsafe(9)
                if username in existing:
                    await accounts.update_user(
                        db, SYSTEM, existing[username].id, password=password, active=True
                    )
                else:
                    await accounts.create_user(
                        db,
                        SYSTEM,
                        username=username,
                        password=password,
                        role=role,
                        full_name=name,
                        branch=branch.name,
                    )
                credentials.append((username, password, role))
            await _seed_demo_widget(db, branch.id, settings.port)
            await _seed_demo_script(db, settings.default_region)
    finally:
        await engine.dispose()
    return credentials


async def _seed_demo_widget(db: AsyncSession, branch_id: int, port: int) -> None:
    """The website chat widget of the demo site (`/demo/site`), made once; later starts leave it (and any
    change made to it in the admin pages) as it is."""
    from channels import webchat  # the channel rooms load only for the demo

    if await webchat.find_widget_named(db, webchat.DEMO_WIDGET_NAME, active_only=False) is None:
        await webchat.create_widget(
            db,
            actor=SYSTEM,
            name=webchat.DEMO_WIDGET_NAME,
            allowed_origins=webchat.demo_origins(port),
            greeting="Bună ziua! Cu ce vă putem ajuta?",
            branch_id=branch_id,
        )


async def _seed_demo_script(db: AsyncSession, region: str) -> None:
    """The demo sales script (scripts_engine/demo), published; unchanged on later starts."""
    from switchboard.scripts_crm import seed_demo_script  # the CRM rooms load only for the demo

    await seed_demo_script(db, SYSTEM, region)


def cmd_demo(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir)
    overrides: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'demo.db'}",
        "bus": "memory",
        "demo": True,
    }
    if args.port:
        overrides["port"] = args.port
    settings = _load_settings(**overrides)
    configure_logging(settings.log_level)
    asyncio.run(_migrate(settings))
    credentials = asyncio.run(seed_demo(settings))
    print("Demo users (passwords are new at every start):")
    for username, password, role in credentials:
        print(f"  {role.value:<11} {username:<11} {password}")
    print(f"Demo website with the chat widget: http://{settings.host}:{settings.port}/demo/site")
    _serve(settings.model_copy(update={"auto_migrate": False}))


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = _load_settings()
    configure_logging(settings.log_level)
    asyncio.run(_migrate(settings))
    print(f"Database at {redact_url(settings.database_url)} is up to date.")


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CliError("the passwords do not match")
    else:
        raise CliError("no terminal to ask for a password: pipe it in with --password-stdin")
    return password


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with transaction(create_sessionmaker(engine)) as db:
            user = await accounts.create_user(
                db,
                SYSTEM,
                username=args.username,
                password=password,
                role=args.role,
                full_name=args.full_name or "",
                email=args.email,
                branch=args.branch,
            )
            return user.id
    except DomainError as exc:
        raise CliError(exc.message % exc.params if exc.params else exc.message) from None
    except OperationalError as exc:
        raise CliError(f"database error: {_first_line(exc)} (did you run `switchboard migrate`?)") from None
    finally:
        await engine.dispose()


def cmd_create_user(args: argparse.Namespace) -> None:
    settings = _load_settings()
    configure_logging("WARNING")
    password = _read_password(args)
    user_id = asyncio.run(_create_user(settings, args, password))
    print(f"Created {args.role} {accounts.normalise_username(args.username)} (id {user_id}).")


def cmd_settings(args: argparse.Namespace) -> None:
    for name, value in _load_settings().safe_dump().items():
        print(f"SWITCHBOARD_{name.upper()}={value if value is not None else ''}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Switchboard contact-center hub")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the hub (migrates first unless SWITCHBOARD_AUTO_MIGRATE=false)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="seed a demo SQLite database and serve it")
    demo.add_argument("--data-dir", default="./var")
    demo.add_argument("--port", type=int)
    demo.set_defaults(func=cmd_demo)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    create = sub.add_parser(
        "create-user", help="create a user (password asked, or read with --password-stdin)"
    )
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--branch")
    create.add_argument("--full-name")
    create.add_argument("--email")
    create.add_argument("--password-stdin", action="store_true")
    create.set_defaults(func=cmd_create_user)

    sub.add_parser("settings", help="print the effective settings, secrets masked").set_defaults(
        func=cmd_settings
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as exc:
        print(f"switchboard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
