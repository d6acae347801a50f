-- Named queries, one block per `-- name --` header; loaded once by sql.py.

-- create_schema_migrations --
-- Which migrations this database has had; created before the first migration runs.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
);

-- applied_migrations --
SELECT version FROM schema_migrations ORDER BY version;

-- record_migration --
INSERT INTO schema_migrations (version, name, applied_at) VALUES (:version, :name, :applied_at);

-- enqueue --
-- Parameters in the order queue.py binds them positionally: NewInvocation's attributes, then
-- the derived endpoint_key last.
INSERT INTO invocations (
    job_id, inference_id, endpoint_name, input_location, body, content_type, accept,
    custom_attributes, output_location, failure_location, request_ttl_seconds,
    invocation_timeout_seconds, received_at, expires_at, priority, endpoint_key, status
) VALUES (
    :job_id, :inference_id, :endpoint_name, :input_location, :body, :content_type, :accept,
    :custom_attributes, :output_location, :failure_location, :request_ttl_seconds,
    :invocation_timeout_seconds, :received_at, :expires_at, :priority, :endpoint_key, 'Queued'
);

-- claim --
-- Lease the next queued invocations of one endpoint. RETURNING gives no order: sort afterwards.
UPDATE invocations
SET status = 'InProgress', lease_owner = :worker, lease_expires_at = :lease_expires_at,
    attempts = attempts + 1, started_at = :now
WHERE seq IN (
    SELECT seq FROM invocations
    WHERE endpoint_key = :endpoint_key AND status = 'Queued'
    ORDER BY priority DESC, received_at, seq
    LIMIT :limit
)
RETURNING *;

-- claim_expired --
-- Lease queued invocations whose request TTL has passed, on any endpoint. Only those never
-- claimed: the TTL bounds the wait for a first run, not a retry after an instance died.
UPDATE invocations
SET status = 'InProgress', lease_owner = :worker, lease_expires_at = :lease_expires_at,
    attempts = attempts + 1, started_at = :now
WHERE seq IN (
    SELECT seq FROM invocations
    WHERE expires_at <= :now AND status = 'Queued' AND attempts = 0
    ORDER BY expires_at, seq
    LIMIT :limit
)
RETURNING *;

-- extend --
UPDATE invocations SET lease_expires_at = :lease_expires_at
WHERE job_id = :job_id AND lease_owner = :worker AND status = 'InProgress';

-- finish --
-- The inline body goes: nothing reads it once the invocation is settled.
UPDATE invocations
SET status = :status, failure_reason = :reason, finished_at = :now, lease_expires_at = NULL,
    body = NULL
WHERE job_id = :job_id AND lease_owner = :worker AND status = 'InProgress';

-- release --
-- Back to the queue; attempts stay as they are, since they count claims.
UPDATE invocations
SET status = 'Queued', failure_reason = :reason,
    lease_owner = NULL, lease_expires_at = NULL, started_at = NULL
WHERE job_id = :job_id AND lease_owner = :worker AND status = 'InProgress';

-- unclaim --
-- A claim undone before the job started: as it was before the claim, attempts included.
UPDATE invocations
SET status = 'Queued', attempts = max(attempts - 1, 0),
    lease_owner = NULL, lease_expires_at = NULL, started_at = NULL
WHERE job_id = :job_id AND lease_owner = :worker AND status = 'InProgress';

-- requeue_expired_leases --
UPDATE invocations
SET status = 'Queued', lease_owner = NULL, lease_expires_at = NULL, started_at = NULL
WHERE lease_expires_at <= :now AND status = 'InProgress';

-- purge_finished --
-- Delete the oldest finished invocations, up to a batch: a seek on invocations_finished_age.
DELETE FROM invocations
WHERE seq IN (
    SELECT seq FROM invocations
    WHERE finished_at < :before AND status IN ('Completed', 'Failed', 'Expired')
    ORDER BY finished_at, seq
    LIMIT :limit
);

-- get_invocation --
SELECT * FROM invocations WHERE job_id = :job_id;

-- queue_stats --
-- The counts are kept by triggers (queue_counts); the ages are index seeks. min() of the two
-- ages is taken by the caller, because SQLite's two-argument min() is NULL when either side is.
SELECT
    coalesce((SELECT n FROM queue_counts
        WHERE endpoint_key = :endpoint_key AND status = 'Queued'), 0) AS queued,
    coalesce((SELECT n FROM queue_counts
        WHERE endpoint_key = :endpoint_key AND status = 'InProgress'), 0) AS running,
    (SELECT min(received_at) FROM invocations
        WHERE endpoint_key = :endpoint_key AND status = 'Queued') AS oldest_queued,
    (SELECT min(received_at) FROM invocations
        WHERE endpoint_key = :endpoint_key AND status = 'InProgress') AS oldest_running;

-- create_resource --
-- No row comes back when the name is taken (in any case).
INSERT INTO resources (kind, name_lower, name, doc, created, modified)
VALUES (:kind, :name_lower, :name, :doc, :now, :now)
ON CONFLICT (kind, name_lower) DO NOTHING
RETURNING kind, name, doc, created, modified;

-- get_resource --
SELECT kind, name, doc, created, modified FROM resources
WHERE kind = :kind AND name_lower = :name_lower;

-- list_resources --
SELECT kind, name, doc, created, modified FROM resources
WHERE kind = :kind
ORDER BY created, rowid;

-- update_resource --
UPDATE resources SET doc = :doc, modified = :now
WHERE kind = :kind AND name_lower = :name_lower
RETURNING kind, name, doc, created, modified;

-- delete_resource --
DELETE FROM resources WHERE kind = :kind AND name_lower = :name_lower;
