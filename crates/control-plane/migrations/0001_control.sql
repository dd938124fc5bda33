-- The control plane's state, in schema `control` (the sink owns `public`).
CREATE TABLE symbols (
    symbol     text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE symbol_sources (
    symbol        text        NOT NULL REFERENCES symbols (symbol) ON DELETE CASCADE,
    source        text        NOT NULL CHECK (source IN ('kraken', 'oanda', 'dukascopy')),
    history_start date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, source)
);
CREATE INDEX symbol_sources_by_source ON symbol_sources (source, symbol);

CREATE TABLE backfill_jobs (
    id            uuid        PRIMARY KEY,
    symbol        text        NOT NULL,
    source        text        NOT NULL,
    from_time     timestamptz NOT NULL,
    to_time       timestamptz NOT NULL,
    state         text        NOT NULL CHECK (state IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    hours_total   integer     NOT NULL,
    hours_done    integer     NOT NULL DEFAULT 0,
    hours_failed  integer     NOT NULL DEFAULT 0,
    hours_missing integer     NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backfill_jobs_by_symbol ON backfill_jobs (symbol, created_at);
