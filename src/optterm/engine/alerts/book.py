"""The alert book: adding, changing, enabling, disabling, removing and test-sending alert rules.

This is the one place those use cases are written; `optterm alerts` and the TUI's alert form and
Alerts screen all call it, so a rule is checked, its channels kept and it is saved the same way
whichever front end a trader uses. Each front end only turns what was typed into `build_rule`
keyword arguments ("fields") and channel specs, and shows the outcome.

Adding or changing a rule takes four steps, in an order that matters:

1. the rule itself is checked (`build_rule` without channels): a bad rule must not touch the
   keyring;
2. every channel spec is checked (app; tag:NAME against the config and its URL by Apprise; a
   typed URL by Apprise) before any is kept;
3. only then are typed URLs written to the OS keyring (the one step with a side effect outside
   the store) and replaced by their references;
4. the rule is built again with those channels and saved.

Between steps 1 and 2 the rule's expiry and strike are checked against what the symbol lists
(its latest chain in the store): only the market data knows an equity's strike grid.

`draft_rule` runs steps 1 and 2 without any side effect: a preview as the user types, or a
refusal before a store is opened. `send_test_message` sends a test message through a rule's
channels or through channels typed but not saved yet, with one result per channel.

Every problem a person can fix comes out as one error type, `AlertBookError`, whose message says
what is wrong and never holds a channel's URL; `UnknownAlertRule` is the case of an id that is not
in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from optterm.engine.alerts.listed import listing_problem
from optterm.engine.alerts.rules import RuleError, build_rule, rule_summary
from optterm.engine.notify.channels import (
    APP,
    ChannelError,
    parse_channel_spec,
    redact_url,
    resolve_channel,
    validate_url,
)
from optterm.infra.redact import protect_urls
from optterm.infra.secrets import SecretStore
from optterm.model import AlertRule, Channel
from optterm.store.alerts import UnknownRule
from optterm.store.errors import StoreError

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.store import Store

__all__ = [
    "AlertBook",
    "AlertBookError",
    "ChannelResult",
    "UnknownAlertRule",
    "draft_rule",
    "message_for_test",
    "send_test_message",
]

_KEYRING_REF = "keyring:"
_TEST_BODY = "This is a test message; the rule has not fired."


class AlertBookError(ValueError):
    """A rule that cannot be saved, or a change that cannot be made; the message says why and
    how to fix it, for the front end to show as it is."""


class UnknownAlertRule(AlertBookError):
    """The rule id is not in the store (never there, or removed meanwhile)."""

    def __init__(self, rule_id: int) -> None:
        super().__init__(f"no alert rule {rule_id}")
        self.rule_id = rule_id


@dataclass(frozen=True, slots=True)
class ChannelResult:
    """How a test message fared on one channel: ok True (sent), False (not: `error` says why,
    naming the channel by its label only) or None (skipped: in-app alerts show in the TUI).
    `sent`: a send was attempted (False when the channel could not even be read)."""

    label: str
    ok: bool | None
    error: str | None = None
    sent: bool = False


# ------------------------------------------------------------------------------ channel specs


def _is_app(spec: str) -> bool:
    return spec.lower() == APP


def _is_tag(spec: str) -> bool:
    return spec.startswith("tag:")


def _is_url(spec: str) -> bool:
    return "://" in spec and not spec.startswith(_KEYRING_REF)


def _not_a_channel(n: int, spec: str) -> ChannelError:
    """A spec that is none of app, tag:NAME, a URL or one of the rule's own channels (never
    echoed: it may be a pasted token)."""
    if spec.startswith(_KEYRING_REF):
        return ChannelError(
            f"channel {n} ({spec}) is not one of this rule's channels; give the Apprise URL itself"
        )
    return ChannelError(
        f"channel {n} is not app, tag:NAME or an Apprise URL (scheme://…, e.g. "
        "ntfy://ntfy.sh/my-topic)"
    )


def _url_problem(url: str) -> str | None:
    protect_urls([url])  # Apprise may log the URL while it reads it
    return validate_url(url)


def _check_tag(channel: Channel, settings: Settings) -> None:
    """The URL behind tag:NAME must be one Apprise can use: the config may have been checked by
    an older optterm, or changed under a running one. Refused naming the tag, never the URL."""
    url = resolve_channel(channel.ref, settings, None)
    if url is not None and (problem := _url_problem(url)) is not None:
        name = channel.ref.removeprefix("tag:")
        raise ChannelError(
            f"channel {channel.label}: {problem}; fix {name} under [notify] channels in the config"
        )


def _channels_preview(
    settings: Settings, specs: Sequence[str], kept: Mapping[str, str], check_urls: bool
) -> list[Channel]:
    """The channels as they would be stored, with no side effect: a URL is checked (unless
    `check_urls` is False) but not kept, and stands as a placeholder with its redacted label."""
    out: list[Channel] = []
    for n, raw in enumerate(specs, 1):
        spec = raw.strip()
        if _is_app(spec) or _is_tag(spec):
            channel = parse_channel_spec(spec, settings, None)
            if check_urls and _is_tag(spec):
                _check_tag(channel, settings)
            out.append(channel)
        elif spec in kept:
            out.append(Channel(spec, kept[spec]))
        elif _is_url(spec):
            if check_urls and (problem := _url_problem(spec)) is not None:
                raise ChannelError(f"notification channel {redact_url(spec)}: {problem}")
            out.append(Channel(f"url:{n}", redact_url(spec)))
        else:
            raise _not_a_channel(n, spec)
    return out


def draft_rule(
    settings: Settings,
    fields: Mapping[str, Any],
    specs: Sequence[str] | None = None,
    *,
    kept: Mapping[str, str] | None = None,
    check_urls: bool = True,
) -> AlertRule:
    """The rule `fields` (build_rule keyword arguments) and channel `specs` would make, with no
    side effect; AlertBookError saying what is wrong otherwise.

    `specs` None means in-app only. `kept` maps references the rule already has (keyring:ID,
    whose URL only the keyring holds) to their labels: they may stay as they are. A form
    previewing as the user types passes `check_urls=False` until Apprise is loaded (its import
    takes ~0.3 s), leaving the URL check to the save."""
    try:
        rule = build_rule(settings, **fields)  # the rule first, then its channels
        if specs is None:
            return rule
        channels = _channels_preview(settings, specs, kept or {}, check_urls)
        return build_rule(settings, **fields, channels=channels)
    except (RuleError, ChannelError) as exc:
        raise AlertBookError(str(exc)) from None


# ----------------------------------------------------------------------------------- the book


class AlertBook:
    """The alert rules of one store, changed only through the steps in the module docstring."""

    def __init__(
        self, store: Store, settings: Settings, secrets: SecretStore | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self._secrets = secrets

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            self._secrets = SecretStore()
        return self._secrets

    async def get(self, rule_id: int) -> AlertRule:
        """The stored rule; UnknownAlertRule if there is none with that id."""
        with _store_errors():
            rule = await self.store.alerts.get_rule(rule_id)
        if rule is None:
            raise UnknownAlertRule(rule_id)
        return rule

    async def add(
        self,
        fields: Mapping[str, Any],
        specs: Sequence[str] | None = None,
        *,
        kept: Mapping[str, str] | None = None,
    ) -> AlertRule:
        """Save a new rule; returns it with its id and creation time."""
        rule = await self._build(fields, specs, kept or {})
        with _store_errors():
            return await self.store.alerts.add_rule(rule)

    async def update(
        self,
        rule_id: int,
        fields: Mapping[str, Any],
        specs: Sequence[str] | None = None,
        *,
        kept: Mapping[str, str] | None = None,
    ) -> AlertRule:
        """Replace rule `rule_id` by what `fields` and `specs` make. It stays enabled or disabled
        as it is and keeps its creation time; its evaluation state starts afresh (the store
        drops it: it belonged to the old threshold)."""
        current = await self.get(rule_id)
        rule = await self._build(fields, specs, kept or {})
        rule = replace(rule, id=rule_id, enabled=current.enabled, created_at=current.created_at)
        with _store_errors(rule_id):
            return await self.store.alerts.update_rule(rule)

    async def set_enabled(self, rule_id: int, enabled: bool) -> AlertRule:
        """Enable or disable a rule (a one-shot rule that fired can be enabled again); returns
        it as now stored."""
        with _store_errors(rule_id):
            if not await self.store.alerts.set_enabled(rule_id, enabled):
                raise UnknownAlertRule(rule_id)
        return await self.get(rule_id)

    async def remove(self, rule_id: int) -> AlertRule:
        """Delete a rule and its evaluation state (its firings stay in the history); returns the
        rule as it was."""
        rule = await self.get(rule_id)
        with _store_errors(rule_id):
            if not await self.store.alerts.delete_rule(rule_id):
                raise UnknownAlertRule(rule_id)
        return rule

    async def send_test_message(self, rule_id: int) -> tuple[AlertRule, list[ChannelResult]]:
        """Send a test message through every channel of rule `rule_id` now."""
        rule = await self.get(rule_id)
        labels = rule.channel_labels or rule.channels
        kept = {ref: labels[i] if i < len(labels) else ref for i, ref in enumerate(rule.channels)}
        kept.pop(APP, None)
        title, body = message_for_test(rule, rule_id)
        results = await send_test_message(
            self.settings, rule.channels, title, body, kept=kept, secrets=self._secrets
        )
        return rule, results

    async def _build(
        self, fields: Mapping[str, Any], specs: Sequence[str] | None, kept: Mapping[str, str]
    ) -> AlertRule:
        fields = await self._strategy_symbol(fields)
        await self._check_listed(fields)
        # In a thread: checking a URL may import Apprise (~0.3 s) and the keyring may block;
        # neither may stall the TUI's event loop.
        return await asyncio.to_thread(self._build_now, fields, specs, kept)

    async def _strategy_symbol(self, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        """A STRATEGY rule watches a saved strategy: it must be saved, and the rule's symbol
        is its underlying (the session the rule is active in, the chains it is priced on)."""
        name = fields.get("strategy")
        if name is None:
            return fields
        from optterm.store.strategies import UnknownStrategy

        with _store_errors():
            try:
                saved = await self.store.strategies.get(str(name))
            except UnknownStrategy as exc:
                raise AlertBookError(str(exc)) from None
        return {**fields, "symbol": saved.symbol}

    async def _check_listed(self, fields: Mapping[str, Any]) -> None:
        """The rule's expiry and strike against the symbol's latest stored chain, before any
        channel is kept (engine/alerts/listed.py)."""
        rule = draft_rule(self.settings, fields)
        with _store_errors():
            problem = await listing_problem(self.store, rule)
        if problem is not None:
            raise AlertBookError(problem)

    def _build_now(
        self, fields: Mapping[str, Any], specs: Sequence[str] | None, kept: Mapping[str, str]
    ) -> AlertRule:
        rule = draft_rule(self.settings, fields, specs, kept=kept)  # steps 1 and 2
        if specs is None:
            return rule
        try:
            channels = [  # step 3: typed URLs into the keyring, every channel in order
                Channel(spec, kept[spec])
                if spec in kept
                else parse_channel_spec(spec, self.settings, self.secrets)
                for spec in (raw.strip() for raw in specs)
            ]
            return build_rule(self.settings, **fields, channels=channels)  # step 4
        except (RuleError, ChannelError) as exc:
            raise AlertBookError(str(exc)) from None


@contextlib.contextmanager
def _store_errors(rule_id: int | None = None) -> Iterator[None]:
    """Store failures (the database unreachable, a rule removed meanwhile) as AlertBookError."""
    try:
        yield
    except UnknownRule as exc:
        raise UnknownAlertRule(rule_id if rule_id is not None else int(exc.args[0])) from None
    except StoreError as exc:
        raise AlertBookError(str(exc)) from None


# ------------------------------------------------------------------------------ test messages


def message_for_test(rule: AlertRule | None, rule_id: int | None = None) -> tuple[str, str]:
    """(title, body) of a test message for `rule` (saved as `rule_id`, or not saved yet)."""
    title = f"optterm test: alert rule {rule_id}" if rule_id is not None else "optterm test"
    what = rule_summary(rule) if rule is not None else "A test of this alert's channels."
    return title, f"{what}\n{_TEST_BODY}"


def _target(
    n: int, spec: str, settings: Settings, kept: Mapping[str, str], secrets: SecretStore
) -> tuple[str, str | None, str | None]:
    """(label, URL, None) of one channel to test, URL None for in-app; (label, None, why) for
    a channel that cannot be used. Only the URL holds a secret; the label is redacted."""
    label = kept.get(spec) or (redact_url(spec) if _is_url(spec) else f"channel {n}")
    try:
        if spec in kept:  # a stored reference: the URL is in the config or the keyring
            return label, resolve_channel(spec, settings, secrets), None
        if _is_app(spec):
            return "in-app", None, None
        if _is_tag(spec):
            label = parse_channel_spec(spec, settings, None).label
            return label, resolve_channel(spec, settings, None), None
        if not _is_url(spec):
            raise _not_a_channel(n, spec)
        if (problem := _url_problem(spec)) is not None:
            return label, None, problem
        return label, spec, None
    except ChannelError as exc:
        return label, None, str(exc)


async def send_test_message(
    settings: Settings,
    specs: Sequence[str],
    title: str,
    body: str,
    *,
    kept: Mapping[str, str] | None = None,
    secrets: SecretStore | None = None,
) -> list[ChannelResult]:
    """Send a test message to every channel in `specs` (app, tag:NAME, a URL, or a reference
    in `kept`, shown by its label there) at once; one result per channel, in order. A channel
    that cannot be read or reached is its result, never an exception."""
    from optterm.engine.notify.dispatcher import send_now  # Apprise and the outbox: only here

    keyring = secrets if secrets is not None else SecretStore()
    out: list[ChannelResult | None] = []
    targets: list[tuple[str, str]] = []
    for n, raw in enumerate(specs, 1):
        # In a thread: the keyring may block and Apprise's first import takes ~0.3 s.
        label, url, problem = await asyncio.to_thread(
            _target, n, raw.strip(), settings, kept or {}, keyring
        )
        if problem is not None:
            out.append(ChannelResult(label, False, problem))
        elif url is None:
            out.append(ChannelResult(label, None))
        else:
            targets.append((label, url))
            out.append(None)  # the send's result, below
    sent = iter(await send_now(targets, title, body, settings.notify.timeout) if targets else [])
    return [r if r is not None else _sent(next(sent)) for r in out]


def _sent(r: Any) -> ChannelResult:
    return ChannelResult(r.label, r.ok, r.error, sent=True)
