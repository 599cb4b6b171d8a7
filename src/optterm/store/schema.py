"""Table definitions (SQLAlchemy Core) — the live mirror of the Alembic migrations.

Migrations in `migrations/versions/` are frozen copies of history and never import this module;
a test checks that upgrading an empty database to head yields exactly this metadata.

Portability rules (PostgreSQL comes later): Core types only, timestamps as integer epoch
microseconds UTC (no timezone-dependent column types), dates as `Date`, blobs as `LargeBinary`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

__all__ = [
    "METRIC_FLOATS",
    "alert_events",
    "alert_rules",
    "alert_state",
    "backtests",
    "chains",
    "daily_spot",
    "daily_strikes",
    "jobs",
    "leases",
    "metadata",
    "metrics",
    "outbox",
    "provider_health",
    "scan_events",
    "scan_runs",
    "scans",
    "signals",
    "snapshot_blocks",
    "snapshots",
    "store_info",
    "strategies",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only makes INTEGER PRIMARY KEY the rowid alias; PostgreSQL wants a BIGINT identity.
_Id = BigInteger().with_variant(Integer(), "sqlite")

# One-row-per-key facts about this database (application name, creation time, …). Lets open_store
# tell an optterm database from any other SQLite/Alembic file before touching it.
store_info = Table(
    "store_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row per stored chain snapshot. The chain itself is `data` (see store/codec.py); the other
# columns are what lists, charts and retention need without decoding a blob.
snapshots = Table(
    "snapshots",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("symbol", String(32), nullable=False),
    Column("expiry", Date, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("feed", String(16), nullable=False),
    Column("provider_ts", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("fetched_at", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("spot", Double, nullable=True),  # NULL = NaN (SQLite cannot store NaN)
    Column("lot_size", Integer, nullable=False),
    Column("n_strikes", Integer, nullable=False),
    # Sums over the strikes stored, which may be a window of the chain: the whole chain's totals
    # (what PCR and every chain figure are over) are in `metrics`, and that is what is read.
    Column("ce_oi_total", Double, nullable=True),
    Column("pe_oi_total", Double, nullable=True),
    Column("ce_volume_total", Double, nullable=True),
    Column("pe_volume_total", Double, nullable=True),
    Column("meta", Text, nullable=True),  # JSON object of str → str; NULL when empty
    Column("data", LargeBinary, nullable=False),
    # Added in revision 0007 (NULL in older rows): the underlying's previous close, and a JSON
    # object with the futures and India VIX quotes and the listed expiries (store/snapshots.py).
    Column("prev_close", Double, nullable=True),
    Column("context", Text, nullable=True),
    # Added in revision 0014: the time block (snapshot_blocks) holding this snapshot's chain,
    # meta and context, its own `data` then empty; NULL while the row holds them itself.
    Column("block_id", BigInteger, nullable=True),
    # The (symbol, expiry, provider_ts) prefix serves every range read; with provider it also
    # makes a duplicate write impossible even if two processes ever race.
    Index(
        "ux_snapshots_symbol_expiry_ts", "symbol", "expiry", "provider_ts", "provider", unique=True
    ),
    # A chain's rows not yet in a block, found without reading the rest of its history.
    Index(
        "ix_snapshots_unblocked",
        "symbol",
        "expiry",
        "provider",
        "provider_ts",
        sqlite_where=text("block_id IS NULL"),
        postgresql_where=text("block_id IS NULL"),
    ),
    # Ids never go back after a purge, so "snapshots with id > N" is a safe way to follow the store.
    sqlite_autoincrement=True,
)

# Consecutive snapshots of one chain coded together (store/blockcodec.py): what a snapshot row
# points at with block_id. first_ts/last_ts bound its members' provider_ts.
snapshot_blocks = Table(
    "snapshot_blocks",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("symbol", String(32), nullable=False),
    Column("expiry", Date, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("first_ts", BigInteger, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    Column("members", Integer, nullable=False),
    # The block split where its head ends (blockcodec.head_length), the head first in the row:
    # a strike's OI series reads `head` alone, never the pages of `data`.
    Column("head", LargeBinary, nullable=False),
    Column("data", LargeBinary, nullable=False),
    # A chain's blocks over a time range (a strike's series); also what a purge deletes.
    Index("ix_snapshot_blocks_symbol_expiry_last_ts", "symbol", "expiry", "last_ts"),
    sqlite_autoincrement=True,
)

# Every (symbol, expiry, provider) that has snapshots: one row per chain, written once when its
# first snapshot is stored (not on every write). "Latest chain" reads this small table, then
# seeks max(provider_ts) per expiry on the snapshots index — no GROUP BY over history.
chains = Table(
    "chains",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("expiry", Date, primary_key=True),
    Column("provider", String(32), primary_key=True),
    Column("first_ts", BigInteger, nullable=False),  # provider_ts of its first snapshot
)

# Per provider and exchange-local day: what the failover saw. Upserted once per tick by the poller
# that owns the store, read by `optterm providers`, the TUI and monitoring.
provider_health = Table(
    "provider_health",
    metadata,
    Column("day", Date, primary_key=True),
    Column("provider", String(32), primary_key=True),
    Column("requests", Integer, nullable=False),
    Column("successes", Integer, nullable=False),
    Column("failures", Text, nullable=False),  # JSON object: error kind -> count
    Column("latency_ms_sum", Double, nullable=False),  # over successes; mean = sum / successes
    Column("latency_ms_last", Double, nullable=True),
    Column("breaker", String(16), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", BigInteger, nullable=True),  # epoch microseconds, UTC
    Column("updated_at", BigInteger, nullable=False),  # epoch microseconds, UTC
)

# The float fields of `optterm.model.Metrics`, in column order. NULL = NaN (or None for the two
# IV-history fields, which are None until enough history exists).
METRIC_FLOATS = (
    "spot",
    "forward",
    "t_years",
    "ce_oi",
    "pe_oi",
    "ce_oi_change",
    "pe_oi_change",
    "ce_volume",
    "pe_volume",
    "pcr_oi",
    "pcr_volume",
    "pcr_oi_change",
    "max_pain",
    "support",
    "resistance",
    "support_change",
    "resistance_change",
    "atm_strike",
    "atm_iv",
    "straddle",
    "rr25",
    "gex",
    "gamma_flip",
    "call_wall",
    "put_wall",
    "iv_rank",
    "iv_percentile",
)

# Chain-level analytics: one row per stored chain snapshot (ts = its provider_ts). The primary key
# serves "series of one expiry over a time range"; (symbol, ts) serves "latest for a symbol".
metrics = Table(
    "metrics",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("expiry", Date, primary_key=True),
    Column("ts", BigInteger, primary_key=True),  # epoch microseconds, UTC
    Column("provider", String(32), nullable=False),
    Column("feed", String(16), nullable=False),
    Column("forward_source", String(16), nullable=False),
    *(Column(name, Double, nullable=True) for name in METRIC_FLOATS),
    Column("view_bias", String(16), nullable=False),
    Column("view_score", Double, nullable=True),
    Column("view_reasons", Text, nullable=False),  # JSON list of strings
    Index("ix_metrics_symbol_ts", "symbol", "ts"),
)

# Detected patterns, one row per signal key (kind, chain and anchor strike): a pattern that
# persists across ticks updates its row; first_seen stays that of the first insert.
signals = Table(
    "signals",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("expiry", Date, nullable=False),
    Column("direction", String(16), nullable=False),
    Column("strikes", Text, nullable=False),  # JSON list of floats
    Column("confidence", Integer, nullable=False),
    Column("strength", String(16), nullable=False),
    Column("evidence", Text, nullable=False),  # JSON list of [name, value] pairs
    Column("summary", Text, nullable=False),
    Column("first_seen", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("last_seen", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("expires_at", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("updates", Integer, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("feed", String(16), nullable=False),
    Index("ix_signals_symbol_last_seen", "symbol", "last_seen"),
    Index("ix_signals_expires_at", "expires_at"),
)

# Alert rules. `channels` holds references ("app", "tag:NAME", "keyring:ID"), never Apprise URLs:
# those carry tokens and live in the config or the secret store. `updated_at` lets a running
# daemon pick up edits made from another process.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(64), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("condition", String(16), nullable=False),
    Column("threshold", Double, nullable=False),
    Column("expiry", Date, nullable=True),
    Column("strike", Double, nullable=True),
    Column("side", String(2), nullable=True),
    Column("metric", String(16), nullable=False),
    Column("pattern", String(32), nullable=True),
    Column("hysteresis", Double, nullable=False),
    Column("tolerance", Double, nullable=False),
    Column("window_s", Double, nullable=False),
    Column("cooldown_s", Double, nullable=False),
    Column("recurring", Integer, nullable=False),  # 0/1
    Column("active_from", String(5), nullable=True),  # "HH:MM" exchange time; NULL = market hours
    Column("active_to", String(5), nullable=True),
    Column("channels", Text, nullable=False),  # JSON list of channel references
    Column("channel_labels", Text, nullable=False),  # JSON list, redacted for display
    Column("enabled", Integer, nullable=False),  # 0/1
    Column("note", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("updated_at", BigInteger, nullable=False),
    Column("strategy", String(64), nullable=True),  # STRATEGY rules: the saved strategy's name
    Index("ix_alert_rules_symbol", "symbol"),
    # Ids never come back after a delete: a rule's firings (alert_events.rule_id) are never
    # shown under a later rule. PostgreSQL's SERIAL never reuses either.
    sqlite_autoincrement=True,
)

# Evaluation state per rule, so a restart neither re-fires a crossing already fired nor forgets a
# cooldown.
alert_state = Table(
    "alert_state",
    metadata,
    Column("rule_id", Integer, primary_key=True),
    Column("armed", Integer, nullable=False),  # 0/1
    Column("last_value", Double, nullable=True),
    Column("last_fired_at", BigInteger, nullable=True),
    Column("fire_count", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Every firing, with the values that made it fire. No foreign key: history outlives its rule.
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Integer, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("fired_at", BigInteger, nullable=False),  # the data's time, epoch microseconds UTC
    Column("value", Double, nullable=True),
    Column("threshold", Double, nullable=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("feed", String(16), nullable=False),
    Column("context", Text, nullable=False),  # JSON list of [name, value]
    Column("created_at", BigInteger, nullable=False),
    Index("ix_alert_events_rule_fired", "rule_id", "fired_at"),
    Index("ix_alert_events_fired", "fired_at"),
)

# The notification outbox: one row per (event, channel), written in the event's transaction
# before anything is sent. `idempotency_key` is unique per (event, channel).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Integer, nullable=False),
    Column("channel", String(200), nullable=False),  # a reference, never a URL
    Column("channel_label", String(200), nullable=False),  # redacted, for display
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("status", String(10), nullable=False),  # model.Delivery
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("last_error", Text, nullable=True),
    Column("sent_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    Index("ix_outbox_event", "event_id"),
)

# The poller's lease: who may write (one daemon per store). `lease_no` grows on every acquisition
# and every write of the holder carries it, so a stalled former leader cannot write after a
# takeover (fencing). On SQLite the lease itself is a kernel file lock beside the database; this
# row records who holds it.
leases = Table(
    "leases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("lease_no", BigInteger, nullable=False),
    Column("holder", String(200), nullable=False),  # "host:pid"
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("since", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("released_at", BigInteger, nullable=True),
    # What the holder reports with each heartbeat (store/status.py DaemonReport, JSON).
    Column("report", Text, nullable=True),
)

# Every scheduler job run: what ran, when, for how long, and how it ended.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Column("duration_ms", Double, nullable=True),
    Column("outcome", String(16), nullable=False),  # running | ok | failed | skipped
    Column("detail", Text, nullable=False),
    Index("ix_jobs_name_started", "name", "started_at"),
)

# End-of-day summary per strike: the day's closing OI, OI change, volume and price per side.
daily_strikes = Table(
    "daily_strikes",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("expiry", Date, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("strike", Double, primary_key=True),
    Column("ce_oi", Double, nullable=True),
    Column("ce_oi_change", Double, nullable=True),
    Column("ce_volume", Double, nullable=True),
    Column("ce_close", Double, nullable=True),
    Column("pe_oi", Double, nullable=True),
    Column("pe_oi_change", Double, nullable=True),
    Column("pe_volume", Double, nullable=True),
    Column("pe_close", Double, nullable=True),
)

# End-of-day spot OHLC per underlying, from the stored snapshots.
daily_spot = Table(
    "daily_spot",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("open", Double, nullable=False),
    Column("high", Double, nullable=False),
    Column("low", Double, nullable=False),
    Column("close", Double, nullable=False),
    Column("snapshots", Integer, nullable=False),
)

# Saved scans (the scanner's rule language, docs/scanner.md), by unique name.
scans = Table(
    "scans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("text", Text, nullable=False),
    Column("enabled", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Where an entry is notified (JSON lists of channel references and their redacted labels;
    # empty: nobody) and how long the same symbol's next entry stays quiet (seconds).
    Column("channels", Text, nullable=False, server_default="[]"),
    Column("channel_labels", Text, nullable=False, server_default="[]"),
    Column("cooldown_s", Double, nullable=False, server_default="1800"),
)

# One row per run of a scan: when, over how many names, how many matched, and the ranked
# matches (comma-separated, after the scan's limit). By name, so a removed scan keeps its history.
scan_runs = Table(
    "scan_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scan", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("universe", Integer, nullable=False),
    Column("matched", Integer, nullable=False),
    Column("symbols", Text, nullable=False),
    Index("ix_scan_runs_scan_at", "scan", "at"),
)

# The enter/leave log: a name entering or leaving a scan (after its hysteresis).
scan_events = Table(
    "scan_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scan", String(64), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("kind", String(8), nullable=False),  # enter | leave
    Column("at", BigInteger, nullable=False),
    Index("ix_scan_events_scan_at", "scan", "at"),
)

# Backtests (docs/backtest.md): one row per run, the spec as typed and the whole result as JSON
# (figures, trades with the quotes they used, gaps), so a run can be shown again as it was.
backtests = Table(
    "backtests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("symbol", String(32), nullable=False),
    Column("spec", Text, nullable=False),
    Column("span_from", Date, nullable=False),
    Column("span_to", Date, nullable=False),
    Column("trades", Integer, nullable=False),
    Column("net_pnl", Double, nullable=False),
    Column("interrupted", Integer, nullable=False),
    Column("document", Text, nullable=False),
    Index("ix_backtests_created_at", "created_at"),
)

# Saved strategies (store/strategies.py): legs as JSON (kind, expiry, strike, lots, entry price),
# when the entry prices were taken and from which source, the line they were built from.
strategies = Table(
    "strategies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("symbol", String(32), nullable=False),
    Column("legs", Text, nullable=False),
    Column("priced_at", BigInteger, nullable=False),  # epoch microseconds, UTC
    Column("source", String(64), nullable=False),  # "simulator · SIMULATED", "angelone · live"
    Column("line", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
