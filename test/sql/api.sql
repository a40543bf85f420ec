-- belay: the happy path of every SQL function.
--
-- Output must not depend on time or on generated ids: ids are kept in psql variables
-- (\gset) and only booleans, counts, states and values are printed.

------------------------------------------------------------------------------------------
-- Queues: create_queue, list_queues
------------------------------------------------------------------------------------------

SELECT belay.create_queue('api');
SELECT queue, policy FROM belay.list_queues();
SELECT created_at AS api_created_at FROM belay.list_queues() WHERE queue = 'api' \gset

-- Idempotent: creating it again changes nothing.
SELECT belay.create_queue('api');
SELECT queue, policy, created_at = :'api_created_at' AS same_created_at FROM belay.list_queues();

-- A non-empty policy is set on the existing queue.
SELECT belay.create_queue('api', '{"max_attempts": 3, "cancellation": {"max_delay_seconds": 86400}}');
SELECT queue, policy, created_at = :'api_created_at' AS same_created_at FROM belay.list_queues();

-- An existing queue keeps its policy when no policy or an empty one is given (a worker
-- that calls create_queue(name) at start-up does not wipe an operator's policy).
SELECT belay.create_queue('api');
SELECT belay.create_queue('api', '{}');
SELECT queue, policy FROM belay.list_queues();

-- A new non-empty policy replaces the old one as a whole; the retry policy is stored
-- with every field filled in.
SELECT belay.create_queue('api', '{"max_attempts": 3, "retry": {"kind": "fixed", "base_seconds": 0}}');
SELECT queue, policy FROM belay.list_queues();

-- A queue created with a policy; every valid name character; the longest name (100).
SELECT belay.create_queue('work', '{"max_attempts": 2, "retry": {"kind": "fixed", "base_seconds": 0}}');
SELECT belay.create_queue('Az09_.:-');
SELECT belay.create_queue('life');
SELECT belay.create_queue(repeat('x', 100));
SELECT length(queue) AS name_length, queue = repeat('x', 100) AS long_name, policy
FROM belay.list_queues() WHERE length(queue) = 100;
-- list_queues is ordered by name.
SELECT left(queue, 10) AS queue, policy FROM belay.list_queues();

------------------------------------------------------------------------------------------
-- spawn
------------------------------------------------------------------------------------------

-- Defaults: params '{}', options '{}'; max_attempts comes from the queue policy (3).
SELECT task_id AS t_bare, created FROM belay.spawn('api', 'bare') \gset
SELECT :'created' AS created, queue, task_name, state, attempt, max_attempts, params, result, error,
       parent_task_id IS NULL AS no_parent, finished_at IS NULL AS not_finished,
       available_at = created_at AS claimable_at_once
FROM belay.task(:'t_bare');

-- With params; the task() row and the stored row.
SELECT task_id AS t_plain, created FROM belay.spawn('api', 'send', '{"to": "a@example.com", "n": [1, 2]}') \gset
SELECT :'created' AS created, task_name, state, attempt, max_attempts, params FROM belay.task(:'t_plain');
SELECT state, priority, headers, retry_policy, idempotency_key, max_delay_seconds, max_duration_seconds, run_id IS NULL AS no_run
FROM belay.tasks WHERE task_id = :'t_plain';

-- Without a queue policy, max_attempts defaults to 5.
SELECT task_id AS t_default FROM belay.spawn('Az09_.:-', 'x') \gset
SELECT max_attempts, state FROM belay.task(:'t_default');

-- Every option key (run_at and delay_seconds exclude each other: two tasks).
SELECT task_id AS t_opts, created FROM belay.spawn('api', 'opts', '{"k": "v"}', '{
    "max_attempts": 7,
    "retry": {"kind": "exponential", "base_seconds": 2, "factor": 3, "max_seconds": 60, "jitter": true},
    "priority": 5,
    "delay_seconds": 3600,
    "idempotency_key": "key-1",
    "headers": {"trace": "abc", "n": 1},
    "cancellation": {"max_delay_seconds": 7200, "max_duration_seconds": 60}}') \gset
-- A delayed task is 'pending' to the user ('scheduled' inside, out of the claim index).
SELECT :'created' AS created, task_name, state, attempt, max_attempts, params FROM belay.task(:'t_opts');
SELECT state, priority, headers, retry_policy, idempotency_key, max_delay_seconds, max_duration_seconds,
       extract(epoch FROM available_at - created_at) AS delay_seconds
FROM belay.tasks WHERE task_id = :'t_opts';

SELECT task_id AS t_run_at, created FROM belay.spawn('api', 'later', '{}',
    '{"run_at": "2100-01-01T00:00:00Z", "priority": -32768, "max_attempts": 1}') \gset
SELECT :'created' AS created, state, max_attempts, available_at = '2100-01-01 00:00:00+00' AS at_run_at
FROM belay.task(:'t_run_at');
SELECT state, priority FROM belay.tasks WHERE task_id = :'t_run_at';

-- run_at in the past and delay_seconds 0: claimable at once.
SELECT task_id AS t_past FROM belay.spawn('api', 'past', '{}', '{"run_at": "2000-01-01T00:00:00Z", "priority": 32767}') \gset
SELECT state, available_at = '2000-01-01 00:00:00+00' AS at_run_at FROM belay.tasks WHERE task_id = :'t_past';
SELECT task_id AS t_zero FROM belay.spawn('api', 'zero', '{}', '{"delay_seconds": 0}') \gset
SELECT state, available_at = created_at AS now FROM belay.tasks WHERE task_id = :'t_zero';

-- idempotency_key: a repeat returns the same task with created = false and changes
-- nothing (not the params, not the options).
SELECT task_id = :'t_opts' AS same_task, created
FROM belay.spawn('api', 'opts', '{"k": "other"}', '{"idempotency_key": "key-1", "priority": 1}');
SELECT params, priority FROM belay.tasks WHERE task_id = :'t_opts';
SELECT count(*) AS tasks_with_key_1 FROM belay.tasks WHERE idempotency_key = 'key-1';
-- The key is unique per queue: the same key in another queue is another task.
SELECT task_id AS t_key_work, created FROM belay.spawn('work', 'opts', '{}', '{"idempotency_key": "key-1", "delay_seconds": 3600}') \gset
SELECT :'created' AS created, :'t_key_work' <> :'t_opts' AS other_task;

------------------------------------------------------------------------------------------
-- spawn_many
------------------------------------------------------------------------------------------

-- One row per element, returned in array order; each task gets its element as params.
SELECT s.n, s.created, t.task_name, t.params, t.state, t.max_attempts
FROM belay.spawn_many('api', 'batch', '[{"i": 1}, {"i": 2}, {"i": 3}, {"i": 4}, {"i": 5}]')
     WITH ORDINALITY AS s(task_id, created, n)
     CROSS JOIN LATERAL belay.task(s.task_id) AS t;

-- Options apply to every task of the batch.
CREATE TEMP TABLE batch1 AS
SELECT * FROM belay.spawn_many('api', 'batch-delayed', '[{"j": 1}, {"j": 2}]',
                               '{"priority": 2, "delay_seconds": 3600, "headers": {"h": true}, "max_attempts": 9}')
     WITH ORDINALITY AS s(task_id, created, n);
SELECT s.n, s.created, t.params, t.state, t.priority, t.headers, t.max_attempts,
       extract(epoch FROM t.available_at - t.created_at) AS delay_seconds
FROM batch1 AS s JOIN belay.tasks AS t USING (task_id)
ORDER BY s.n;

-- Returned in order for a large batch too (ids increase with the array index).
CREATE TEMP TABLE batch2 AS
SELECT * FROM belay.spawn_many('Az09_.:-', 'big', (SELECT jsonb_agg(jsonb_build_object('i', g) ORDER BY g)
                                                 FROM generate_series(1, 2000) AS g), '{"delay_seconds": 3600}')
     WITH ORDINALITY AS s(task_id, created, n);
SELECT count(*) AS spawned,
       bool_and(created) AS all_created,
       bool_and((t.params ->> 'i')::bigint = s.n) AS params_in_order,
       bool_and(s.task_id > s.previous OR s.previous IS NULL) AS ids_increase,
       count(DISTINCT t.created_at) AS created_ats
FROM (SELECT task_id, created, n, lag(task_id) OVER (ORDER BY n) AS previous FROM batch2) AS s
JOIN belay.tasks AS t USING (task_id);

-- An empty batch spawns nothing.
SELECT count(*) AS spawned FROM belay.spawn_many('api', 'none', '[]');

------------------------------------------------------------------------------------------
-- claim: highest priority first, then oldest available_at; never a delayed task
------------------------------------------------------------------------------------------

SELECT belay.create_queue('claims');
SELECT count(*) FROM belay.spawn('claims', 'p0-first', '{"n": 1}');
SELECT count(*) FROM belay.spawn('claims', 'p5', '{"n": 2}', '{"priority": 5, "headers": {"h": "x"}}');
SELECT count(*) FROM belay.spawn('claims', 'p0-second', '{"n": 3}');
SELECT count(*) FROM belay.spawn('claims', 'p-1', '{"n": 4}', '{"priority": -1}');
SELECT count(*) FROM belay.spawn('claims', 'p9-delayed', '{"n": 5}', '{"priority": 9, "delay_seconds": 3600}');
SELECT count(*) FROM belay.spawn('claims', 'p7-due', '{"n": 6}', '{"priority": 7, "run_at": "2000-01-01T00:00:00Z"}');
-- A delayed task that has fallen due: claim makes it pending and hands it out.
SELECT task_id AS t_was_delayed FROM belay.spawn('claims', 'p3-was-delayed', '{"n": 7}', '{"priority": 3, "delay_seconds": 3600}') \gset
BEGIN;
UPDATE belay.tasks SET available_at = now() - interval '1 second' WHERE task_id = :'t_was_delayed';
SELECT task_name, state FROM belay.tasks WHERE queue = 'claims' ORDER BY task_name;
COMMIT;

-- qty 2 with a 30 s lease: the two best, in claim order.
CREATE TEMP TABLE claim1 AS
SELECT * FROM belay.claim('claims', 'worker-1', 2, 30)
     WITH ORDINALITY AS c(run_id, task_id, task_name, params, headers, attempt, lease_expires_at, checkpoints, n);
SELECT n, task_name, params, headers, attempt, checkpoints,
       lease_expires_at BETWEEN now() + interval '29 seconds' AND now() + interval '31 seconds' AS lease_30s
FROM claim1 ORDER BY n;
SELECT t.task_name, t.state, t.worker, t.run_id = c.run_id AS live_run, t.lease_seconds,
       t.run_started_at IS NOT NULL AS started, t.first_started_at = t.run_started_at AS first_start
FROM belay.tasks t JOIN claim1 c USING (task_id) ORDER BY c.n;
SELECT task_name, state FROM belay.task((SELECT task_id FROM claim1 WHERE n = 1));

-- The rest (qty 10; default lease 60 s); the delayed task is not handed out.
CREATE TEMP TABLE claim2 AS
SELECT * FROM belay.claim('claims', 'worker-2', 10)
     WITH ORDINALITY AS c(run_id, task_id, task_name, params, headers, attempt, lease_expires_at, checkpoints, n);
SELECT n, task_name, params, attempt,
       lease_expires_at BETWEEN now() + interval '59 seconds' AND now() + interval '61 seconds' AS lease_60s
FROM claim2 ORDER BY n;
-- Default qty is 1; nothing is left to claim now.
SELECT count(*) AS claimed FROM belay.claim('claims', 'worker-3');
SELECT task_name, state FROM belay.tasks WHERE queue = 'claims' ORDER BY task_name;

------------------------------------------------------------------------------------------
-- complete
------------------------------------------------------------------------------------------

SELECT run_id AS r_p5, task_id AS t_p5 FROM claim1 WHERE n = 2 \gset
SELECT belay.complete(:'r_p5', '{"sent": true}');
SELECT task_name, state, attempt, result, error, finished_at IS NOT NULL AS finished FROM belay.task(:'t_p5');
-- The task row keeps the run that completed it (belay.runs reads it from there), without a lease.
SELECT run_id = :'r_p5' AS keeps_completing_run, lease_expires_at IS NULL AS no_lease FROM belay.tasks WHERE task_id = :'t_p5';
SELECT count(*) AS copied_to_history FROM belay.run_history WHERE task_id = :'t_p5';
SELECT run_id = :'r_p5' AS same_run, attempt, worker, outcome, error, ended_at >= started_at AS ordered
FROM belay.runs WHERE task_id = :'t_p5';

-- The result defaults to NULL.
SELECT run_id AS r_first, task_id AS t_first FROM claim1 WHERE n = 1 \gset
SELECT belay.complete(:'r_first');
SELECT task_name, state, result FROM belay.task(:'t_first');

------------------------------------------------------------------------------------------
-- heartbeat
------------------------------------------------------------------------------------------

SELECT run_id AS r_hb, task_id AS t_hb FROM claim2 WHERE n = 1 \gset
-- With a lease length: the new expiry is now + that many seconds.
SELECT belay.heartbeat(:'r_hb', 120) BETWEEN now() + interval '119 seconds' AND now() + interval '121 seconds' AS lease_120s;
SELECT lease_expires_at BETWEEN now() + interval '119 seconds' AND now() + interval '121 seconds' AS stored
FROM belay.tasks WHERE task_id = :'t_hb';
-- Without one: extended by the length the task was claimed with (60 s).
SELECT belay.heartbeat(:'r_hb') BETWEEN now() + interval '59 seconds' AND now() + interval '61 seconds' AS lease_60s;
-- A fractional lease length.
SELECT belay.heartbeat(:'r_hb', 90.5) BETWEEN now() + interval '89.5 seconds' AND now() + interval '91.5 seconds' AS lease_90_5s;
SELECT lease_seconds FROM belay.tasks WHERE task_id = :'t_hb';
SELECT state FROM belay.task(:'t_hb');

------------------------------------------------------------------------------------------
-- set_checkpoint, checkpoints
------------------------------------------------------------------------------------------

SELECT belay.set_checkpoint(:'r_hb', 'fetch', '{"v": 1}');
SELECT belay.set_checkpoint(:'r_hb', 'charge', '"ch_123"');
SELECT belay.set_checkpoint(:'r_hb', 'nothing', 'null');
-- Setting a step again replaces its value.
SELECT belay.set_checkpoint(:'r_hb', 'fetch', '{"v": 2}');
SELECT step, value, updated_at IS NOT NULL AS has_time FROM belay.checkpoints(:'t_hb') ORDER BY step;
SELECT count(*) AS rows, bool_and(run_id = :'r_hb') AS by_run FROM belay.checkpoints WHERE task_id = :'t_hb';
-- A task without checkpoints, and a task that does not exist: no rows.
SELECT count(*) FROM belay.checkpoints(:'t_p5');
SELECT count(*) FROM belay.checkpoints('00000000-0000-7000-8000-000000000000');

------------------------------------------------------------------------------------------
-- fail: retried by the policy while attempts remain, then failed
------------------------------------------------------------------------------------------

-- Queue 'work': max_attempts 2, fixed retry after 0 s.
SELECT task_id AS t_work FROM belay.spawn('work', 'flaky', '{"x": 1}') \gset
SELECT run_id AS r_work1, attempt FROM belay.claim('work', 'w', 1, 30) \gset
\echo attempt :attempt
SELECT belay.set_checkpoint(:'r_work1', 'step-1', '{"done": 1}');
SELECT belay.fail(:'r_work1', '{"message": "boom 1"}');
SELECT state, attempt, max_attempts, error, result, finished_at IS NULL AS not_finished FROM belay.task(:'t_work');
SELECT state, run_id IS NULL AS no_live_run FROM belay.tasks WHERE task_id = :'t_work';
-- The next claim is a new run of attempt 2 and gets the finished steps back.
SELECT run_id AS r_work2, run_id <> :'r_work1' AS new_run, task_name, params, attempt, checkpoints
FROM belay.claim('work', 'w', 1, 30) \gset
\echo new_run :new_run task_name :task_name params :params attempt :attempt checkpoints :checkpoints
SELECT belay.fail(:'r_work2', '{"message": "boom 2"}');
SELECT state, attempt, max_attempts, error, finished_at IS NOT NULL AS finished FROM belay.task(:'t_work');
SELECT attempt, outcome, error, worker FROM belay.runs WHERE task_id = :'t_work' ORDER BY attempt;
SELECT count(*) AS claimed FROM belay.claim('work', 'w', 10);

-- Queue 'life' has no policy: the default retry policy (exponential from 1 s) backs
-- the second attempt off by 1 s, so the task is pending but not yet claimable.
SELECT task_id AS t_backoff FROM belay.spawn('life', 'backoff', '{}', '{"max_attempts": 3}') \gset
SELECT run_id AS r_backoff FROM belay.claim('life', 'w', 1, 30) \gset
SELECT belay.fail(:'r_backoff', '{"message": "later"}');
SELECT state, attempt, error FROM belay.task(:'t_backoff');
SELECT t.state, extract(epoch FROM t.available_at - r.ended_at) AS backoff_seconds
FROM belay.tasks t JOIN belay.runs r USING (task_id) WHERE t.task_id = :'t_backoff';
-- (Cancelled, so that it cannot fall due during the rest of the test.)
SELECT belay.cancel(:'t_backoff');

-- An options retry policy: fixed, 3600 s.
SELECT task_id AS t_fixed FROM belay.spawn('life', 'fixed', '{}', '{"retry": {"kind": "fixed", "base_seconds": 3600}, "priority": 1}') \gset
SELECT run_id AS r_fixed FROM belay.claim('life', 'w', 1, 30) \gset
SELECT task_id = :'t_fixed' AS claimed_it FROM belay.tasks WHERE run_id = :'r_fixed';
SELECT belay.fail(:'r_fixed', '{"message": "later"}');
SELECT t.state, t.attempt, extract(epoch FROM t.available_at - r.ended_at) AS backoff_seconds
FROM belay.tasks t JOIN belay.runs r USING (task_id) WHERE t.task_id = :'t_fixed';
SELECT count(*) AS claimed FROM belay.claim('life', 'w', 10);

-- retry_at sets the time of the next attempt.
SELECT task_id AS t_retry_at FROM belay.spawn('life', 'retry-at', '{}', '{"priority": 2}') \gset
SELECT run_id AS r_retry_at FROM belay.claim('life', 'w', 1) \gset
SELECT task_id = :'t_retry_at' AS claimed_it FROM belay.tasks WHERE run_id = :'r_retry_at';
SELECT belay.fail(:'r_retry_at', '"string error"', '2100-01-01T00:00:00Z');
SELECT state, attempt, error, available_at = '2100-01-01 00:00:00+00' AS at_retry_at FROM belay.task(:'t_retry_at');
-- A retry_at in the past: claimable at once.
SELECT task_id AS t_retry_now FROM belay.spawn('life', 'retry-now', '{}', '{"priority": 3}') \gset
SELECT run_id AS r_retry_now FROM belay.claim('life', 'w', 1) \gset
SELECT task_id = :'t_retry_now' AS claimed_it FROM belay.tasks WHERE run_id = :'r_retry_now';
SELECT belay.fail(:'r_retry_now', '{"message": "again"}', '2000-01-01T00:00:00Z');
SELECT state, attempt FROM belay.task(:'t_retry_now');
SELECT state FROM belay.tasks WHERE task_id = :'t_retry_now';
SELECT task_name, attempt FROM belay.claim('life', 'w', 1) WHERE task_id = :'t_retry_now';

-- final = true fails at once, whatever attempts remain.
SELECT run_id AS r_final, task_id AS t_final FROM claim2 WHERE n = 2 \gset
SELECT belay.fail(:'r_final', '{"message": "fatal"}', NULL, true);
SELECT task_name, state, attempt, max_attempts, error, finished_at IS NOT NULL AS finished FROM belay.task(:'t_final');

-- Out of attempts, a retry_at does not bring the task back.
SELECT task_id AS t_once FROM belay.spawn('life', 'once', '{}', '{"max_attempts": 1, "priority": 4}') \gset
SELECT run_id AS r_once FROM belay.claim('life', 'w', 1) \gset
SELECT task_id = :'t_once' AS claimed_it FROM belay.tasks WHERE run_id = :'r_once';
SELECT belay.fail(:'r_once', '{"message": "only once"}', '2000-01-01T00:00:00Z');
SELECT state, attempt, max_attempts, error, finished_at IS NOT NULL AS finished FROM belay.task(:'t_once');

------------------------------------------------------------------------------------------
-- cancel
------------------------------------------------------------------------------------------

-- A pending task.
SELECT task_id AS t_cancel FROM belay.spawn('api', 'to-cancel', '{}', '{"delay_seconds": 3600}') \gset
SELECT belay.cancel(:'t_cancel');
SELECT state, finished_at IS NOT NULL AS finished FROM belay.task(:'t_cancel');
-- Terminal tasks are left alone.
SELECT belay.cancel(:'t_cancel');
SELECT belay.cancel(:'t_p5');
SELECT state FROM belay.task(:'t_p5');

-- A running task: its run ends as 'cancelled'.
SELECT run_id AS r_running, task_id AS t_running FROM claim2 WHERE n = 3 \gset
SELECT belay.cancel(:'t_running');
SELECT task_name, state FROM belay.task(:'t_running');
SELECT run_id IS NULL AS no_live_run FROM belay.tasks WHERE task_id = :'t_running';
SELECT run_id = :'r_running' AS same_run, outcome FROM belay.runs WHERE task_id = :'t_running';

-- A task and its unfinished descendants (children inserted directly: spawn_child is not
-- part of this release). The completed child is left alone.
SELECT task_id AS t_parent FROM belay.spawn('api', 'parent', '{}', '{"delay_seconds": 3600}') \gset
INSERT INTO belay.tasks (task_id, queue, task_name, params, state, max_attempts, available_at, created_at,
                         parent_task_id, parent_step, finished_at)
VALUES ('00000000-0000-7000-8000-00000000c001', 'api', 'child-pending', '{}', 'pending', 5, now() + interval '1 hour', now(), :'t_parent', 'a', NULL),
       ('00000000-0000-7000-8000-00000000c002', 'api', 'child-done', '{}', 'completed', 5, now(), now(), :'t_parent', 'b', now()),
       ('00000000-0000-7000-8000-00000000c003', 'api', 'grandchild', '{}', 'scheduled', 5, now() + interval '1 hour', now(), '00000000-0000-7000-8000-00000000c001', 'c', NULL);
SELECT belay.cancel(:'t_parent');
SELECT task_name, state FROM belay.tasks
WHERE task_id = :'t_parent' OR parent_task_id IS NOT NULL ORDER BY task_name;
-- Cancelling a subtree goes down, never up.
SELECT task_id AS t_parent2 FROM belay.spawn('api', 'parent-2', '{}', '{"delay_seconds": 3600}') \gset
INSERT INTO belay.tasks (task_id, queue, task_name, params, state, max_attempts, available_at, created_at,
                         parent_task_id, parent_step)
VALUES ('00000000-0000-7000-8000-00000000d001', 'api', 'child-2', '{}', 'scheduled', 5, now() + interval '1 hour', now(), :'t_parent2', 'a'),
       ('00000000-0000-7000-8000-00000000d002', 'api', 'grandchild-2', '{}', 'scheduled', 5, now() + interval '1 hour', now(), '00000000-0000-7000-8000-00000000d001', 'b');
SELECT belay.cancel('00000000-0000-7000-8000-00000000d001');
SELECT task_name, state FROM belay.tasks
WHERE task_id = :'t_parent2' OR parent_task_id IN (:'t_parent2', '00000000-0000-7000-8000-00000000d001') ORDER BY task_name;
-- Cancelling the parent now cancels only itself; a second time, nothing.
SELECT belay.cancel(:'t_parent2');
SELECT belay.cancel(:'t_parent2');

------------------------------------------------------------------------------------------
-- retry: a failed or cancelled task goes back to pending with one more attempt
------------------------------------------------------------------------------------------

-- The failed task of queue 'work' (attempt 2 of 2).
SELECT belay.retry(:'t_work');
SELECT state, attempt, max_attempts, error, result, finished_at IS NULL AS not_finished,
       available_at <= now() AS claimable FROM belay.task(:'t_work');
SELECT task_name, params, attempt, checkpoints FROM belay.claim('work', 'w', 10, 30);
SELECT state, attempt FROM belay.task(:'t_work');

-- A cancelled task.
SELECT belay.retry(:'t_cancel');
SELECT state, attempt, max_attempts, finished_at IS NULL AS not_finished FROM belay.task(:'t_cancel');
SELECT state FROM belay.tasks WHERE task_id = :'t_cancel';

-- The task failed with final = true (attempt 1 of 5).
SELECT belay.retry(:'t_final');
SELECT state, attempt, max_attempts FROM belay.task(:'t_final');

------------------------------------------------------------------------------------------
-- task
------------------------------------------------------------------------------------------

SELECT task_id = :'t_plain' AS same_id, queue, task_name, state, attempt, max_attempts, params, result, error,
       parent_task_id, created_at IS NOT NULL AS has_created_at, available_at IS NOT NULL AS has_available_at,
       finished_at
FROM belay.task(:'t_plain');
-- A child reports its parent.
SELECT task_name, parent_task_id = :'t_parent' AS parent FROM belay.task('00000000-0000-7000-8000-00000000c001');
-- No row for a task that does not exist.
SELECT count(*) FROM belay.task('00000000-0000-7000-8000-000000000000');

------------------------------------------------------------------------------------------
-- cleanup: terminal tasks finished before now() - older_than, with runs and checkpoints
------------------------------------------------------------------------------------------

SELECT queue, state, count(*) FROM belay.tasks GROUP BY queue, state ORDER BY queue, state;

-- Nothing finished 7 days ago (the default), in all queues or in one.
SELECT belay.cleanup();
SELECT belay.cleanup('api');
-- A queue's finished tasks only.
SELECT belay.cleanup('claims', '0 seconds');
SELECT task_name, state FROM belay.tasks WHERE queue = 'claims' ORDER BY task_name;
SELECT count(*) AS runs_left FROM belay.runs r WHERE NOT EXISTS (SELECT FROM belay.tasks t WHERE t.task_id = r.task_id);
-- All queues: terminal tasks go, with their runs and checkpoints; others stay.
SELECT count(*) AS checkpoints_of_work FROM belay.checkpoints WHERE task_id = :'t_work';
SELECT belay.cleanup(NULL, '0 seconds');
SELECT queue, state, count(*) FROM belay.tasks GROUP BY queue, state ORDER BY queue, state;
SELECT count(*) AS runs_of_terminal_tasks FROM belay.runs r JOIN belay.tasks t USING (task_id)
WHERE t.state IN ('completed', 'failed', 'cancelled');
SELECT count(*) AS checkpoints_left FROM belay.checkpoints;
SELECT count(*) AS orphan_runs FROM belay.runs r WHERE NOT EXISTS (SELECT FROM belay.tasks t WHERE t.task_id = r.task_id);

-- An idempotency key holds until its task is cleaned up, even after it finished.
SELECT belay.create_queue('keys');
SELECT task_id AS t_key FROM belay.spawn('keys', 'keyed', '{"v": 1}', '{"idempotency_key": "key-2"}') \gset
SELECT run_id AS r_key FROM belay.claim('keys', 'w', 1) \gset
SELECT task_id = :'t_key' AS claimed_it FROM belay.tasks WHERE run_id = :'r_key';
SELECT belay.complete(:'r_key', '{"done": true}');
SELECT task_id = :'t_key' AS same_task, created FROM belay.spawn('keys', 'keyed', '{"v": 2}', '{"idempotency_key": "key-2"}');
SELECT state, params, result FROM belay.task(:'t_key');
SELECT belay.cleanup('keys', '0 seconds');
SELECT task_id AS t_key2, created FROM belay.spawn('keys', 'keyed', '{"v": 3}', '{"idempotency_key": "key-2"}') \gset
SELECT :'created' AS created, :'t_key2' <> :'t_key' AS new_task;
SELECT state, params FROM belay.task(:'t_key2');

------------------------------------------------------------------------------------------
-- drop_queue: the queue and everything in it
------------------------------------------------------------------------------------------

SELECT count(*) AS tasks, (SELECT count(*) FROM belay.runs r JOIN belay.tasks t USING (task_id) WHERE t.queue = 'work') AS runs,
       (SELECT count(*) FROM belay.checkpoints c JOIN belay.tasks t USING (task_id) WHERE t.queue = 'work') AS checkpoints
FROM belay.tasks WHERE queue = 'work';
SELECT belay.drop_queue('work');
SELECT count(*) AS tasks FROM belay.tasks WHERE queue = 'work';
SELECT count(*) AS orphan_runs FROM belay.runs r WHERE NOT EXISTS (SELECT FROM belay.tasks t WHERE t.task_id = r.task_id);
SELECT count(*) AS orphan_checkpoints FROM belay.checkpoints c WHERE NOT EXISTS (SELECT FROM belay.tasks t WHERE t.task_id = c.task_id);
SELECT left(queue, 10) AS queue FROM belay.list_queues();

-- The name can be used again, for a new, empty queue.
SELECT belay.create_queue('work');
SELECT queue, policy FROM belay.list_queues() WHERE queue = 'work';
SELECT count(*) AS claimed FROM belay.claim('work', 'w', 10);

-- Clean up: drop every queue.
SELECT belay.drop_queue(queue) FROM belay.list_queues();
SELECT count(*) AS queues FROM belay.list_queues();
SELECT (SELECT count(*) FROM belay.tasks) AS tasks, (SELECT count(*) FROM belay.runs) AS runs,
       (SELECT count(*) FROM belay.checkpoints) AS checkpoints;
