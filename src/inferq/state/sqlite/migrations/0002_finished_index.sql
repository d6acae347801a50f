-- 0002: an index of finished invocations by finish time, for the retention purge.

-- purge_finished: the oldest finished invocations. Partial on the final statuses, so enqueue
-- and claim never touch it (only finish writes into it), and the live-queue indexes stay small.
CREATE INDEX invocations_finished_age
    ON invocations (finished_at) WHERE status IN ('Completed', 'Failed', 'Expired');
