"""`optterm creds` and `optterm doctor`: credentials in, diagnostics out — never a secret shown."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer

from optterm.cli.context import load_settings
from optterm.cli.errors import UsageProblem

__all__ = ["creds_app", "doctor", "doctor_report", "file_report"]

creds_app = typer.Typer(
    help="Store, show (masked) or delete broker credentials.", no_args_is_help=True
)

_PROVIDERS = ("angelone",)


def _check(provider: str) -> None:
    if provider not in _PROVIDERS:
        raise UsageProblem(
            f"no credentials are needed for {provider!r}; credentials exist for: "
            + ", ".join(_PROVIDERS)
        )


@creds_app.command("set")
def creds_set(provider: Annotated[str, typer.Argument(help="angelone")]) -> None:
    """Ask for the API key, client code, MPIN and TOTP secret; keep them in the OS keyring."""
    _check(provider)
    from optterm.infra.secrets import (
        AngelCredentials,
        CredentialError,
        SecretStore,
        SecretStoreError,
        make_totp,
        normalise_totp_secret,
    )

    api_key = typer.prompt("SmartAPI API key", hide_input=True)
    client = typer.prompt("Client code")
    mpin = typer.prompt("MPIN", hide_input=True)
    secret = typer.prompt("TOTP secret (base32, from the enable-totp page)", hide_input=True)
    try:
        secret = normalise_totp_secret(secret)
        creds = AngelCredentials(api_key=api_key, client_code=client, mpin=mpin, totp_secret=secret)
        code = make_totp(creds.totp_secret).now()
        where = SecretStore().save(creds)
    except (CredentialError, SecretStoreError) as exc:
        raise UsageProblem(str(exc)) from None
    # The code is not a secret worth keeping: it expires in 30 s, and comparing it with the
    # authenticator app is how the user knows the secret was typed right.
    typer.echo(
        f"Saved to {where}. Current TOTP code: {code} — check it matches your authenticator."
    )


@creds_app.command("show")
def creds_show(provider: Annotated[str, typer.Argument(help="angelone")],
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:  # fmt: skip
    """Where each credential comes from, masked."""
    _check(provider)
    from optterm.infra.secrets import SecretStore

    info = SecretStore().describe()
    if as_json:
        import json

        typer.echo(json.dumps(info, indent=2, default=str))
        return
    note = "" if info["keyring_usable"] else f" (not used: {info['keyring_note']})"
    typer.echo(f"keyring backend: {info['keyring_backend']}{note}")
    typer.echo(f"in use: {info['source'] or 'none — credentials incomplete'}")
    for field, sources in info["fields"].items():
        typer.echo(
            f"  {field:<12} {'●●●●●●  from ' + ', '.join(sources) if sources else 'missing'}"
        )
    typer.echo(f"session tokens kept in: {info['tokens_kept_in']}")


@creds_app.command("delete")
def creds_delete(provider: Annotated[str, typer.Argument(help="angelone")]) -> None:
    """Remove the stored credentials and session tokens from the keyring."""
    _check(provider)
    from optterm.infra.secrets import SecretStore, SecretStoreError

    try:
        removed = SecretStore().delete()
    except SecretStoreError as exc:
        raise UsageProblem(str(exc)) from None
    typer.echo(f"Removed {removed} keyring entr{'y' if removed == 1 else 'ies'}.")


def doctor(ctx: typer.Context) -> None:
    """Which secret store is in use, what is missing, and which providers can be built."""
    lines, ok = doctor_report(load_settings(ctx))
    for line in lines:
        typer.echo(line)
    raise typer.Exit(0 if ok else 1)


def doctor_report(settings: Any) -> tuple[list[str], bool]:
    """Lines to print and whether everything configured can be used."""
    from optterm.infra.secrets import SecretStore
    from optterm.providers.factory import ProviderUnavailable, build_one

    lines: list[str] = []
    ok = True
    info = SecretStore().describe()
    note = "" if info["keyring_usable"] else f" — not used: {info['keyring_note']}"
    lines.append(f"secret store: keyring backend {info['keyring_backend']}{note}")
    if info["source"]:
        lines.append(f"angelone credentials: complete, from {info['source']}")
    else:
        lines.append("angelone credentials: missing " + ", ".join(info["missing"] or ["—"]))
    for name in settings.providers.order:
        try:
            build_one(settings, name)
            lines.append(f"provider {name}: can be built")
        except ProviderUnavailable as exc:
            ok = False
            lines.append(f"provider {name}: UNAVAILABLE — {exc}")
    lines.extend(holiday_report(settings))
    lines.extend(file_report(settings))
    return lines, ok


def file_report(settings: Any) -> list[str]:
    """Who may read optterm's files, and a WARNING for each that others can read although it
    holds secrets (a config with channel tokens or a database password) or the user's history
    and rules (a world-readable database or log; a group-readable one unless
    `[store] file_mode = "group"` shares it on purpose)."""
    import stat

    from sqlalchemy.engine import make_url

    from optterm.infra import paths
    from optterm.infra.filemode import FileMode, readable_by
    from optterm.store.db import resolve_url

    mode = settings.store.files
    lines = [f"file mode: {mode.value} (new folders {mode.dir_bits:o}, files {mode.file_bits:o})"]
    source = settings.source
    if source is not None and (who := readable_by(source)) is not None:
        held = []
        if settings.notify.channels:
            held.append("notification channel URLs (their tokens are secrets)")
        with contextlib.suppress(Exception):
            if make_url(settings.store.effective_url).password:
                held.append("the database password")
        if held:
            lines.append(
                f"WARNING: the config file {source} is readable by {who} "
                f"(mode {stat.S_IMODE(source.stat().st_mode):o}) and holds {' and '.join(held)}."
                f" Run: chmod 600 {source}"
            )
    db = None
    with contextlib.suppress(Exception):
        db = resolve_url(settings.store.effective_url).path
    files = [] if db is None else [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm"))]
    files.append(paths.log_dir() / "optterm.log")
    fix = "640" if mode is FileMode.GROUP else "600"
    for path in files:
        who = readable_by(path)
        if who == "everyone" or (who is not None and mode is FileMode.PRIVATE):
            shared = (
                ' (or, to share it with the group on purpose, set [store] file_mode = "group")'
                if who == "its group"
                else ""
            )
            bits = stat.S_IMODE(path.stat().st_mode)
            lines.append(
                f"WARNING: {path} is readable by {who} (mode {bits:o}): other users of this "
                "machine can read your history, alert rules and channel names. "
                f"Run: chmod {fix} {path}{shared}"
            )
    if mode is FileMode.GROUP and db is not None and db.exists() and readable_by(db) is None:
        # Existing files keep their mode: switching to group mode shares nothing by itself.
        lines.append(
            f'NOTE: [store] file_mode = "group", but {db} was created private and stays so. '
            f"To share it: chgrp -R GROUP {db.parent} && chmod 2750 {db.parent} && "
            f"chmod 640 {db}*"
        )
    return lines


def holiday_report(settings: Any, now: Any = None) -> list[str]:
    """The NSE holiday lists known, whether they are refreshed, and a WARNING when this year's
    is missing or incomplete (not a failure of doctor: optterm runs, on a calendar that may be
    wrong on the missing days)."""
    from optterm.market import utc_now
    from optterm.providers.nse.holidays import cache_path, known_lists, refreshes, year_warning

    lists = known_lists()
    lines = ["holiday lists (NSE F&O):" + ("" if lists else " none")]
    for year, listed in sorted(lists.items()):
        state = "complete" if listed.complete else "INCOMPLETE"
        lines.append(f"  {year}: {len(listed.days)} weekday holidays, {state} — {listed.source}")
    if settings.market.holidays:
        lines.append(f"  plus {len(settings.market.holidays)} from [market] holidays")
    if refreshes(settings):
        lines.append(f"  refreshed from NSE once a day by the poller; cache {cache_path()}")
    else:
        lines.append("  not refreshed: no live provider (nse or angelone) is configured")
    year = (now or utc_now()).astimezone(settings.market.tz).year
    warning = year_warning(lists, year, settings.market.holidays)
    if warning is not None:
        lines.append(f"WARNING: {warning}")
    return lines + segment_holiday_report(settings, year)


def segment_holiday_report(settings: Any, year: int) -> list[str]:
    """The shipped MCX and NSE CDS lists of the watched segments, with a WARNING when this
    year's is missing or incomplete (MCX's closes only some sessions on many holidays, so its
    list ships incomplete until the exchange's full one is added)."""
    from optterm.market import (
        CDS_LISTS,
        COMMODITY,
        MCX_LISTS,
        segment_of,
        segment_year_warning,
        shipped_holidays,
    )

    lines: list[str] = []
    segments = dict.fromkeys(s for w in settings.poller.watch if (s := segment_of(w.symbol)))
    for segment in segments:
        label, prefix = ("MCX", MCX_LISTS) if segment == COMMODITY else ("NSE CDS", CDS_LISTS)
        lists = shipped_holidays(prefix)
        lines.append(f"holiday lists ({label}):" + ("" if lists else " none"))
        for y, listed in sorted(lists.items()):
            state = "complete" if listed.complete else "INCOMPLETE"
            split = len(listed.sessions)
            one = f" and {split} with one session closed" if split else ""
            lines.append(
                f"  {y}: {len(listed.days)} weekday holidays{one}, {state} — {listed.source}"
            )
        warning = segment_year_warning(segment, year)
        if warning is not None:
            lines.append(f"WARNING: {warning}")
    return lines
