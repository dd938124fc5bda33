-- tickflow's tick store. One schema, two engines:
--   * TimescaleDB present (docker-compose, Kubernetes): `trades` and `quotes` are hypertables;
--     the candle views are continuous aggregates, created by the sink after the migrations
--     (their DDL cannot run inside a transaction; see src/schema.rs).
--   * Plain PostgreSQL (the test machines): `trades` and `quotes` are range-partitioned by day,
--     partitions created ahead of the data by the sink; one-minute candles are kept by the sink
--     in the same transaction as the rows, and the longer timeframes are views over them.
-- The unique keys make redelivery and re-backfill idempotent (INSERT ... ON CONFLICT DO NOTHING).
-- `time` is timestamptz (microseconds); `time_ns` keeps the venue's nanoseconds and is part of the
-- key (OANDA stamps prices in ns: two prices in one microsecond are two rows). The key includes
-- `time` because a partitioned table's unique keys must contain the partition column.

DO $$
DECLARE
    timescale boolean := EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb');
    tail text := CASE WHEN timescale THEN '' ELSE ' PARTITION BY RANGE (time)' END;
BEGIN
    IF timescale THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;

    EXECUTE 'CREATE TABLE trades (
        time         timestamptz NOT NULL,
        source       text        NOT NULL,
        symbol       text        NOT NULL,
        venue_symbol text        NOT NULL,
        price        numeric     NOT NULL,
        size         numeric     NOT NULL,
        side         text        NOT NULL CHECK (side IN (''buy'', ''sell'', ''unknown'')),
        trade_id     text        NOT NULL,
        received_at  timestamptz NOT NULL,
        time_ns      bigint      NOT NULL,
        received_ns  bigint      NOT NULL,
        stored_at    timestamptz NOT NULL DEFAULT now(),
        UNIQUE (source, symbol, time, time_ns, trade_id)
    )' || tail;

    EXECUTE 'CREATE TABLE quotes (
        time         timestamptz NOT NULL,
        source       text        NOT NULL,
        symbol       text        NOT NULL,
        venue_symbol text        NOT NULL,
        bid          numeric     NOT NULL,
        ask          numeric     NOT NULL,
        bid_size     numeric     NOT NULL,
        ask_size     numeric     NOT NULL,
        sequence     bigint      NOT NULL,
        indicative   boolean     NOT NULL,
        received_at  timestamptz NOT NULL,
        time_ns      bigint      NOT NULL,
        received_ns  bigint      NOT NULL,
        stored_at    timestamptz NOT NULL DEFAULT now(),
        UNIQUE (source, symbol, time, time_ns, sequence)
    )' || tail;

    IF timescale THEN
        PERFORM create_hypertable('trades', 'time', chunk_time_interval => interval '1 day');
        PERFORM create_hypertable('quotes', 'time', chunk_time_interval => interval '1 day');
    END IF;
END
$$;

-- Live feeds: intervals in which ticks may be missing.
CREATE TABLE gaps (
    source      text        NOT NULL,
    symbol      text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('trade', 'quote')),
    from_time   timestamptz NOT NULL,
    to_time     timestamptz NOT NULL,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    detected_at timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, symbol, kind, from_time, to_time)
);
CREATE INDEX gaps_by_time ON gaps (source, symbol, from_time);

-- Historical data: per hour, complete (with its tick count), closed (market shut) or missing.
-- The latest marker of an hour wins (a refill turns `missing` into `complete`).
CREATE TABLE coverage (
    source      text        NOT NULL,
    symbol      text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('trade', 'quote')),
    hour        timestamptz NOT NULL,
    status      text        NOT NULL CHECK (status IN ('complete', 'closed', 'missing', 'unspecified')),
    ticks       bigint      NOT NULL,
    detail      text        NOT NULL,
    recorded_at timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, symbol, kind, hour)
);

-- One-minute candles kept by the sink on plain PostgreSQL (on TimescaleDB the continuous
-- aggregates of the same names replace them; these tables then stay empty and unused).
-- open/close carry the (time in ns, key) they came from, so late rows land in the right place.
CREATE TABLE trade_candles_1m_store (
    bucket      timestamptz NOT NULL,
    source      text        NOT NULL,
    symbol      text        NOT NULL,
    open        numeric     NOT NULL,
    open_ns     bigint      NOT NULL,
    open_key    text        NOT NULL,
    high        numeric     NOT NULL,
    low         numeric     NOT NULL,
    close       numeric     NOT NULL,
    close_ns    bigint      NOT NULL,
    close_key   text        NOT NULL,
    volume      numeric     NOT NULL,
    trades      bigint      NOT NULL,
    PRIMARY KEY (source, symbol, bucket)
);

CREATE TABLE quote_candles_1m_store (
    bucket      timestamptz NOT NULL,
    source      text        NOT NULL,
    symbol      text        NOT NULL,
    bid_open    numeric     NOT NULL,
    bid_high    numeric     NOT NULL,
    bid_low     numeric     NOT NULL,
    bid_close   numeric     NOT NULL,
    ask_open    numeric     NOT NULL,
    ask_high    numeric     NOT NULL,
    ask_low     numeric     NOT NULL,
    ask_close   numeric     NOT NULL,
    open_ns     bigint      NOT NULL,
    open_seq    bigint      NOT NULL,
    close_ns    bigint      NOT NULL,
    close_seq   bigint      NOT NULL,
    ticks       bigint      NOT NULL,
    PRIMARY KEY (source, symbol, bucket)
);
