-- belay: every bad input gets an error with a SQLSTATE and a message that names the
-- argument, and changes nothing.
--
-- regress.try(sql) runs one call and returns 'SQLSTATE: message (HINT: hint)', with
-- ids replaced by <uuid>; if the call changed any row of belay's tables it appends
-- [DATA CHANGED], and a call that raises no error returns 'no error'. After each
-- section the tables are compared with the snapshot taken after the setup.

-- regress.try and regress.fingerprint are created by 00_setup.sql.

------------------------------------------------------------------------------------------
-- Setup: a queue with a policy and a task in every state
------------------------------------------------------------------------------------------

SELECT belay.create_queue('bad', '{"max_attempts": 4, "retry": {"kind": "fixed", "base_seconds": 0}}');
-- running (lease of an hour), by priority so that each claim takes the intended task
SELECT task_id AS t_running FROM belay.spawn('bad', 'running', '{}', '{"priority": 10}') \gset
SELECT run_id AS r_running FROM belay.claim('bad', 'w', 1, 3600) \gset
-- completed
SELECT task_id AS t_completed FROM belay.spawn('bad', 'completed', '{}', '{"priority": 9}') \gset
SELECT run_id AS r_completed FROM belay.claim('bad', 'w', 1, 3600) \gset
SELECT belay.complete(:'r_completed');
-- cancelled while running
SELECT task_id AS t_cancelled FROM belay.spawn('bad', 'cancelled', '{}', '{"priority": 8}') \gset
SELECT run_id AS r_cancelled FROM belay.claim('bad', 'w', 1, 3600) \gset
SELECT belay.cancel(:'t_cancelled');
-- failed
SELECT task_id AS t_failed FROM belay.spawn('bad', 'failed', '{}', '{"priority": 7}') \gset
SELECT run_id AS r_failed FROM belay.claim('bad', 'w', 1, 3600) \gset
SELECT belay.fail(:'r_failed', '{"message": "no"}', NULL, true);
-- re-claimed: the first run failed and was retried, a second run holds the task now
SELECT task_id AS t_reclaimed FROM belay.spawn('bad', 'reclaimed', '{}', '{"priority": 6}') \gset
SELECT run_id AS r_old FROM belay.claim('bad', 'w', 1, 3600) \gset
SELECT belay.fail(:'r_old', '{"message": "first try"}');
SELECT run_id AS r_new FROM belay.claim('bad', 'w', 1, 3600) \gset
SELECT belay.set_checkpoint(:'r_new', 'step', '1');
-- pending, and delayed
SELECT task_id AS t_pending FROM belay.spawn('bad', 'pending', '{"p": 1}') \gset
SELECT task_id AS t_delayed FROM belay.spawn('bad', 'delayed', '{}', '{"delay_seconds": 3600, "idempotency_key": "k"}') \gset

SELECT queue, policy FROM belay.list_queues();
SELECT task_name, state, attempt, max_attempts, run_id IS NOT NULL AS has_run FROM belay.tasks ORDER BY task_name;
SELECT regress.fingerprint() AS baseline \gset

\pset tuples_only on

------------------------------------------------------------------------------------------
-- NULL for every argument that must not be null: 22004
------------------------------------------------------------------------------------------

SELECT regress.try($$SELECT belay.create_queue(NULL)$$);
SELECT regress.try($$SELECT belay.create_queue('newq', NULL)$$);
SELECT regress.try($$SELECT belay.create_queue('bad', NULL)$$);
SELECT regress.try($$SELECT belay.drop_queue(NULL)$$);
SELECT regress.try($$SELECT belay.spawn(NULL, 't')$$);
SELECT regress.try($$SELECT belay.spawn('bad', NULL)$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', NULL)$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', NULL)$$);
SELECT regress.try($$SELECT belay.spawn_many(NULL, 't', '[{}]')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', NULL, '[{}]')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', NULL)$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', NULL)$$);
SELECT regress.try($$SELECT belay.claim(NULL, 'w')$$);
SELECT regress.try($$SELECT belay.claim('bad', NULL)$$);
SELECT regress.try($$SELECT belay.claim('bad', 'w', NULL)$$);
SELECT regress.try($$SELECT belay.claim('bad', 'w', 1, NULL)$$);
SELECT regress.try($$SELECT belay.complete(NULL)$$);
SELECT regress.try($$SELECT belay.complete(NULL, '{}')$$);
SELECT regress.try($$SELECT belay.fail(NULL, '{}')$$);
SELECT regress.try(format($$SELECT belay.fail(%L, NULL)$$, :'r_running'));
SELECT regress.try(format($$SELECT belay.fail(%L, '{}', NULL, NULL)$$, :'r_running'));
SELECT regress.try($$SELECT belay.heartbeat(NULL)$$);
SELECT regress.try($$SELECT belay.heartbeat(NULL, 60)$$);
SELECT regress.try($$SELECT belay.set_checkpoint(NULL, 's', '1')$$);
SELECT regress.try(format($$SELECT belay.set_checkpoint(%L, NULL, '1')$$, :'r_running'));
SELECT regress.try(format($$SELECT belay.set_checkpoint(%L, 's', NULL)$$, :'r_running'));
SELECT regress.try($$SELECT belay.checkpoints(NULL)$$);
SELECT regress.try($$SELECT belay.cancel(NULL)$$);
SELECT regress.try($$SELECT belay.retry(NULL)$$);
SELECT regress.try($$SELECT belay.task(NULL)$$);
SELECT regress.try($$SELECT belay.cleanup(NULL, NULL)$$);
SELECT regress.try($$SELECT belay.cleanup('bad', NULL)$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- Queue names: 1 to 100 characters of [A-Za-z0-9_.:-]; 22023
------------------------------------------------------------------------------------------

SELECT regress.try($$SELECT belay.create_queue('')$$);
SELECT regress.try($$SELECT belay.create_queue(repeat('x', 101))$$);
SELECT regress.try($$SELECT belay.create_queue('a b')$$);
SELECT regress.try($$SELECT belay.create_queue('a/b')$$);
SELECT regress.try($$SELECT belay.create_queue('a;b')$$);
SELECT regress.try($$SELECT belay.create_queue('qü')$$);
SELECT regress.try($$SELECT belay.create_queue(E'tab\there')$$);
SELECT regress.try($$SELECT belay.drop_queue('')$$);
SELECT regress.try($$SELECT belay.drop_queue(repeat('x', 101))$$);
SELECT regress.try($$SELECT belay.drop_queue('a b')$$);
SELECT regress.try($$SELECT belay.spawn('', 't')$$);
SELECT regress.try($$SELECT belay.spawn(repeat('x', 101), 't')$$);
SELECT regress.try($$SELECT belay.spawn('a b', 't')$$);
SELECT regress.try($$SELECT belay.spawn_many('', 't', '[{}]')$$);
SELECT regress.try($$SELECT belay.spawn_many(repeat('x', 101), 't', '[{}]')$$);
SELECT regress.try($$SELECT belay.spawn_many('a*b', 't', '[{}]')$$);
SELECT regress.try($$SELECT belay.claim('', 'w')$$);
SELECT regress.try($$SELECT belay.claim(repeat('x', 101), 'w')$$);
SELECT regress.try($$SELECT belay.claim('a b', 'w')$$);
SELECT regress.try($$SELECT belay.cleanup('')$$);
SELECT regress.try($$SELECT belay.cleanup(repeat('x', 101))$$);
SELECT regress.try($$SELECT belay.cleanup('a b')$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- Other names: empty or longer than 255 characters; 22023
------------------------------------------------------------------------------------------

SELECT regress.try($$SELECT belay.spawn('bad', '')$$);
SELECT regress.try($$SELECT belay.spawn('bad', repeat('t', 256))$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', '', '[{}]')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', repeat('t', 256), '[{}]')$$);
SELECT regress.try($$SELECT belay.claim('bad', '')$$);
SELECT regress.try($$SELECT belay.claim('bad', repeat('w', 256))$$);
SELECT regress.try(format($$SELECT belay.set_checkpoint(%L, '', '1')$$, :'r_running'));
SELECT regress.try(format($$SELECT belay.set_checkpoint(%L, repeat('s', 256), '1')$$, :'r_running'));
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"idempotency_key": ""}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', jsonb_build_object('idempotency_key', repeat('k', 256)))$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- create_queue: the policy object
------------------------------------------------------------------------------------------

-- Not an object.
SELECT regress.try($$SELECT belay.create_queue('newq', '[]')$$);
SELECT regress.try($$SELECT belay.create_queue('newq', '"x"')$$);
SELECT regress.try($$SELECT belay.create_queue('newq', 'null')$$);
-- Unknown keys, at the top and nested.
SELECT regress.try($$SELECT belay.create_queue('newq', '{"priority": 1}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"max_attempts": 2, "bogus": true}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"retry": {"kind": "fixed", "bogus": 1}}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"cancellation": {"max_delay": 10}}')$$);
-- Wrong types and out of range.
SELECT regress.try($$SELECT belay.create_queue('bad', '{"max_attempts": "5"}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"max_attempts": 1.5}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"max_attempts": 0}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"max_attempts": 2147483648}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"retry": "x"}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"retry": {"kind": "linear"}}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"retry": {"jitter": 1}}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"retry": {"factor": 0.5}}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"retry": {"base_seconds": -1}}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"retry": {"max_seconds": "60"}}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"cancellation": "x"}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"cancellation": {"max_delay_seconds": 0}}')$$);
SELECT regress.try($$SELECT belay.create_queue('bad', '{"cancellation": {"max_duration_seconds": -5}}')$$);

\pset tuples_only off
-- Neither queue 'newq' nor a change to the policy of 'bad'.
SELECT queue, policy FROM belay.list_queues();
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- spawn: params and options
------------------------------------------------------------------------------------------

-- params must be an object.
SELECT regress.try($$SELECT belay.spawn('bad', 't', '[]')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '[{}]')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '1')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '"x"')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', 'null')$$);
-- options must be an object.
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '[]')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '"x"')$$);
-- Unknown keys, at the top and nested (queue is an option of spawn_child only).
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"bogus": 1}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"queue": "other"}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"priority": 1, "Priority": 2}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"retry": {"kind": "fixed", "tries": 3}}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"cancellation": {"max_delay_seconds": 5, "after": 1}}')$$);
-- Wrong JSON types.
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"max_attempts": "5"}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"max_attempts": 2.5}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"priority": 1.5}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"priority": "high"}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"headers": []}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"headers": "h"}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"retry": "x"}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"retry": {"jitter": 1}}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"retry": {"kind": 1}}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"retry": {"base_seconds": "1"}}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"cancellation": []}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"cancellation": {"max_duration_seconds": true}}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"delay_seconds": "10"}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"run_at": 1893456000}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"idempotency_key": 7}')$$);
-- Out of range.
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"max_attempts": 0}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"max_attempts": -1}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"max_attempts": 2147483648}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"priority": 32768}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"priority": -32769}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"delay_seconds": -1}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"delay_seconds": 315360001}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"retry": {"kind": "exponential"}, "max_attempts": 0}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"retry": {"factor": 101}}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"retry": {"max_seconds": -1}}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"cancellation": {"max_delay_seconds": 0}}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"cancellation": {"max_duration_seconds": -1}}')$$);
-- run_at and delay_seconds together; run_at malformed (22P02) or not finite.
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"run_at": "2100-01-01T00:00:00Z", "delay_seconds": 10}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"run_at": "2100-01-01T00:00:00Z", "delay_seconds": 0}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"run_at": "not a time"}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"run_at": "2030-13-45T00:00:00Z"}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"run_at": ""}')$$);
SELECT regress.try($$SELECT belay.spawn('bad', 't', '{}', '{"run_at": "infinity"}')$$);
-- A repeat of an existing idempotency key with a bad option is still refused.
SELECT regress.try($$SELECT belay.spawn('bad', 'delayed', '{}', '{"idempotency_key": "k", "priority": 99999}')$$);
-- Unknown queue: BL003 (also when the idempotency key exists in another queue).
SELECT regress.try($$SELECT belay.spawn('nope', 't')$$);
SELECT regress.try($$SELECT belay.spawn('nope', 't', '{}', '{"idempotency_key": "k"}')$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- spawn_many
------------------------------------------------------------------------------------------

-- params must be an array of objects.
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '{}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '{"a": [{}]}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '"x"')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '1')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', 'null')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[1, 2]')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}, {}, []]')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}, null]')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}, "x", {}]')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[[{}]]')$$);
-- options.
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '[]')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"idempotency_key": "k2"}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"bogus": 1}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"queue": "other"}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"retry": {"bogus": 1}}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"cancellation": {"bogus": 1}}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"max_attempts": "5"}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"max_attempts": 0}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"priority": 1.5}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"priority": 32768}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"priority": -32769}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"headers": []}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"retry": "x"}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"retry": {"jitter": 1}}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"delay_seconds": -1}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"run_at": "2100-01-01T00:00:00Z", "delay_seconds": 10}')$$);
SELECT regress.try($$SELECT belay.spawn_many('bad', 't', '[{}]', '{"run_at": "not a time"}')$$);
-- Unknown queue: BL003, with elements or without.
SELECT regress.try($$SELECT belay.spawn_many('nope', 't', '[{}, {}]')$$);
SELECT regress.try($$SELECT belay.spawn_many('nope', 't', '[]')$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- claim
------------------------------------------------------------------------------------------

-- qty: 1 to 1000.
SELECT regress.try($$SELECT belay.claim('bad', 'w', 0)$$);
SELECT regress.try($$SELECT belay.claim('bad', 'w', 1001)$$);
SELECT regress.try($$SELECT belay.claim('bad', 'w', -1)$$);
-- lease_seconds: greater than 0, at most ten years, finite.
SELECT regress.try($$SELECT belay.claim('bad', 'w', 1, 0)$$);
SELECT regress.try($$SELECT belay.claim('bad', 'w', 1, -1)$$);
SELECT regress.try($$SELECT belay.claim('bad', 'w', 1, 315360001)$$);
SELECT regress.try($$SELECT belay.claim('bad', 'w', 1, 'NaN')$$);
SELECT regress.try($$SELECT belay.claim('bad', 'w', 1, 'Infinity')$$);
-- Unknown queue: BL003.
SELECT regress.try($$SELECT belay.claim('nope', 'w')$$);
SELECT regress.try($$SELECT belay.claim('nope', 'w', 1000, 60)$$);

\pset tuples_only off
-- Nothing was claimed.
SELECT task_name, state FROM belay.tasks WHERE state IN ('pending', 'scheduled') ORDER BY task_name;
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- Run-scoped calls: argument checks (before the run is looked up), then fencing
------------------------------------------------------------------------------------------

-- fail: retry_at must be finite.
SELECT regress.try(format($$SELECT belay.fail(%L, '{}', 'infinity')$$, :'r_running'));
SELECT regress.try(format($$SELECT belay.fail(%L, '{}', '-infinity')$$, :'r_running'));
-- heartbeat: lease_seconds as in claim.
SELECT regress.try(format($$SELECT belay.heartbeat(%L, 0)$$, :'r_running'));
SELECT regress.try(format($$SELECT belay.heartbeat(%L, -1)$$, :'r_running'));
SELECT regress.try(format($$SELECT belay.heartbeat(%L, 315360001)$$, :'r_running'));
SELECT regress.try(format($$SELECT belay.heartbeat(%L, 'NaN')$$, :'r_running'));
-- A run that never existed: BL001.
SELECT regress.try($$SELECT belay.complete('00000000-0000-7000-8000-000000000000')$$);
SELECT regress.try($$SELECT belay.fail('00000000-0000-7000-8000-000000000000', '{}')$$);
SELECT regress.try($$SELECT belay.heartbeat('00000000-0000-7000-8000-000000000000')$$);
SELECT regress.try($$SELECT belay.set_checkpoint('00000000-0000-7000-8000-000000000000', 's', '1')$$);
-- The run of a completed task: BL001.
SELECT regress.try(format($$SELECT belay.complete(%L)$$, :'r_completed'));
SELECT regress.try(format($$SELECT belay.fail(%L, '{}')$$, :'r_completed'));
SELECT regress.try(format($$SELECT belay.heartbeat(%L)$$, :'r_completed'));
SELECT regress.try(format($$SELECT belay.set_checkpoint(%L, 's', '1')$$, :'r_completed'));
-- The run of a failed task: BL001.
SELECT regress.try(format($$SELECT belay.complete(%L)$$, :'r_failed'));
SELECT regress.try(format($$SELECT belay.fail(%L, '{}')$$, :'r_failed'));
-- The old run of a task that another run holds now: BL001.
SELECT regress.try(format($$SELECT belay.complete(%L, '{"stale": true}')$$, :'r_old'));
SELECT regress.try(format($$SELECT belay.fail(%L, '{}')$$, :'r_old'));
SELECT regress.try(format($$SELECT belay.heartbeat(%L)$$, :'r_old'));
SELECT regress.try(format($$SELECT belay.set_checkpoint(%L, 'step', '2')$$, :'r_old'));
-- The run of a cancelled task: BL002.
SELECT regress.try(format($$SELECT belay.complete(%L)$$, :'r_cancelled'));
SELECT regress.try(format($$SELECT belay.fail(%L, '{}')$$, :'r_cancelled'));
SELECT regress.try(format($$SELECT belay.heartbeat(%L, 60)$$, :'r_cancelled'));
SELECT regress.try(format($$SELECT belay.set_checkpoint(%L, 's', '1')$$, :'r_cancelled'));

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- cancel, retry, cleanup, drop_queue
------------------------------------------------------------------------------------------

-- Unknown task: 22023.
SELECT regress.try($$SELECT belay.cancel('00000000-0000-7000-8000-000000000000')$$);
SELECT regress.try($$SELECT belay.retry('00000000-0000-7000-8000-000000000000')$$);
-- retry of a task that is not failed or cancelled: 55000.
SELECT regress.try(format($$SELECT belay.retry(%L)$$, :'t_pending'));
SELECT regress.try(format($$SELECT belay.retry(%L)$$, :'t_delayed'));
SELECT regress.try(format($$SELECT belay.retry(%L)$$, :'t_running'));
SELECT regress.try(format($$SELECT belay.retry(%L)$$, :'t_completed'));
-- cleanup: older_than must not be negative; unknown queue BL003.
SELECT regress.try($$SELECT belay.cleanup('bad', '-1 day')$$);
SELECT regress.try($$SELECT belay.cleanup(NULL, '-1 second')$$);
SELECT regress.try($$SELECT belay.cleanup('nope')$$);
SELECT regress.try($$SELECT belay.cleanup('nope', '0 seconds')$$);
-- drop_queue: unknown queue BL003.
SELECT regress.try($$SELECT belay.drop_queue('nope')$$);
SELECT regress.try($$SELECT belay.drop_queue('BAD')$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
SELECT queue, policy FROM belay.list_queues();
SELECT task_name, state, attempt, max_attempts, run_id IS NOT NULL AS has_run FROM belay.tasks ORDER BY task_name;

------------------------------------------------------------------------------------------
-- A lease that has expired: the worker's run is no longer live (BL001). Only the code is
-- shown: the message depends on whether the background worker has reclaimed it yet.
------------------------------------------------------------------------------------------

SELECT belay.create_queue('lease');
SELECT task_id AS t_short FROM belay.spawn('lease', 'short') \gset
SELECT run_id AS r_short FROM belay.claim('lease', 'w', 1, 0.01) \gset
SELECT pg_sleep(0.1);
\pset tuples_only on
SELECT split_part(regress.try(format($$SELECT belay.complete(%L)$$, :'r_short')), ':', 1);
SELECT split_part(regress.try(format($$SELECT belay.fail(%L, '{}')$$, :'r_short')), ':', 1);
SELECT split_part(regress.try(format($$SELECT belay.heartbeat(%L)$$, :'r_short')), ':', 1);
SELECT split_part(regress.try(format($$SELECT belay.set_checkpoint(%L, 's', '1')$$, :'r_short')), ':', 1);
\pset tuples_only off
SELECT count(*) AS checkpoints FROM belay.checkpoints WHERE task_id = :'t_short';
SELECT state <> 'completed' AS not_completed FROM belay.task(:'t_short');

-- complete_many: NULLs, a NULL inside, results of another length, too many runs.
\pset tuples_only on
SELECT regress.try($$SELECT * FROM belay.complete_many(NULL)$$);
SELECT regress.try($$SELECT * FROM belay.complete_many(ARRAY[NULL]::uuid[])$$);
SELECT regress.try($$SELECT * FROM belay.complete_many(ARRAY[belay.uuidv7()], ARRAY['{}', '{}']::jsonb[])$$);
SELECT regress.try($$SELECT * FROM belay.complete_many(ARRAY(SELECT belay.uuidv7() FROM generate_series(1, 10001)))$$);
\pset tuples_only off

-- Clean up.
SELECT belay.drop_queue('lease');
SELECT belay.drop_queue('bad');
