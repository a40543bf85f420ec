-- belay pgTAP: idempotency keys. A repeat spawn with the same key in the same queue
-- returns the existing task with created = false and changes nothing, whatever state the
-- task is in, until cleanup removes the task; keys are per queue.
BEGIN;
SELECT plan(38);

CREATE FUNCTION pg_temp.row_of(t uuid) RETURNS jsonb LANGUAGE sql AS
$$ SELECT to_jsonb(x) FROM belay.tasks x WHERE x.task_id = t $$;

SELECT belay.create_queue('tap_idem.a');
SELECT belay.create_queue('tap_idem.b');

-------------------------------------------------------------------------------------------
-- First spawn creates; repeats return the same task and change nothing.
SELECT task_id AS id1, created AS c1 FROM belay.spawn('tap_idem.a', 'send', '{"n": 1}',
  '{"idempotency_key": "k1", "priority": 1}') \gset
SELECT is(:'c1'::boolean, true, 'the first spawn with a key creates the task');
SELECT pg_temp.row_of(:'id1') AS before1 \gset

SELECT task_id AS id1b, created AS c1b FROM belay.spawn('tap_idem.a', 'other_name', '{"n": 2}',
  '{"idempotency_key": "k1", "priority": 9, "delay_seconds": 60, "max_attempts": 1, "headers": {"x": 1},
    "retry": {"kind": "fixed"}}') \gset
SELECT is(:'id1b'::uuid, :'id1'::uuid, 'a repeat spawn with the same key returns the same task_id');
SELECT is(:'c1b'::boolean, false, '... with created = false');
SELECT is(pg_temp.row_of(:'id1'), :'before1'::jsonb,
          'the repeat changed nothing: name, params, priority, delay, attempts, headers, policy stay');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_idem.a'), 1, 'the repeat created no task');

SELECT results_eq(
  $$SELECT task_id, created FROM belay.spawn('tap_idem.a', 'send', '{"n": 1}', '{"idempotency_key": "k1"}')$$,
  format('VALUES (%L::uuid, false)', :'id1'),
  'an identical repeat returns the same task, created = false');

-------------------------------------------------------------------------------------------
-- Keys are per queue, and exact.
SELECT task_id AS id_b, created AS c_b FROM belay.spawn('tap_idem.b', 'send', '{}', '{"idempotency_key": "k1"}') \gset
SELECT isnt(:'id_b'::uuid, :'id1'::uuid, 'the same key in another queue is another task');
SELECT is(:'c_b'::boolean, true, '... created = true');
SELECT task_id AS id_k2, created AS c_k2 FROM belay.spawn('tap_idem.a', 'send', '{}', '{"idempotency_key": "k2"}') \gset
SELECT ok(:'c_k2'::boolean AND :'id_k2'::uuid <> :'id1'::uuid, 'another key in the same queue creates another task');
SELECT task_id AS id_up, created AS c_up FROM belay.spawn('tap_idem.a', 'send', '{}', '{"idempotency_key": "K1"}') \gset
SELECT ok(:'c_up'::boolean AND :'id_up'::uuid <> :'id1'::uuid, 'keys are case sensitive');
SELECT is((SELECT count(*)::int FROM belay.spawn('tap_idem.a', 'nokey', '{}') s WHERE s.created)
        + (SELECT count(*)::int FROM belay.spawn('tap_idem.a', 'nokey', '{}') s WHERE s.created), 2,
          'spawns without a key always create');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_idem.a'), 5, 'queue a holds k1, k2, K1 and two keyless tasks');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_idem.b'), 1, 'queue b holds its own k1');

-------------------------------------------------------------------------------------------
-- A delayed task: the repeat does not make it due.
SELECT task_id AS id_d FROM belay.spawn('tap_idem.a', 'later', '{}', '{"idempotency_key": "kd", "delay_seconds": 600}') \gset
SELECT pg_temp.row_of(:'id_d') AS before_d \gset
SELECT is((SELECT task_id FROM belay.spawn('tap_idem.a', 'later', '{}', '{"idempotency_key": "kd"}')), :'id_d'::uuid,
          'a repeat of a delayed task returns it');
SELECT is(pg_temp.row_of(:'id_d'), :'before_d'::jsonb, 'the delayed task is unchanged (still scheduled, same available_at)');

-------------------------------------------------------------------------------------------
-- Running, completed, failed, cancelled: the key still names the task.
SELECT belay.create_queue('tap_idem.states');
SELECT task_id AS id_run FROM belay.spawn('tap_idem.states', 'run', '{}', '{"idempotency_key": "run"}') \gset
SELECT run_id AS r_run FROM belay.claim('tap_idem.states', 'tap-worker', 1, 60) \gset
SELECT pg_temp.row_of(:'id_run') AS before_run \gset
SELECT results_eq(
  $$SELECT task_id, created FROM belay.spawn('tap_idem.states', 'run', '{}', '{"idempotency_key": "run"}')$$,
  format('VALUES (%L::uuid, false)', :'id_run'), 'a repeat of a running task returns it, created = false');
SELECT is(pg_temp.row_of(:'id_run'), :'before_run'::jsonb, 'the running task is unchanged (same run, same lease)');
SELECT is_empty($$SELECT * FROM belay.claim('tap_idem.states', 'tap-worker', 1, 60)$$,
                'the repeat made nothing claimable');

SELECT belay.complete(:'r_run', '{"ok": true}');
SELECT pg_temp.row_of(:'id_run') AS before_done \gset
SELECT results_eq(
  $$SELECT task_id, created FROM belay.spawn('tap_idem.states', 'run', '{}', '{"idempotency_key": "run"}')$$,
  format('VALUES (%L::uuid, false)', :'id_run'), 'a repeat of a completed task returns it, created = false');
SELECT is(pg_temp.row_of(:'id_run'), :'before_done'::jsonb, 'the completed task is unchanged (its result stays)');
SELECT is_empty($$SELECT * FROM belay.claim('tap_idem.states', 'tap-worker', 1, 60)$$,
                'a completed task is not run again by a repeat spawn');

SELECT task_id AS id_can FROM belay.spawn('tap_idem.states', 'can', '{}', '{"idempotency_key": "can"}') \gset
SELECT belay.cancel(:'id_can') AS n_can \gset
SELECT results_eq(
  $$SELECT task_id, created FROM belay.spawn('tap_idem.states', 'can', '{}', '{"idempotency_key": "can"}')$$,
  format('VALUES (%L::uuid, false)', :'id_can'), 'a repeat of a cancelled task returns it, created = false');
SELECT is((SELECT state FROM belay.task(:'id_can')), 'cancelled', 'the cancelled task stays cancelled');

-------------------------------------------------------------------------------------------
-- After cleanup the key is free again.
-- Age the finished tasks as if a week had passed.
UPDATE belay.tasks SET finished_at = finished_at - interval '8 days'
 WHERE queue = 'tap_idem.states' AND finished_at IS NOT NULL;
SELECT is(belay.cleanup('tap_idem.states', interval '7 days'), 2::bigint, 'cleanup removes the completed and the cancelled task');
SELECT is_empty(format('SELECT * FROM belay.task(%L)', :'id_run'), 'the completed task is gone');
SELECT task_id AS id_run2, created AS c_run2 FROM belay.spawn('tap_idem.states', 'run', '{"again": 1}', '{"idempotency_key": "run"}') \gset
SELECT is(:'c_run2'::boolean, true, 'after cleanup, a spawn with the old key creates a task');
SELECT isnt(:'id_run2'::uuid, :'id_run'::uuid, '... a new task, not the old one');
SELECT is((SELECT (state, params)::text FROM belay.task(:'id_run2')), '(pending,"{""again"": 1}")',
          'the new task is pending with the new params');
SELECT results_eq(
  $$SELECT task_id, created FROM belay.spawn('tap_idem.states', 'run', '{}', '{"idempotency_key": "run"}')$$,
  format('VALUES (%L::uuid, false)', :'id_run2'), 'the key now names the new task');
SELECT task_id AS id_can2, created AS c_can2 FROM belay.spawn('tap_idem.states', 'can', '{}', '{"idempotency_key": "can"}') \gset
SELECT ok(:'c_can2'::boolean AND :'id_can2'::uuid <> :'id_can'::uuid, 'the cancelled task''s key is free after cleanup too');
SELECT is((SELECT task_id FROM belay.spawn('tap_idem.a', 'send', '{}', '{"idempotency_key": "k1"}')), :'id1'::uuid,
          'cleanup of one queue leaves the keys of another queue in place');

-------------------------------------------------------------------------------------------
-- Bad keys and bad repeats are refused and change nothing.
SELECT throws_ok($$SELECT belay.spawn('tap_idem.a', 'x', '{}', '{"idempotency_key": ""}')$$, '22023', NULL,
                 'an empty idempotency key is refused');
SELECT throws_ok($$SELECT belay.spawn('tap_idem.a', 'x', '{}', '{"idempotency_key": 42}')$$, '22023', NULL,
                 'a non-string idempotency key is refused');
SELECT throws_ok($$SELECT belay.spawn('tap_idem.a', 'x', '{}', '{"idempotency_key": "k1", "bogus": 1}')$$, '22023', NULL,
                 'a repeat with a bad option is still refused');
SELECT throws_ok($$SELECT belay.spawn('tap_idem.nope', 'x', '{}', '{"idempotency_key": "k1"}')$$, 'BL003', NULL,
                 'a keyed spawn into an unknown queue raises BL003');
SELECT throws_ok($$SELECT * FROM belay.spawn_many('tap_idem.a', 'x', '[{}, {}]', '{"idempotency_key": "km"}')$$, '22023', NULL,
                 'spawn_many refuses an idempotency key');
SELECT is(pg_temp.row_of(:'id1'), :'before1'::jsonb, 'the keyed task is still unchanged');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_idem.a'), 6, 'the refused spawns created nothing');

SELECT * FROM finish();
ROLLBACK;
