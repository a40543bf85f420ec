-- belay: the claim path reads only claimable work.
--
-- Queue 'q' holds 100,000 finished tasks and 100,000 delayed ones next to a few that are
-- claimable or due. Queue 'other' holds 1,000 claimable tasks and 10,000 delayed tasks
-- that are due but not yet pending (as in a database the background worker does not
-- serve). claim() must find its tasks through tasks_claim_idx (only pending tasks, queue
-- first) and make due tasks pending through one probe into tasks_due_idx (only delayed
-- and sleeping tasks, queue first), touching about as many rows as it returns however
-- many finished, delayed or other queues' tasks there are.
--
-- Everything runs in one transaction that is rolled back at the end, so that no
-- background worker can change the data under the plans.

BEGIN;

SELECT belay.create_queue('q');
SELECT belay.create_queue('other');

-- 100,000 completed tasks (inserted directly, for speed), 5,000 of them with two steps.
INSERT INTO belay.tasks (task_id, queue, task_name, params, state, max_attempts, available_at, created_at,
                         finished_at, result)
SELECT belay.uuidv7(), 'q', 'done', jsonb_build_object('i', g), 'completed', 5,
       now() - interval '2 days', now() - interval '2 days', now() - interval '1 day', '{"ok": true}'
FROM generate_series(1, 100000) AS g;
INSERT INTO belay.checkpoints (task_id, step, value, run_id, updated_at)
SELECT t.task_id, s.step, '1', belay.uuidv7(), now() - interval '1 day'
FROM (SELECT task_id FROM belay.tasks ORDER BY task_id LIMIT 5000) AS t, (VALUES ('a'), ('b')) AS s(step);

-- 100,000 delayed tasks, through spawn_many.
SELECT count(*) AS delayed, bool_and(created) AS created
FROM belay.spawn_many('q', 'delayed', (SELECT jsonb_agg(jsonb_build_object('i', g)) FROM generate_series(1, 100000) AS g),
                      '{"delay_seconds": 3600}');

-- 20 claimable tasks, and 5 delayed ones that have fallen due (not yet made pending).
SELECT count(*) AS ready
FROM belay.spawn_many('q', 'ready', (SELECT jsonb_agg(jsonb_build_object('i', g) ORDER BY g) FROM generate_series(1, 20) AS g));
INSERT INTO belay.tasks (task_id, queue, task_name, params, state, max_attempts, available_at, created_at)
SELECT belay.uuidv7(), 'q', 'due', jsonb_build_object('i', g), 'scheduled', 5,
       now() - interval '1 hour' + g * interval '1 second', now() - interval '2 hours'
FROM generate_series(1, 5) AS g;

-- The other queue: claimable work, and due work not yet made pending.
SELECT count(*) AS other_ready
FROM belay.spawn_many('other', 'elsewhere', (SELECT jsonb_agg('{}'::jsonb) FROM generate_series(1, 1000)));
INSERT INTO belay.tasks (task_id, queue, task_name, params, state, max_attempts, available_at, created_at)
SELECT belay.uuidv7(), 'other', 'overdue', '{}', 'scheduled', 5,
       now() - interval '2 hours' + g * interval '1 millisecond', now() - interval '3 hours'
FROM generate_series(1, 10000) AS g;

ANALYZE belay.tasks, belay.checkpoints;

SELECT queue, task_name, state, count(*) FROM belay.tasks GROUP BY queue, task_name, state ORDER BY queue, task_name, state;

------------------------------------------------------------------------------------------
-- The claim's pick (the "picked" CTE of src/claim.cpp)
------------------------------------------------------------------------------------------

EXPLAIN (COSTS OFF)
SELECT task_id FROM belay.tasks
WHERE queue = 'q' AND state = 'pending'
ORDER BY priority DESC, available_at, task_id
LIMIT 10 FOR UPDATE SKIP LOCKED;

-- Rows touched: the index scan stops at the LIMIT.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT task_id FROM belay.tasks
WHERE queue = 'q' AND state = 'pending'
ORDER BY priority DESC, available_at, task_id
LIMIT 10 FOR UPDATE SKIP LOCKED;

-- The whole claim statement (parameters written in): the picked rows are updated
-- through the primary key, one probe each, and their steps read through the primary
-- key of belay.checkpoints.
EXPLAIN (COSTS OFF)
WITH picked AS (
 SELECT task_id FROM belay.tasks
 WHERE queue OPERATOR(pg_catalog.=) 'q' AND state = 'pending'
 ORDER BY priority DESC, available_at, task_id
 LIMIT 10 FOR UPDATE SKIP LOCKED)
UPDATE belay.tasks t SET state = 'running', run_id = belay.uuidv7(), worker = 'w',
 run_started_at = now(), lease_seconds = 60,
 lease_expires_at = now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => 60),
 first_started_at = coalesce(t.first_started_at, now()),
 cancel_at = CASE WHEN t.first_started_at IS NULL
  THEN now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => t.max_duration_seconds)
  ELSE t.cancel_at END
FROM picked WHERE t.task_id OPERATOR(pg_catalog.=) picked.task_id
RETURNING t.run_id, t.task_id, t.task_name, t.params, t.headers, t.attempt, t.lease_expires_at,
 coalesce((SELECT pg_catalog.jsonb_object_agg(c.step, c.value) FROM belay.checkpoints c
           WHERE c.task_id OPERATOR(pg_catalog.=) t.task_id), '{}'::jsonb);

------------------------------------------------------------------------------------------
-- The promotion probe (the "due" subquery of src/claim.cpp)
------------------------------------------------------------------------------------------

EXPLAIN (COSTS OFF)
SELECT task_id FROM belay.tasks
WHERE queue = 'q' AND state IN ('scheduled', 'sleeping') AND available_at <= now()
ORDER BY available_at
LIMIT 1000 FOR UPDATE SKIP LOCKED;

-- It reads the 5 due tasks of 'q': not the 100,000 delayed ones, not the 10,000 due
-- tasks of 'other'.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT task_id FROM belay.tasks
WHERE queue = 'q' AND state IN ('scheduled', 'sleeping') AND available_at <= now()
ORDER BY available_at
LIMIT 1000 FOR UPDATE SKIP LOCKED;

------------------------------------------------------------------------------------------
-- The same statements as claim() prepares them (parameters, generic plan)
------------------------------------------------------------------------------------------

SET LOCAL plan_cache_mode = force_generic_plan;

PREPARE pick(text, int) AS
SELECT task_id FROM belay.tasks
WHERE queue OPERATOR(pg_catalog.=) $1 AND state = 'pending'
ORDER BY priority DESC, available_at, task_id
LIMIT $2 FOR UPDATE SKIP LOCKED;
EXPLAIN (COSTS OFF) EXECUTE pick('q', 10);
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF) EXECUTE pick('q', 10);

PREPARE due(text, timestamptz) AS
SELECT task_id FROM belay.tasks
WHERE queue OPERATOR(pg_catalog.=) $1 AND state IN ('scheduled', 'sleeping')
  AND available_at OPERATOR(pg_catalog.<=) $2
ORDER BY available_at LIMIT 1000 FOR UPDATE SKIP LOCKED;
EXPLAIN (COSTS OFF) EXECUTE due('q', now());
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF) EXECUTE due('q', now());

DEALLOCATE pick;
DEALLOCATE due;
RESET plan_cache_mode;

------------------------------------------------------------------------------------------
-- claim() itself: the due tasks first (oldest available_at), then the ready ones in
-- order; never a delayed or finished task, never another queue's
------------------------------------------------------------------------------------------

SELECT n, task_name, params, attempt, checkpoints
FROM belay.claim('q', 'explain-worker', 10, 60)
     WITH ORDINALITY AS c(run_id, task_id, task_name, params, headers, attempt, lease_expires_at, checkpoints, n)
ORDER BY n;

SELECT count(*) AS claimed, min((params ->> 'i')::int) AS first_i, max((params ->> 'i')::int) AS last_i,
       bool_and(task_name = 'ready') AS all_ready
FROM belay.claim('q', 'explain-worker', 1000, 60);

SELECT count(*) AS claimed FROM belay.claim('q', 'explain-worker', 1000, 60);

-- In 'other', the due tasks are older than the ready ones: they are claimed first.
SELECT task_name, count(*) AS claimed FROM belay.claim('other', 'explain-worker', 10, 60) GROUP BY task_name;

SELECT queue, task_name, count(*) AS running FROM belay.tasks
WHERE state = 'running' GROUP BY queue, task_name ORDER BY queue, task_name;

-- With nothing claimable left in 'q', the pick reads nothing.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT task_id FROM belay.tasks
WHERE queue = 'q' AND state = 'pending'
ORDER BY priority DESC, available_at, task_id
LIMIT 10 FOR UPDATE SKIP LOCKED;

ROLLBACK;

SELECT count(*) AS queues FROM belay.list_queues();
SELECT count(*) AS tasks FROM belay.tasks;
