-- belay pgTAP: checkpoints (durable steps). set_checkpoint upserts a step of the task of a
-- live run; checkpoints() lists a task's steps; claim returns them as one object
-- {step: value} so that a re-run gets its finished steps back.
BEGIN;
SELECT plan(34);

-- fail() without reading its returned text (see retry.sql).
CREATE FUNCTION pg_temp.fail(r uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE returned boolean;
BEGIN returned := belay.fail(r, '{"msg": "boom"}') IS NOT NULL; END $$;
CREATE FUNCTION pg_temp.cps(t uuid) RETURNS jsonb LANGUAGE sql AS
$$ SELECT coalesce(jsonb_object_agg(step, value), '{}') FROM belay.checkpoints(t) $$;

SELECT belay.create_queue('tap_cp.main');
SELECT belay.create_queue('tap_cp.other');
-- Retries are due at once, so a failed run can be re-claimed without waiting.
SELECT task_id AS t FROM belay.spawn('tap_cp.main', 'steps', '{}', '{"retry": {"base_seconds": 0}}') \gset
SELECT task_id AS t_other FROM belay.spawn('tap_cp.other', 'other') \gset

SELECT run_id AS r1, checkpoints AS cp1 FROM belay.claim('tap_cp.main', 'tap-worker', 1, 60) \gset
SELECT is(:'cp1'::jsonb, '{}'::jsonb, 'the first claim of a task returns no checkpoints: {}');
SELECT is_empty(format('SELECT * FROM belay.checkpoints(%L)', :'t'), 'checkpoints() of a fresh task is empty');

-------------------------------------------------------------------------------------------
-- set_checkpoint stores any JSON value; checkpoints() lists them.
SELECT lives_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r1', 'a', '1'), 'set_checkpoint of a number');
SELECT lives_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r1', 'b', '{"x": [1, 2]}'), 'set_checkpoint of an object');
SELECT lives_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r1', 'c', '"text"'), 'set_checkpoint of a string');
SELECT lives_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r1', 'n', 'null'), 'set_checkpoint of JSON null');
SELECT set_eq(format('SELECT step, value FROM belay.checkpoints(%L)', :'t'),
              $$VALUES ('a', '1'::jsonb), ('b', '{"x": [1, 2]}'::jsonb), ('c', '"text"'::jsonb), ('n', 'null'::jsonb)$$,
              'checkpoints() lists every step with its value');
SELECT ok((SELECT bool_and(updated_at BETWEEN clock_timestamp() - interval '30 s' AND clock_timestamp())
           FROM belay.checkpoints(:'t')), 'each step has updated_at, now');
SELECT is((SELECT count(*)::int FROM belay.checkpoints WHERE task_id = :'t' AND run_id = :'r1'), 4,
          'each step records the run that wrote it');

-- Upsert.
SELECT updated_at AS a_updated FROM belay.checkpoints(:'t') WHERE step = 'a' \gset
SELECT pg_sleep(0.01);
SELECT belay.set_checkpoint(:'r1', 'a', '2');
SELECT is((SELECT count(*)::int FROM belay.checkpoints(:'t')), 4, 'setting an existing step adds no row');
SELECT is((SELECT value FROM belay.checkpoints(:'t') WHERE step = 'a'), '2'::jsonb, 'setting an existing step replaces its value');
SELECT cmp_ok((SELECT updated_at FROM belay.checkpoints(:'t') WHERE step = 'a'), '>', :'a_updated'::timestamptz,
              '... and moves its updated_at');
SELECT is((SELECT value FROM belay.checkpoints(:'t') WHERE step = 'b'), '{"x": [1, 2]}'::jsonb, 'other steps are untouched');

-- Steps belong to their task.
SELECT run_id AS r_other FROM belay.claim('tap_cp.other', 'tap-worker', 1, 60) \gset
SELECT belay.set_checkpoint(:'r_other', 'a', '"other"');
SELECT is(pg_temp.cps(:'t_other'), '{"a": "other"}'::jsonb, 'another task has its own step a');
SELECT is((SELECT value FROM belay.checkpoints(:'t') WHERE step = 'a'), '2'::jsonb, '... which does not touch this task''s step a');
SELECT is_empty($$SELECT * FROM belay.checkpoints('00000000-0000-7000-8000-000000000000')$$,
                'checkpoints() of an unknown task is empty');

-------------------------------------------------------------------------------------------
-- A re-claim gets the steps back as one object.
SELECT pg_temp.fail(:'r1');
SELECT run_id AS r2, attempt AS a2, checkpoints AS cp2 FROM belay.claim('tap_cp.main', 'tap-worker', 1, 60) \gset
SELECT is(:a2::int, 2, 'the task is re-claimed as attempt 2');
SELECT is(:'cp2'::jsonb, '{"a": 2, "b": {"x": [1, 2]}, "c": "text", "n": null}'::jsonb,
          'the re-claim returns every finished step as {step: value}, JSON null included');
SELECT is(pg_temp.cps(:'t'), :'cp2'::jsonb, 'claim''s object matches checkpoints()');

SELECT belay.set_checkpoint(:'r2', 'b', '"rewritten"');
SELECT belay.set_checkpoint(:'r2', 'd', 'true');
SELECT is(pg_temp.cps(:'t'), '{"a": 2, "b": "rewritten", "c": "text", "d": true, "n": null}'::jsonb,
          'the new run can overwrite a step and add one');
SELECT is((SELECT run_id FROM belay.checkpoints WHERE task_id = :'t' AND step = 'b'), :'r2'::uuid,
          'an overwritten step records the new run');
SELECT is((SELECT run_id FROM belay.checkpoints WHERE task_id = :'t' AND step = 'a'), :'r1'::uuid,
          'an untouched step still records the run that wrote it');

SELECT pg_temp.fail(:'r2');
SELECT is((SELECT checkpoints FROM belay.claim('tap_cp.main', 'tap-worker', 1, 60)),
          '{"a": 2, "b": "rewritten", "c": "text", "d": true, "n": null}'::jsonb,
          'the third claim returns the steps as the second run left them');

-- A batch claim gives each task its own steps.
SELECT belay.create_queue('tap_cp.batch');
SELECT count(*) AS n FROM belay.spawn_many('tap_cp.batch', 'b', '[{"i": 1}, {"i": 2}, {"i": 3}]',
                                           '{"retry": {"base_seconds": 0}}') \gset
CREATE TEMP TABLE batch_runs AS SELECT run_id, params FROM belay.claim('tap_cp.batch', 'tap-worker', 3, 60);
SELECT count(*) AS n FROM (SELECT belay.set_checkpoint(run_id, 'i', params -> 'i') FROM batch_runs
                           WHERE params ->> 'i' <> '3') s \gset
SELECT count(*) AS n FROM (SELECT pg_temp.fail(run_id) FROM batch_runs) s \gset
SELECT set_eq($$SELECT params, checkpoints FROM belay.claim('tap_cp.batch', 'tap-worker', 3, 60)$$,
              $$VALUES ('{"i": 1}'::jsonb, '{"i": 1}'::jsonb), ('{"i": 2}'::jsonb, '{"i": 2}'::jsonb), ('{"i": 3}'::jsonb, '{}'::jsonb)$$,
              'a batch claim returns each task with its own steps, {} for a task without any');

-------------------------------------------------------------------------------------------
-- Steps outlive the task's completion (until cleanup).
SELECT belay.complete(:'r_other');
SELECT is(pg_temp.cps(:'t_other'), '{"a": "other"}'::jsonb, 'checkpoints() still lists the steps of a completed task');

-------------------------------------------------------------------------------------------
-- Bad calls are refused and change nothing.
SELECT run_id AS r3 FROM belay.tasks WHERE task_id = :'t' \gset
SELECT pg_temp.cps(:'t') AS before_bad \gset
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, NULL, %L)', :'r3', '1'), '22004', NULL, 'a NULL step is refused');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r3', '', '1'), '22023', NULL, 'an empty step is refused');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r3', repeat('s', 256), '1'), '22023', NULL,
                 'a step name over 255 characters is refused');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, NULL)', :'r3', 'a'), '22004', NULL,
                 'a NULL value is refused (JSON null is the way to store null)');
SELECT throws_ok($$SELECT belay.set_checkpoint(NULL, 'a', '1')$$, '22004', NULL, 'a NULL run is refused');
SELECT throws_ok($$SELECT * FROM belay.checkpoints(NULL)$$, '22004', NULL, 'checkpoints(NULL) is refused');
SELECT is(pg_temp.cps(:'t'), :'before_bad'::jsonb, 'the refused calls changed no step');
SELECT lives_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r3', repeat('s', 255), '1'),
                'a step name of 255 characters is fine');
SELECT is((SELECT value FROM belay.checkpoints(:'t') WHERE step = repeat('s', 255)), '1'::jsonb, '... and is stored');

SELECT * FROM finish();
ROLLBACK;
