-- The full current schema of a sqlite:// state database. Reference only: databases are built
-- by applying migrations/ in order, and a test checks that the result equals this file.

-- The queue: one row per accepted invocation, kept after it finishes until the retention purge
-- (the worker's retention_seconds) deletes it.
CREATE TABLE invocations (
    -- insertion order: breaks ties between invocations received in the same instant
    seq INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL UNIQUE,
    inference_id TEXT NOT NULL,
    endpoint_name TEXT NOT NULL,
    -- endpoint_name lower-cased: endpoint names compare case-insensitively
    endpoint_key TEXT NOT NULL,
    input_location TEXT,
    body BLOB,
    content_type TEXT,
    accept TEXT,
    custom_attributes TEXT,
    output_location TEXT NOT NULL,
    failure_location TEXT,
    request_ttl_seconds INTEGER NOT NULL,
    invocation_timeout_seconds INTEGER NOT NULL,
    received_at REAL NOT NULL,
    -- received_at + request_ttl_seconds, stored so that finding expired requests is an index seek
    expires_at REAL NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('Queued', 'InProgress', 'Completed', 'Failed', 'Expired')),
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at REAL,
    started_at REAL,
    finished_at REAL,
    failure_reason TEXT
);

-- The queue's partial indexes hold only live rows, so finished history does not slow it. The
-- *_age indexes repeat status in their key, because SQLite reads a partial index's condition
-- from the table unless the index holds the column: with it, stats counts from the index alone.
-- claim: the next queued invocations of an endpoint
CREATE INDEX invocations_claim_order
    ON invocations (endpoint_key, priority DESC, received_at) WHERE status = 'Queued';
-- stats: the oldest queued invocation of an endpoint (counts: queue_counts, below)
CREATE INDEX invocations_queued_age
    ON invocations (endpoint_key, received_at, status) WHERE status = 'Queued';
-- claim_expired: queued invocations whose request TTL has passed, on any endpoint
CREATE INDEX invocations_queued_expiry
    ON invocations (expires_at) WHERE status = 'Queued';
-- requeue_expired_leases: running invocations whose lease ran out
CREATE INDEX invocations_lease_expiry
    ON invocations (lease_expires_at) WHERE status = 'InProgress';
-- stats: running invocations of an endpoint, and the oldest of them
CREATE INDEX invocations_running_age
    ON invocations (endpoint_key, received_at, status) WHERE status = 'InProgress';
-- purge_finished: the oldest finished invocations. Partial on the final statuses, so enqueue
-- and claim never touch it (only finish writes into it).
CREATE INDEX invocations_finished_age
    ON invocations (finished_at) WHERE status IN ('Completed', 'Failed', 'Expired');

-- The catalog: models, endpoint configs and endpoints, each a JSON document.
CREATE TABLE resources (
    kind TEXT NOT NULL,
    -- name lower-cased: names are unique per kind whatever their case
    name_lower TEXT NOT NULL,
    -- as created
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    PRIMARY KEY (kind, name_lower)
);

-- Live counts per endpoint, kept by triggers in the same statements that change a row's
-- status, so that stats (every /metrics scrape) reads two rows instead of counting the queue.
CREATE TABLE queue_counts (
    endpoint_key TEXT NOT NULL,
    -- 'Queued' or 'InProgress': finished rows are not counted
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (endpoint_key, status)
) WITHOUT ROWID;

CREATE TRIGGER queue_counts_on_insert AFTER INSERT ON invocations
WHEN NEW.status IN ('Queued', 'InProgress')
BEGIN
    INSERT INTO queue_counts (endpoint_key, status, n) VALUES (NEW.endpoint_key, NEW.status, 1)
    ON CONFLICT (endpoint_key, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER queue_counts_on_leave AFTER UPDATE OF status ON invocations
WHEN OLD.status IN ('Queued', 'InProgress') AND NEW.status IS NOT OLD.status
BEGIN
    UPDATE queue_counts SET n = n - 1
    WHERE endpoint_key = OLD.endpoint_key AND status = OLD.status;
END;

CREATE TRIGGER queue_counts_on_enter AFTER UPDATE OF status ON invocations
WHEN NEW.status IN ('Queued', 'InProgress') AND NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO queue_counts (endpoint_key, status, n) VALUES (NEW.endpoint_key, NEW.status, 1)
    ON CONFLICT (endpoint_key, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER queue_counts_on_delete AFTER DELETE ON invocations
WHEN OLD.status IN ('Queued', 'InProgress')
BEGIN
    UPDATE queue_counts SET n = n - 1
    WHERE endpoint_key = OLD.endpoint_key AND status = OLD.status;
END;
