-- 0003: live counts per endpoint, kept by triggers in the same statements that change a row's
-- status, so that stats (every /metrics scrape) reads two rows instead of counting the queue.

CREATE TABLE queue_counts (
    endpoint_key TEXT NOT NULL,
    -- 'Queued' or 'InProgress': finished rows are not counted
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (endpoint_key, status)
) WITHOUT ROWID;

INSERT INTO queue_counts (endpoint_key, status, n)
SELECT endpoint_key, status, count(*) FROM invocations
WHERE status IN ('Queued', 'InProgress')
GROUP BY endpoint_key, status;

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
