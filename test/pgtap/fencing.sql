-- belay pgTAP: fencing. Every run-scoped call (complete, fail, heartbeat, set_checkpoint)
-- names its run; once the run is no longer the task's live run the call raises BL001
-- (BL002 when the task was cancelled) and changes nothing.
BEGIN;
SELECT plan(51);

-- Everything belay keeps about one task: its row, its ended runs, its checkpoints.
CREATE FUNCTION pg_temp.snap(t uuid) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'task', (SELECT to_jsonb(x) FROM belay.tasks x WHERE x.task_id = t),
    'runs', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.run_id), '[]') FROM belay.runs r WHERE r.task_id = t),
    'checkpoints', (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.step), '[]') FROM belay.checkpoints c WHERE c.task_id = t))
$$;
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
  SELECT format('%s tasks, %s runs, %s checkpoints', (SELECT count(*) FROM belay.tasks),
                (SELECT count(*) FROM belay.runs), (SELECT count(*) FROM belay.checkpoints))
$$;
-- fail() without reading its returned text (see retry.sql); the task's state after.
CREATE FUNCTION pg_temp.fail(r uuid, err jsonb DEFAULT '{}') RETURNS void LANGUAGE plpgsql AS $$
DECLARE returned boolean;
BEGIN returned := belay.fail(r, err) IS NOT NULL; END $$;

-- The lease-expiry scenario is set up first so that the suite sleeps only once.
SELECT belay.create_queue('tap_fence.lease');
SELECT task_id AS t_lease FROM belay.spawn('tap_fence.lease', 'x') \gset
SELECT run_id AS r_lease FROM belay.claim('tap_fence.lease', 'tap-worker', 1, 0.3) \gset

-------------------------------------------------------------------------------------------
-- After complete.
SELECT belay.create_queue('tap_fence.done');
SELECT task_id AS t_done FROM belay.spawn('tap_fence.done', 'x') \gset
SELECT run_id AS r_done FROM belay.claim('tap_fence.done', 'tap-worker', 1, 60) \gset
SELECT belay.set_checkpoint(:'r_done', 'step', '1');
SELECT belay.complete(:'r_done', '{"ok": 1}');
SELECT pg_temp.snap(:'t_done') AS s_done \gset
SELECT throws_ok(format('SELECT belay.complete(%L, %L)', :'r_done', '{"again": 1}'), 'BL001', NULL,
                 'complete of a completed run raises BL001');
SELECT throws_ok(format('SELECT belay.fail(%L, %L)', :'r_done', '{}'), 'BL001', NULL,
                 'fail of a completed run raises BL001');
SELECT throws_ok(format('SELECT belay.heartbeat(%L)', :'r_done'), 'BL001', NULL,
                 'heartbeat of a completed run raises BL001');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_done', 'step', '2'), 'BL001', NULL,
                 'set_checkpoint of a completed run raises BL001');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_done', 'new_step', '2'), 'BL001', NULL,
                 'set_checkpoint of a new step by a completed run raises BL001');
SELECT is(pg_temp.snap(:'t_done'), :'s_done'::jsonb, 'the completed task, its run and checkpoint are unchanged');
SELECT is((SELECT (state, result)::text FROM belay.task(:'t_done')), '(completed,"{""ok"": 1}")',
          'the task is still completed with the first result');
-- The completing run is kept in the task row, and belay.runs shows it from there. The
-- refusal does not look it up there (completed runs are not indexed by run_id).
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_done'), 'BL001', format('run %s is not a live run', :'r_done'),
                 'the refusal says no task is held by the run');
SELECT is((SELECT (run_id = :'r_done', outcome, worker, attempt, ended_at >= started_at, error IS NULL)::text
             FROM belay.runs WHERE task_id = :'t_done'), '(t,completed,tap-worker,1,t,t)',
          'belay.runs lists the completing run once, by task_id');
SELECT is((SELECT count(*)::int FROM belay.runs WHERE run_id = :'r_done') +
          (SELECT count(*)::int FROM belay.run_history WHERE task_id = :'t_done') * 10, 1,
          'and by run_id; belay.run_history holds no copy of it');

-------------------------------------------------------------------------------------------
-- After fail, while the task backs off (no new run yet).
SELECT belay.create_queue('tap_fence.backoff');
SELECT task_id AS t_bo FROM belay.spawn('tap_fence.backoff', 'x') \gset
SELECT run_id AS r_bo FROM belay.claim('tap_fence.backoff', 'tap-worker', 1, 60) \gset
SELECT pg_temp.fail(:'r_bo', '{"msg": "first"}');
SELECT pg_temp.snap(:'t_bo') AS s_bo \gset
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_bo'), 'BL001', NULL, 'complete of a failed run raises BL001');
SELECT throws_ok(format('SELECT belay.fail(%L, %L)', :'r_bo', '{}'), 'BL001', NULL, 'fail of a failed run raises BL001');
SELECT throws_ok(format('SELECT belay.heartbeat(%L, 60)', :'r_bo'), 'BL001', NULL, 'heartbeat of a failed run raises BL001');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_bo', 's', '1'), 'BL001', NULL,
                 'set_checkpoint of a failed run raises BL001');
SELECT is(pg_temp.snap(:'t_bo'), :'s_bo'::jsonb, 'the backing-off task is unchanged (attempt, error, available_at)');

-------------------------------------------------------------------------------------------
-- After fail and a re-claim: the old run is stale, the new one is live.
SELECT belay.create_queue('tap_fence.reclaim');
SELECT task_id AS t_rc FROM belay.spawn('tap_fence.reclaim', 'x', '{}', '{"retry": {"base_seconds": 0}}') \gset
SELECT run_id AS r_old FROM belay.claim('tap_fence.reclaim', 'tap-worker', 1, 60) \gset
SELECT belay.set_checkpoint(:'r_old', 'step', '"old"');
SELECT pg_temp.fail(:'r_old');
SELECT run_id AS r_new, attempt AS a_new FROM belay.claim('tap_fence.reclaim', 'tap-worker-2', 1, 60) \gset
SELECT is(:a_new::int, 2, 'the re-claim is attempt 2 under a new run');
SELECT pg_temp.snap(:'t_rc') AS s_rc \gset
SELECT throws_ok(format('SELECT belay.complete(%L, %L)', :'r_old', '{"stale": true}'), 'BL001', NULL,
                 'complete by the stale run raises BL001');
SELECT throws_ok(format('SELECT belay.fail(%L, %L, NULL, true)', :'r_old', '{}'), 'BL001', NULL,
                 'fail by the stale run raises BL001');
SELECT throws_ok(format('SELECT belay.heartbeat(%L, 3600)', :'r_old'), 'BL001', NULL,
                 'heartbeat by the stale run raises BL001');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_old', 'step', '"stale"'), 'BL001', NULL,
                 'set_checkpoint by the stale run raises BL001');
SELECT is(pg_temp.snap(:'t_rc'), :'s_rc'::jsonb,
          'the stale calls changed nothing: the new run, its lease and the checkpoint are intact');
SELECT is((SELECT (run_id, worker, state)::text FROM belay.tasks WHERE task_id = :'t_rc'),
          (SELECT (:'r_new'::uuid, 'tap-worker-2', 'running')::text), 'the task is still held by the new run');
-- The live run still works.
SELECT clock_timestamp() AS hb1_before \gset
SELECT belay.heartbeat(:'r_new', 120) AS hb1 \gset
SELECT clock_timestamp() AS hb1_after \gset
SELECT ok(:'hb1'::timestamptz BETWEEN :'hb1_before'::timestamptz + interval '120 s' AND :'hb1_after'::timestamptz + interval '120 s',
          'heartbeat of the live run returns the new expiry, lease_seconds from now');
SELECT is((SELECT lease_expires_at FROM belay.tasks WHERE task_id = :'t_rc'), :'hb1'::timestamptz,
          'the heartbeat moved the task''s lease to the returned expiry');
SELECT clock_timestamp() AS hb2_before \gset
SELECT belay.heartbeat(:'r_new') AS hb2 \gset
SELECT clock_timestamp() AS hb2_after \gset
SELECT ok(:'hb2'::timestamptz BETWEEN :'hb2_before'::timestamptz + interval '60 s' AND :'hb2_after'::timestamptz + interval '60 s',
          'heartbeat without lease_seconds extends by the claimed lease (60 s)');
SELECT lives_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_new', 'step', '"new"'), 'the live run can checkpoint');
SELECT lives_ok(format('SELECT belay.complete(%L, %L)', :'r_new', '{"by": "new"}'), 'the live run can complete');
SELECT is((SELECT (state, result)::text FROM belay.task(:'t_rc')), '(completed,"{""by"": ""new""}")',
          'the task completed with the live run''s result');
SELECT results_eq(format('SELECT run_id, outcome FROM belay.runs WHERE task_id = %L ORDER BY attempt', :'t_rc'),
                  format('VALUES (%L::uuid, %L), (%L::uuid, %L)', :'r_old', 'failed', :'r_new', 'completed'),
                  'belay.runs: the old run failed, the new one completed');

-------------------------------------------------------------------------------------------
-- A run_id that never existed.
SELECT pg_temp.counts() AS c_before \gset
SELECT throws_ok($$SELECT belay.complete('00000000-0000-7000-8000-000000000000')$$, 'BL001', NULL,
                 'complete with an unknown run raises BL001');
SELECT throws_ok($$SELECT belay.fail('00000000-0000-7000-8000-000000000000', '{}')$$, 'BL001', NULL,
                 'fail with an unknown run raises BL001');
SELECT throws_ok($$SELECT belay.heartbeat('00000000-0000-7000-8000-000000000000')$$, 'BL001', NULL,
                 'heartbeat with an unknown run raises BL001');
SELECT throws_ok($$SELECT belay.set_checkpoint('00000000-0000-7000-8000-000000000000', 's', '1')$$, 'BL001', NULL,
                 'set_checkpoint with an unknown run raises BL001');
SELECT throws_ok(format('SELECT belay.complete(%L)', :'t_done'), 'BL001', NULL,
                 'a task_id is not a run_id: BL001');
SELECT is(pg_temp.counts(), :'c_before', 'the unknown-run calls changed nothing');
SELECT throws_ok($$SELECT belay.complete(NULL)$$, '22004', NULL, 'complete with a NULL run is refused with 22004');
SELECT throws_ok($$SELECT belay.heartbeat(NULL)$$, '22004', NULL, 'heartbeat with a NULL run is refused with 22004');

-------------------------------------------------------------------------------------------
-- After cancel: BL002.
SELECT belay.create_queue('tap_fence.cancel');
SELECT task_id AS t_can FROM belay.spawn('tap_fence.cancel', 'x') \gset
SELECT run_id AS r_can FROM belay.claim('tap_fence.cancel', 'tap-worker', 1, 60) \gset
SELECT belay.set_checkpoint(:'r_can', 'step', '1');
SELECT is(belay.cancel(:'t_can'), 1, 'cancel of the running task cancels it');
SELECT pg_temp.snap(:'t_can') AS s_can \gset
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_can'), 'BL002', NULL, 'complete after cancel raises BL002');
SELECT throws_ok(format('SELECT belay.fail(%L, %L)', :'r_can', '{}'), 'BL002', NULL, 'fail after cancel raises BL002');
SELECT throws_ok(format('SELECT belay.heartbeat(%L)', :'r_can'), 'BL002', NULL, 'heartbeat after cancel raises BL002');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_can', 'step', '2'), 'BL002', NULL,
                 'set_checkpoint after cancel raises BL002');
SELECT is(pg_temp.snap(:'t_can'), :'s_can'::jsonb, 'the cancelled task is unchanged by the refused calls');
SELECT is((SELECT state FROM belay.task(:'t_can')), 'cancelled', 'the task stays cancelled');

-------------------------------------------------------------------------------------------
-- After the lease expired (no one else has claimed the task).
SELECT pg_sleep(0.5);
SELECT pg_temp.snap(:'t_lease') AS s_lease \gset
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_lease'), 'BL001', NULL, 'complete after the lease expired raises BL001');
SELECT throws_ok(format('SELECT belay.fail(%L, %L)', :'r_lease', '{}'), 'BL001', NULL, 'fail after the lease expired raises BL001');
SELECT throws_ok(format('SELECT belay.heartbeat(%L, 60)', :'r_lease'), 'BL001', NULL,
                 'heartbeat after the lease expired raises BL001 (a lost lease is not revived)');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_lease', 's', '1'), 'BL001', NULL,
                 'set_checkpoint after the lease expired raises BL001');
SELECT is(pg_temp.snap(:'t_lease'), :'s_lease'::jsonb, 'the calls on an expired lease changed nothing');
SELECT is((SELECT (state, run_id, result, error)::text FROM belay.tasks WHERE task_id = :'t_lease'),
          (SELECT ('running', :'r_lease'::uuid, NULL::jsonb, NULL::jsonb)::text),
          'the task was neither completed nor failed by the expired run');
SELECT is((SELECT count(*)::int FROM belay.checkpoints WHERE task_id = :'t_lease'), 0, 'no checkpoint was written');

SELECT * FROM finish();
ROLLBACK;
