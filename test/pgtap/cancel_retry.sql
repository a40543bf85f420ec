-- belay pgTAP: cancel and retry. cancel ends pending, scheduled and running tasks (and
-- their unfinished descendants) and returns how many it cancelled; terminal tasks are left
-- alone. retry puts a failed or cancelled task back to pending with one more attempt.
BEGIN;
SELECT plan(51);

CREATE FUNCTION pg_temp.snap(t uuid) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'task', (SELECT to_jsonb(x) FROM belay.tasks x WHERE x.task_id = t),
    'runs', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.run_id), '[]') FROM belay.runs r WHERE r.task_id = t))
$$;
CREATE FUNCTION pg_temp.spawn(q text, options jsonb DEFAULT '{}') RETURNS uuid LANGUAGE sql AS
$$ SELECT task_id FROM belay.spawn(q, 'job', '{}', options) $$;
-- fail() without reading its returned text (see retry.sql).
CREATE FUNCTION pg_temp.fail(r uuid, fin boolean DEFAULT false) RETURNS void LANGUAGE plpgsql AS $$
DECLARE returned boolean;
BEGIN returned := belay.fail(r, '{"msg": "boom"}', NULL, fin) IS NOT NULL; END $$;

-------------------------------------------------------------------------------------------
-- cancel: pending, scheduled, running, backing off.
SELECT belay.create_queue('tap_cr.pending');
SELECT pg_temp.spawn('tap_cr.pending') AS t_p \gset
SELECT is(belay.cancel(:'t_p'), 1, 'cancel of a pending task returns 1');
SELECT is((SELECT state FROM belay.task(:'t_p')), 'cancelled', 'the pending task is cancelled');
SELECT ok((SELECT finished_at BETWEEN clock_timestamp() - interval '30 s' AND clock_timestamp() FROM belay.task(:'t_p')),
          'a cancelled task has finished_at, now');
SELECT is_empty($$SELECT * FROM belay.claim('tap_cr.pending', 'tap-worker', 10, 60)$$, 'a cancelled task is not claimable');

SELECT belay.create_queue('tap_cr.scheduled');
SELECT pg_temp.spawn('tap_cr.scheduled', '{"delay_seconds": 600}') AS t_s \gset
SELECT is(belay.cancel(:'t_s'), 1, 'cancel of a delayed (scheduled) task returns 1');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_s'), 'cancelled', 'the scheduled task is cancelled');
UPDATE belay.tasks SET available_at = clock_timestamp() - interval '1 s' WHERE task_id = :'t_s';
SELECT is_empty($$SELECT * FROM belay.claim('tap_cr.scheduled', 'tap-worker', 10, 60)$$,
                'a cancelled delayed task is not claimed when its time comes');

SELECT belay.create_queue('tap_cr.running');
SELECT pg_temp.spawn('tap_cr.running') AS t_r \gset
SELECT run_id AS r_r FROM belay.claim('tap_cr.running', 'tap-worker', 1, 60) \gset
SELECT is(belay.cancel(:'t_r'), 1, 'cancel of a running task returns 1');
SELECT is((SELECT (state, run_id, lease_expires_at)::text FROM belay.tasks WHERE task_id = :'t_r'), '(cancelled,,)',
          'the running task is cancelled and no longer holds a run or lease');
SELECT is((SELECT (outcome, attempt, worker)::text FROM belay.runs WHERE run_id = :'r_r'), '(cancelled,1,tap-worker)',
          'the ended run is recorded as cancelled');
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_r'), 'BL002', NULL, 'its worker gets BL002 on its next call');

SELECT belay.create_queue('tap_cr.backoff');
SELECT pg_temp.spawn('tap_cr.backoff') AS t_b \gset
SELECT pg_temp.fail(run_id) FROM belay.claim('tap_cr.backoff', 'tap-worker', 1, 60);
SELECT is(belay.cancel(:'t_b'), 1, 'cancel of a task backing off before a retry returns 1');
SELECT is((SELECT (state, attempt)::text FROM belay.task(:'t_b')), '(cancelled,2)', 'it is cancelled, attempt unchanged');
SELECT is((SELECT count(*)::int FROM belay.runs WHERE task_id = :'t_b'), 1, 'no run is added for a task that had no live run');

-------------------------------------------------------------------------------------------
-- cancel leaves terminal tasks alone.
SELECT belay.create_queue('tap_cr.terminal');
SELECT pg_temp.spawn('tap_cr.terminal') AS t_done \gset
SELECT belay.complete(run_id, '{"r": 1}') FROM belay.claim('tap_cr.terminal', 'tap-worker', 1, 60);
SELECT pg_temp.spawn('tap_cr.terminal') AS t_failed \gset
SELECT pg_temp.fail(run_id, true) FROM belay.claim('tap_cr.terminal', 'tap-worker', 1, 60);
SELECT pg_temp.snap(:'t_done') AS s_done \gset
SELECT pg_temp.snap(:'t_failed') AS s_failed \gset
SELECT pg_temp.snap(:'t_p') AS s_p \gset
SELECT is(belay.cancel(:'t_done'), 0, 'cancel of a completed task returns 0');
SELECT is(pg_temp.snap(:'t_done'), :'s_done'::jsonb, 'the completed task is unchanged');
SELECT is(belay.cancel(:'t_failed'), 0, 'cancel of a failed task returns 0');
SELECT is(pg_temp.snap(:'t_failed'), :'s_failed'::jsonb, 'the failed task is unchanged');
SELECT is(belay.cancel(:'t_p'), 0, 'cancel of a cancelled task returns 0');
SELECT is(pg_temp.snap(:'t_p'), :'s_p'::jsonb, 'the cancelled task is unchanged (same finished_at)');

SELECT throws_ok($$SELECT belay.cancel('00000000-0000-7000-8000-000000000000')$$, '22023', NULL,
                 'cancel of an unknown task raises 22023');
SELECT throws_ok($$SELECT belay.cancel(NULL)$$, '22004', NULL, 'cancel(NULL) raises 22004');

-------------------------------------------------------------------------------------------
-- cancel walks down to unfinished descendants (parents linked directly in the table).
SELECT belay.create_queue('tap_cr.tree');
SELECT pg_temp.spawn('tap_cr.tree') AS t_parent \gset
SELECT pg_temp.spawn('tap_cr.tree') AS t_child1 \gset
SELECT pg_temp.spawn('tap_cr.tree') AS t_child2 \gset
SELECT pg_temp.spawn('tap_cr.tree', '{"delay_seconds": 600}') AS t_grand \gset
SELECT pg_temp.spawn('tap_cr.tree') AS t_unrelated \gset
UPDATE belay.tasks SET parent_task_id = :'t_parent' WHERE task_id IN (:'t_child1', :'t_child2');
UPDATE belay.tasks SET parent_task_id = :'t_child1' WHERE task_id = :'t_grand';
UPDATE belay.tasks SET state = 'completed', finished_at = clock_timestamp() WHERE task_id = :'t_child2';
SELECT is(belay.cancel(:'t_parent'), 3, 'cancel of a parent cancels it, its pending child and its delayed grandchild');
SELECT results_eq(format('SELECT state FROM belay.tasks WHERE task_id IN (%L, %L, %L) ORDER BY task_id',
                         :'t_parent', :'t_child1', :'t_grand'),
                  $$VALUES ('cancelled'), ('cancelled'), ('cancelled')$$, 'the parent, child and grandchild are cancelled');
SELECT is((SELECT state FROM belay.task(:'t_child2')), 'completed', 'a finished child is left alone');
SELECT is((SELECT state FROM belay.task(:'t_unrelated')), 'pending', 'a task outside the tree is left alone');

-------------------------------------------------------------------------------------------
-- retry of a failed task.
SELECT belay.create_queue('tap_cr.retry_failed');
SELECT pg_temp.spawn('tap_cr.retry_failed', '{"max_attempts": 1}') AS t_rf \gset
SELECT pg_temp.fail(run_id) FROM belay.claim('tap_cr.retry_failed', 'tap-worker', 1, 60);
SELECT is((SELECT (state, attempt, max_attempts)::text FROM belay.task(:'t_rf')), '(failed,1,1)',
          'setup: the task failed on its only attempt');
SELECT lives_ok(format('SELECT belay.retry(%L)', :'t_rf'), 'retry of a failed task succeeds');
SELECT is((SELECT (state, attempt, max_attempts)::text FROM belay.task(:'t_rf')), '(pending,2,2)',
          'retry: pending, attempt 2, max_attempts raised to 2');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_rf'), 'pending', 'retry: claimable now (not scheduled)');
SELECT is((SELECT (error, finished_at)::text FROM belay.task(:'t_rf')), '(,)', 'retry clears the error and finished_at');
SELECT ok((SELECT available_at BETWEEN clock_timestamp() - interval '30 s' AND clock_timestamp() FROM belay.task(:'t_rf')),
          'retry makes the task available now');
SELECT run_id AS r_rf, attempt AS a_rf FROM belay.claim('tap_cr.retry_failed', 'tap-worker', 1, 60) \gset
SELECT is(:a_rf::int, 2, 'the retried task is claimed as attempt 2');
SELECT pg_temp.fail(:'r_rf');
SELECT is((SELECT (state, attempt)::text FROM belay.task(:'t_rf')), '(failed,2)',
          'retry allowed exactly one more attempt: the next failure is final');

SELECT belay.create_queue('tap_cr.retry_final');
SELECT pg_temp.spawn('tap_cr.retry_final') AS t_rfin \gset
SELECT pg_temp.fail(run_id, true) FROM belay.claim('tap_cr.retry_final', 'tap-worker', 1, 60);
SELECT belay.retry(:'t_rfin');
SELECT is((SELECT (state, attempt, max_attempts)::text FROM belay.task(:'t_rfin')), '(pending,2,5)',
          'retry of a task failed with final on attempt 1 of 5: attempt 2, max_attempts stays 5');

-- retry of a cancelled task.
SELECT belay.retry(:'t_p');
SELECT is((SELECT (state, attempt, max_attempts, finished_at)::text FROM belay.task(:'t_p')), '(pending,2,5,)',
          'retry of a cancelled task: pending, attempt 2, finished_at cleared');
SELECT is((SELECT task_id FROM belay.claim('tap_cr.pending', 'tap-worker', 1, 60)), :'t_p'::uuid,
          'the retried cancelled task is claimable again');
SELECT belay.retry(:'t_s');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_s'), 'pending',
          'a cancelled delayed task comes back pending, claimable now');
SELECT belay.retry(:'t_r');
SELECT run_id AS r_r2 FROM belay.claim('tap_cr.running', 'tap-worker', 1, 60) \gset
SELECT isnt(:'r_r2'::uuid, :'r_r'::uuid, 'a task cancelled while running, retried, runs under a new run');
SELECT lives_ok(format('SELECT belay.complete(%L)', :'r_r2'), 'the new run can complete');

-------------------------------------------------------------------------------------------
-- retry of anything but failed or cancelled is refused and changes nothing.
SELECT belay.create_queue('tap_cr.retry_bad');
SELECT pg_temp.spawn('tap_cr.retry_bad') AS t_rb_running \gset
SELECT run_id AS r_rb FROM belay.claim('tap_cr.retry_bad', 'tap-worker', 1, 60) \gset
SELECT pg_temp.spawn('tap_cr.retry_bad') AS t_rb_pending \gset
SELECT pg_temp.spawn('tap_cr.retry_bad', '{"delay_seconds": 600}') AS t_rb_sched \gset
SELECT pg_temp.snap(:'t_rb_running') AS s_rb_running \gset
SELECT pg_temp.snap(:'t_rb_pending') AS s_rb_pending \gset
SELECT pg_temp.snap(:'t_rb_sched') AS s_rb_sched \gset
SELECT pg_temp.snap(:'t_done') AS s_done2 \gset
SELECT throws_ok(format('SELECT belay.retry(%L)', :'t_rb_pending'), '55000', NULL, 'retry of a pending task raises 55000');
SELECT is(pg_temp.snap(:'t_rb_pending'), :'s_rb_pending'::jsonb, 'the pending task is unchanged');
SELECT throws_ok(format('SELECT belay.retry(%L)', :'t_rb_sched'), '55000', NULL, 'retry of a delayed task raises 55000');
SELECT is(pg_temp.snap(:'t_rb_sched'), :'s_rb_sched'::jsonb, 'the delayed task is unchanged');
SELECT throws_ok(format('SELECT belay.retry(%L)', :'t_rb_running'), '55000', NULL, 'retry of a running task raises 55000');
SELECT is(pg_temp.snap(:'t_rb_running'), :'s_rb_running'::jsonb, 'the running task is unchanged (same run and lease)');
SELECT throws_ok(format('SELECT belay.retry(%L)', :'t_done'), '55000', NULL, 'retry of a completed task raises 55000');
SELECT is(pg_temp.snap(:'t_done'), :'s_done2'::jsonb, 'the completed task is unchanged');
SELECT throws_ok($$SELECT belay.retry('00000000-0000-7000-8000-000000000000')$$, '22023', NULL,
                 'retry of an unknown task raises 22023');
SELECT throws_ok($$SELECT belay.retry(NULL)$$, '22004', NULL, 'retry(NULL) raises 22004');
SELECT lives_ok(format('SELECT belay.complete(%L)', :'r_rb'), 'the running task''s run is still live after the refused retry');

SELECT * FROM finish();
ROLLBACK;
