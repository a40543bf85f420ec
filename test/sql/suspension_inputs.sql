-- belay: every bad input of the suspension calls (sleep, await_event, emit_event,
-- spawn_child, join) and of tick gets an error with a SQLSTATE and a message that names
-- the argument, and changes nothing.
--
-- regress.try(sql) runs one call and returns 'SQLSTATE: message (HINT: hint)', with ids
-- replaced by <uuid>; if the call changed any row of belay's tables it appends
-- [DATA CHANGED], and a call that raises no error returns 'no error'. After each section
-- the tables are compared with the snapshot taken after the setup.

-- regress.try and regress.fingerprint are created by 00_setup.sql.

------------------------------------------------------------------------------------------
-- Setup: runs in every state a run-scoped call can meet, and a live run with steps of
-- each kind. Claims go by priority, so that each takes the intended task.
------------------------------------------------------------------------------------------

SELECT belay.create_queue('susp_in');
SELECT belay.create_queue('susp_in.kids');
-- a completed run
SELECT task_id AS t_done FROM belay.spawn('susp_in', 'done', '{}', '{"priority": 10}') \gset
SELECT run_id AS r_done FROM belay.claim('susp_in', 'w', 1, 3600) \gset
SELECT belay.complete(:'r_done');
-- the run of a task cancelled while running
SELECT task_id AS t_cancelled FROM belay.spawn('susp_in', 'cancelled', '{}', '{"priority": 9}') \gset
SELECT run_id AS r_cancelled FROM belay.claim('susp_in', 'w', 1, 3600) \gset
SELECT belay.cancel(:'t_cancelled');
-- a run suspended by sleep
SELECT task_id AS t_slept FROM belay.spawn('susp_in', 'sleeping', '{}', '{"priority": 8}') \gset
SELECT run_id AS r_slept FROM belay.claim('susp_in', 'w', 1, 3600) \gset
SELECT belay.sleep(:'r_slept', 'nap', 3600::numeric);
-- a run suspended by await_event
SELECT task_id AS t_awaited FROM belay.spawn('susp_in', 'waiting', '{}', '{"priority": 7}') \gset
SELECT run_id AS r_awaited FROM belay.claim('susp_in', 'w', 1, 3600) \gset
SELECT suspended FROM belay.await_event(:'r_awaited', 'w', 'never');
-- the live run, with a plain checkpoint, a passed sleep, a settled await and a child
SELECT task_id AS t_live FROM belay.spawn('susp_in', 'live', '{}', '{"priority": 6}') \gset
SELECT run_id AS r_live FROM belay.claim('susp_in', 'w', 1, 3600) \gset
SELECT belay.set_checkpoint(:'r_live', 'plain', '1');
SELECT belay.sleep(:'r_live', 'slept', '2000-01-01T00:00:00Z'::timestamptz);
SELECT belay.emit_event('susp_in', 'ev', '"payload"');
SELECT * FROM belay.await_event(:'r_live', 'got', 'ev');
SELECT belay.spawn_child(:'r_live', 'kid', 'kid', '{}', '{"queue": "susp_in.kids"}') AS t_child \gset
-- a task that is nobody's child
SELECT task_id AS t_stranger FROM belay.spawn('susp_in', 'stranger') \gset

SELECT task_name, state, attempt, run_id IS NOT NULL AS has_run, parent_task_id IS NOT NULL AS is_child
FROM belay.tasks ORDER BY task_name;
SELECT step, value FROM belay.checkpoints WHERE task_id = :'t_live' AND step <> 'kid' ORDER BY step;
SELECT regress.fingerprint() AS baseline \gset

\pset tuples_only on

------------------------------------------------------------------------------------------
-- NULL for every argument that must not be null: 22004
------------------------------------------------------------------------------------------

SELECT regress.try($$SELECT belay.sleep(NULL, 's', '2100-01-01T00:00:00Z'::timestamptz)$$);
SELECT regress.try(format($$SELECT belay.sleep(%L, NULL, '2100-01-01T00:00:00Z'::timestamptz)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', NULL::timestamptz)$$, :'r_live'));
SELECT regress.try($$SELECT belay.sleep(NULL, 's', 10::numeric)$$);
SELECT regress.try(format($$SELECT belay.sleep(%L, NULL, 10::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', NULL::numeric)$$, :'r_live'));
SELECT regress.try($$SELECT * FROM belay.await_event(NULL, 's', 'ev')$$);
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, NULL, 'ev')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', NULL)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', NULL, 10)$$, :'r_live'));
SELECT regress.try($$SELECT belay.emit_event(NULL, 'ev')$$);
SELECT regress.try($$SELECT belay.emit_event(NULL, 'ev', '{}')$$);
SELECT regress.try($$SELECT belay.emit_event('susp_in', NULL)$$);
SELECT regress.try($$SELECT belay.emit_event('susp_in', NULL, '{}')$$);
SELECT regress.try($$SELECT belay.spawn_child(NULL, 's', 'k')$$);
SELECT regress.try(format($$SELECT belay.spawn_child(%L, NULL, 'k')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', NULL)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', NULL)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', NULL)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.join(NULL, 's', %L)$$, :'t_child'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, NULL, %L)$$, :'r_live', :'t_child'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', NULL)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', NULL, 10)$$, :'r_live'));
SELECT regress.try($$SELECT * FROM belay.tick(NULL)$$);
SELECT regress.try($$SELECT * FROM belay.tick(NULL, 10)$$);
SELECT regress.try($$SELECT * FROM belay.tick(clock_timestamp(), NULL)$$);
SELECT regress.try($$SELECT * FROM belay.tick(NULL, NULL)$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- Names: step, event, task_name and queue must not be empty or too long; 22023
------------------------------------------------------------------------------------------

SELECT regress.try(format($$SELECT belay.sleep(%L, '', '2100-01-01T00:00:00Z'::timestamptz)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, '', 10::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, repeat('s', 256), 10::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, '', 'ev')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, repeat('s', 256), 'ev')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', '')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', repeat('e', 256))$$, :'r_live'));
SELECT regress.try($$SELECT belay.emit_event('susp_in', '')$$);
SELECT regress.try($$SELECT belay.emit_event('susp_in', '', '{"x": 1}')$$);
SELECT regress.try($$SELECT belay.emit_event('susp_in', repeat('e', 256))$$);
SELECT regress.try($$SELECT belay.emit_event('', 'ev')$$);
SELECT regress.try($$SELECT belay.emit_event(repeat('q', 101), 'ev')$$);
SELECT regress.try($$SELECT belay.emit_event('susp in', 'ev')$$);
SELECT regress.try(format($$SELECT belay.spawn_child(%L, '', 'k')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, repeat('s', 256), 'k')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', '')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', repeat('k', 256))$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, '', %L)$$, :'r_live', :'t_child'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, repeat('s', 256), %L)$$, :'r_live', :'t_child'));

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- Times and timeouts: not negative, finite, at most ten years; 22023
------------------------------------------------------------------------------------------

SELECT regress.try(format($$SELECT belay.sleep(%L, 's', -1::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', -0.001::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', 'NaN'::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', 'Infinity'::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', 315360001::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', 'infinity'::timestamptz)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', '-infinity'::timestamptz)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev2', -1)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev2', -0.5)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev2', 'NaN')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev2', 'Infinity')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev2', 315360001)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L, -1)$$, :'r_live', :'t_child'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L, 'NaN')$$, :'r_live', :'t_child'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L, 315360001)$$, :'r_live', :'t_child'));
SELECT regress.try($$SELECT * FROM belay.tick('infinity')$$);
SELECT regress.try($$SELECT * FROM belay.tick('-infinity', 10)$$);
SELECT regress.try($$SELECT * FROM belay.tick(clock_timestamp(), 0)$$);
SELECT regress.try($$SELECT * FROM belay.tick(clock_timestamp(), -1)$$);
SELECT regress.try($$SELECT * FROM belay.tick(clock_timestamp(), 100001)$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- spawn_child: params and options (as spawn's, plus queue); unknown queue BL003
------------------------------------------------------------------------------------------

-- params and options must be objects.
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '[]')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '1')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', 'null')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '[]')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '"queue"')$$, :'r_live'));
-- Unknown keys, at the top and nested.
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"bogus": 1}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"idempotency_key": "k1"}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"parent_task_id": null}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"Queue": "susp_in.kids"}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"queue": "susp_in.kids", "step": "s"}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"retry": {"tries": 3}}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"cancellation": {"max_delay": 5}}')$$, :'r_live'));
-- Bad values.
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"queue": 1}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"queue": ""}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"queue": "a b"}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"max_attempts": 0}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"priority": 99999}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"delay_seconds": -1}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"idempotency_key": ""}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"cancellation": {"max_duration_seconds": 0}}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"run_at": "2100-01-01T00:00:00Z", "delay_seconds": 1}')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"run_at": "soon"}')$$, :'r_live'));
-- Unknown queue: BL003, and no step is recorded.
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"queue": "nope"}')$$, :'r_live'));
-- A repeat of a recorded step still checks its arguments.
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 'kid', 'kid', '{}', '{"bogus": 1}')$$, :'r_live'));

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- emit_event: unknown queue BL003
------------------------------------------------------------------------------------------

SELECT regress.try($$SELECT belay.emit_event('nope', 'ev')$$);
SELECT regress.try($$SELECT belay.emit_event('nope', 'ev', '{"x": 1}')$$);
SELECT regress.try($$SELECT belay.emit_event('SUSP_IN', 'ev')$$);

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- join: only an existing child of the task; 22023
------------------------------------------------------------------------------------------

SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', '00000000-0000-7000-8000-000000000000')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', '00000000-0000-7000-8000-000000000000', 0)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L)$$, :'r_live', :'t_stranger'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L)$$, :'r_live', :'t_done'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L)$$, :'r_live', :'t_live'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L)$$, :'r_live', :'r_live'));

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- Steps of one task share one namespace: a step recorded by another kind of call; 22023
------------------------------------------------------------------------------------------

SELECT regress.try(format($$SELECT belay.sleep(%L, 'plain', '2100-01-01T00:00:00Z'::timestamptz)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 'got', 10::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 'kid', 10::numeric)$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 'plain', 'ev')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 'slept', 'ev')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 'kid', 'ev')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 'plain', 'k')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 'slept', 'k')$$, :'r_live'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 'got', 'k')$$, :'r_live'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 'plain', %L)$$, :'r_live', :'t_child'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 'got', %L)$$, :'r_live', :'t_child'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 'kid', %L)$$, :'r_live', :'t_child'));

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
\pset tuples_only on

------------------------------------------------------------------------------------------
-- Run-scoped calls with a run that is not live: BL001 (BL002 once the task is cancelled)
------------------------------------------------------------------------------------------

-- A run that never existed.
SELECT regress.try($$SELECT belay.sleep('00000000-0000-7000-8000-000000000000', 's', 10::numeric)$$);
SELECT regress.try($$SELECT belay.sleep('00000000-0000-7000-8000-000000000000', 's', '2100-01-01T00:00:00Z'::timestamptz)$$);
SELECT regress.try($$SELECT * FROM belay.await_event('00000000-0000-7000-8000-000000000000', 's', 'ev')$$);
SELECT regress.try($$SELECT belay.spawn_child('00000000-0000-7000-8000-000000000000', 's', 'k')$$);
SELECT regress.try(format($$SELECT * FROM belay.join('00000000-0000-7000-8000-000000000000', 's', %L)$$, :'t_child'));
-- A task_id is not a run_id.
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', 10::numeric)$$, :'t_live'));
-- The run of a completed task.
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', 10::numeric)$$, :'r_done'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev')$$, :'r_done'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k')$$, :'r_done'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L)$$, :'r_done', :'t_child'));
-- A run suspended by sleep (the task is sleeping).
SELECT regress.try(format($$SELECT belay.sleep(%L, 'nap', 10::numeric)$$, :'r_slept'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 'nap', '2000-01-01T00:00:00Z'::timestamptz)$$, :'r_slept'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev')$$, :'r_slept'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k')$$, :'r_slept'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L)$$, :'r_slept', :'t_child'));
-- A run suspended by await_event (the task is waiting).
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 'w', 'never')$$, :'r_awaited'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 'w2', 'ev')$$, :'r_awaited'));
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', 10::numeric)$$, :'r_awaited'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k')$$, :'r_awaited'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L)$$, :'r_awaited', :'t_child'));
-- The run of a cancelled task: BL002.
SELECT regress.try(format($$SELECT belay.sleep(%L, 's', 10::numeric)$$, :'r_cancelled'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev')$$, :'r_cancelled'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k')$$, :'r_cancelled'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', %L)$$, :'r_cancelled', :'t_child'));
-- Arguments are checked before the run is looked up; the run before the queue and child.
SELECT regress.try(format($$SELECT belay.sleep(%L, '', 10::numeric)$$, :'r_done'));
SELECT regress.try(format($$SELECT * FROM belay.await_event(%L, 's', 'ev', -1)$$, :'r_slept'));
SELECT regress.try(format($$SELECT belay.spawn_child(%L, 's', 'k', '{}', '{"queue": "nope"}')$$, :'r_done'));
SELECT regress.try(format($$SELECT * FROM belay.join(%L, 's', '00000000-0000-7000-8000-000000000000')$$, :'r_done'));

\pset tuples_only off
SELECT regress.fingerprint() = :'baseline' AS unchanged;
SELECT task_name, state, attempt, run_id IS NOT NULL AS has_run, parent_task_id IS NOT NULL AS is_child
FROM belay.tasks ORDER BY task_name;

-- Clean up.
SELECT belay.drop_queue('susp_in.kids');
SELECT belay.drop_queue('susp_in');
