-- belay pgTAP: cancellation of task trees, cancellation deadlines and lease reclaim.
-- cancel(task) cancels the task and its unfinished descendants in any queue, leaves
-- terminal ones alone, ends live runs (their workers get BL002) and wakes a parent that
-- joins the cancelled root. tick(now) enforces the cancellation policy
-- (max_delay_seconds before the first start, max_duration_seconds after it) and reclaims
-- expired leases, retrying or failing the task by its policy.
--
-- tick() works across every queue, so each section starts from an empty belay (its
-- DELETE, like everything else here, is rolled back at the end) and checks tick's counts
-- exactly. Times are driven through tick(now) with a time in the future: nothing waits.
BEGIN;
SELECT plan(93);

CREATE FUNCTION pg_temp.reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM belay.tasks; DELETE FROM belay.queues $$;
CREATE FUNCTION pg_temp.spawn(q text, options jsonb DEFAULT '{}') RETURNS uuid LANGUAGE sql AS
$$ SELECT task_id FROM belay.spawn(q, 'job', '{}', options) $$;
-- Claims with a lease of ten days (no tick below reclaims it), or of `lease` seconds.
CREATE FUNCTION pg_temp.claim1(q text, lease numeric DEFAULT 864000) RETURNS uuid LANGUAGE sql AS
$$ SELECT run_id FROM belay.claim(q, 'tap-worker', 1, lease) $$;
CREATE FUNCTION pg_temp.tick(ahead interval) RETURNS text LANGUAGE sql AS
$$ SELECT format('woken %s, timed_out %s, reclaimed %s, cancelled %s', woken, timed_out, reclaimed, cancelled)
   FROM belay.tick(clock_timestamp() + ahead) $$;
CREATE FUNCTION pg_temp.state(t uuid) RETURNS text LANGUAGE sql AS $$ SELECT state FROM belay.task(t) $$;
CREATE FUNCTION pg_temp.states(ts uuid[]) RETURNS text[] LANGUAGE sql AS
$$ SELECT array_agg((SELECT state FROM belay.task(t)) ORDER BY n) FROM unnest(ts) WITH ORDINALITY u(t, n) $$;
CREATE FUNCTION pg_temp.joined(r uuid, s text, c uuid, timeout numeric DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('suspended', j.suspended, 'state', j.state, 'result', j.result, 'error', j.error)
   FROM belay.join(r, s, c, timeout) j $$;
-- fail() without reading its returned text (see retry.sql).
CREATE FUNCTION pg_temp.fail(r uuid, err jsonb, fin boolean DEFAULT false) RETURNS void LANGUAGE plpgsql AS $$
DECLARE returned boolean;
BEGIN returned := belay.fail(r, err, NULL, fin) IS NOT NULL; END $$;
-- Everything belay keeps about one task.
CREATE FUNCTION pg_temp.snap(t uuid) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'task', (SELECT to_jsonb(x) FROM belay.tasks x WHERE x.task_id = t),
    'runs', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.run_id), '[]') FROM belay.runs r WHERE r.task_id = t),
    'checkpoints', (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.step), '[]') FROM belay.checkpoints c WHERE c.task_id = t),
    'waits', (SELECT coalesce(jsonb_agg(to_jsonb(w)), '[]') FROM belay.waits w WHERE w.task_id = t))
$$;

-------------------------------------------------------------------------------------------
-- A tree across three queues:
--   P (a, waiting: joins c1)
--   ├── c1 (b, running)
--   │   ├── g1 (a, delayed)
--   │   └── g2 (c, sleeping)
--   │       ├── gg1 (b, failed)      terminal
--   │       └── gg2 (b, pending)
--   ├── c2 (c, pending)
--   └── c3 (b, completed)            terminal
-- and an unrelated pending task in a.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.a');
SELECT belay.create_queue('tap_cancel.b');
SELECT belay.create_queue('tap_cancel.c');
SELECT pg_temp.spawn('tap_cancel.a') AS t_p \gset
SELECT pg_temp.claim1('tap_cancel.a') AS r_p \gset
SELECT belay.spawn_child(:'r_p', 'c1', 'kid', '{}', '{"queue": "tap_cancel.b"}') AS t_c1 \gset
SELECT belay.spawn_child(:'r_p', 'c2', 'kid', '{}', '{"queue": "tap_cancel.c", "priority": -1}') AS t_c2 \gset
SELECT belay.spawn_child(:'r_p', 'c3', 'kid', '{}', '{"queue": "tap_cancel.b", "priority": 10}') AS t_c3 \gset
SELECT belay.complete(pg_temp.claim1('tap_cancel.b'), '{"done": 3}');
SELECT pg_temp.claim1('tap_cancel.b') AS r_c1 \gset
SELECT belay.spawn_child(:'r_c1', 'g1', 'grand', '{}', '{"queue": "tap_cancel.a", "delay_seconds": 600}') AS t_g1 \gset
SELECT belay.spawn_child(:'r_c1', 'g2', 'grand', '{}', '{"queue": "tap_cancel.c", "priority": 10}') AS t_g2 \gset
SELECT pg_temp.claim1('tap_cancel.c') AS r_g2 \gset
SELECT belay.spawn_child(:'r_g2', 'gg1', 'great', '{}', '{"queue": "tap_cancel.b", "max_attempts": 1}') AS t_gg1 \gset
SELECT pg_temp.fail(pg_temp.claim1('tap_cancel.b'), '{"msg": "gg1"}');
SELECT belay.spawn_child(:'r_g2', 'gg2', 'great', '{}', '{"queue": "tap_cancel.b"}') AS t_gg2 \gset
SELECT belay.sleep(:'r_g2', 'nap', 3600::numeric);
SELECT pg_temp.joined(:'r_p', 'j', :'t_c1');
SELECT pg_temp.spawn('tap_cancel.a') AS t_other \gset
SELECT is(pg_temp.states(ARRAY[:'t_p', :'t_c1', :'t_c2', :'t_c3', :'t_g1', :'t_g2', :'t_gg1', :'t_gg2', :'t_other']::uuid[]),
          '{waiting,running,pending,completed,pending,sleeping,failed,pending,pending}',
          'setup: the tree is in the intended states');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_g1'), 'scheduled', 'setup: g1 is delayed');
SELECT pg_temp.snap(:'t_c3') AS s_c3 \gset
SELECT pg_temp.snap(:'t_gg1') AS s_gg1 \gset
SELECT pg_temp.snap(:'t_other') AS s_other \gset

SELECT is(belay.cancel(:'t_p'), 6, 'cancel of the root returns 6: itself and its five unfinished descendants');
SELECT is(pg_temp.states(ARRAY[:'t_p', :'t_c1', :'t_c2', :'t_g1', :'t_g2', :'t_gg2']::uuid[]),
          '{cancelled,cancelled,cancelled,cancelled,cancelled,cancelled}',
          'the root, children and grandchildren in all three queues are cancelled, whatever their state');
SELECT is((SELECT count(*)::int FROM belay.tasks
           WHERE task_id = ANY (ARRAY[:'t_p', :'t_c1', :'t_c2', :'t_g1', :'t_g2', :'t_gg2']::uuid[])
             AND finished_at IS NOT NULL AND run_id IS NULL AND lease_expires_at IS NULL), 6,
          'each cancelled task is finished and holds no run or lease');
SELECT is(pg_temp.snap(:'t_c3'), :'s_c3'::jsonb, 'a completed child is left alone');
SELECT is(pg_temp.snap(:'t_gg1'), :'s_gg1'::jsonb, 'a failed great-grandchild is left alone');
SELECT is(pg_temp.snap(:'t_other'), :'s_other'::jsonb, 'a task outside the tree is left alone');
SELECT is((SELECT count(*)::int FROM belay.waits), 0, 'the root''s join wait is deleted');
SELECT results_eq($$SELECT task_id, attempt, worker FROM belay.runs WHERE outcome = 'cancelled'$$,
                  format('VALUES (%L::uuid, 1, %L)', :'t_c1', 'tap-worker'),
                  'only the running child had a live run: it is recorded as cancelled');
SELECT is((SELECT run_id FROM belay.runs WHERE outcome = 'cancelled'), :'r_c1'::uuid, '... under its run_id');
-- The running child's worker is told.
SELECT throws_ok(format('SELECT belay.heartbeat(%L)', :'r_c1'), 'BL002', NULL, 'the running child''s heartbeat raises BL002');
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_c1'), 'BL002', NULL, 'its complete raises BL002');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_c1', 's', '1'), 'BL002', NULL,
                 'its set_checkpoint raises BL002');
SELECT throws_ok(format('SELECT belay.spawn_child(%L, %L, %L)', :'r_c1', 'g3', 'grand'), 'BL002', NULL,
                 'its spawn_child raises BL002');
SELECT throws_ok(format('SELECT belay.sleep(%L, %L, 10::numeric)', :'r_c1', 'nap'), 'BL002', NULL, 'its sleep raises BL002');
SELECT throws_ok(format('SELECT * FROM belay.await_event(%L, %L, %L)', :'r_c1', 'w', 'e'), 'BL002', NULL,
                 'its await_event raises BL002');
SELECT throws_ok(format('SELECT * FROM belay.join(%L, %L, %L)', :'r_c1', 'j', :'t_g1'), 'BL002', NULL, 'its join raises BL002');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE parent_task_id = :'t_c1'), 2, '... and spawned nothing');
-- Nothing in the tree comes back.
SELECT is(pg_temp.tick('2 hours'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0',
          'tick does not wake the cancelled sleeper or the cancelled delayed task');
SELECT is_empty($$SELECT * FROM belay.claim('tap_cancel.b', 'tap-worker', 10, 60) UNION ALL
                  SELECT * FROM belay.claim('tap_cancel.c', 'tap-worker', 10, 60)$$,
                'nothing of the tree is claimable in b or c');
SELECT results_eq($$SELECT task_id FROM belay.claim('tap_cancel.a', 'tap-worker', 10, 60)$$,
                  format('VALUES (%L::uuid)', :'t_other'), 'in a, only the unrelated task is claimable');
SELECT is(belay.cancel(:'t_p'), 0, 'cancel of the cancelled root again returns 0');
SELECT is(belay.cancel(:'t_c3'), 0, 'cancel of the completed child returns 0');

-------------------------------------------------------------------------------------------
-- A parent joining a cancelled child is woken; the join returns state 'cancelled'.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.jp');
SELECT belay.create_queue('tap_cancel.jc');
SELECT pg_temp.spawn('tap_cancel.jp') AS t_jp \gset
SELECT pg_temp.claim1('tap_cancel.jp') AS r_jp \gset
SELECT belay.spawn_child(:'r_jp', 'c', 'kid', '{}', '{"queue": "tap_cancel.jc"}') AS t_jc \gset
SELECT pg_temp.claim1('tap_cancel.jc') AS r_jc \gset
SELECT belay.spawn_child(:'r_jc', 'g', 'grand', '{}', '{"queue": "tap_cancel.jc"}') AS t_jg \gset
SELECT is(pg_temp.joined(:'r_jp', 'j', :'t_jc'), '{"suspended": true, "state": null, "result": null, "error": null}'::jsonb,
          'setup: the parent joins its running child');
SELECT is(belay.cancel(:'t_jc'), 2, 'cancel of the child returns 2: the child and its own child, not the parent');
SELECT is(pg_temp.states(ARRAY[:'t_jp', :'t_jc', :'t_jg']::uuid[]), '{pending,cancelled,cancelled}',
          'the joining parent is woken (pending); the child and grandchild are cancelled');
SELECT is((SELECT count(*)::int FROM belay.waits), 0, 'the parent''s wait is settled');
SELECT throws_ok(format('SELECT belay.complete(%L, %L)', :'r_jc', '{}'), 'BL002', NULL, 'the cancelled child''s worker gets BL002');
SELECT pg_temp.claim1('tap_cancel.jp') AS r_jp2 \gset
SELECT is(pg_temp.joined(:'r_jp2', 'j', :'t_jc'), '{"suspended": false, "state": "cancelled", "result": null, "error": null}'::jsonb,
          'the re-run join returns state cancelled');
-- A running parent that has not joined yet is not disturbed; its later join is immediate.
SELECT belay.spawn_child(:'r_jp2', 'c2', 'kid', '{}', '{"queue": "tap_cancel.jc"}') AS t_jc2 \gset
SELECT is(belay.cancel(:'t_jc2'), 1, 'cancel of a pending child returns 1');
SELECT is((SELECT (state, run_id = :'r_jp2')::text FROM belay.tasks WHERE task_id = :'t_jp'), '(running,t)',
          'the parent, not joining it, keeps running under its run');
SELECT is(pg_temp.joined(:'r_jp2', 'j2', :'t_jc2'), '{"suspended": false, "state": "cancelled", "result": null, "error": null}'::jsonb,
          'its join of the cancelled child returns cancelled at once');

-------------------------------------------------------------------------------------------
-- Cancellation deadline: max_delay_seconds cancels a task that never started.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.delay');
SELECT pg_temp.spawn('tap_cancel.delay', '{"cancellation": {"max_delay_seconds": 60}}') AS t_d \gset
SELECT is((SELECT cancel_at - created_at FROM belay.tasks WHERE task_id = :'t_d'), interval '60 s',
          'the deadline of a task not started is created_at + max_delay_seconds');
SELECT is(pg_temp.tick('30 seconds'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick before the deadline: nothing');
SELECT is(pg_temp.state(:'t_d'), 'pending', 'the task is still pending');
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 1', 'tick past the deadline cancels it');
SELECT is((SELECT (state, error)::text FROM belay.task(:'t_d')),
          '(cancelled,"{""kind"": ""cancelled"", ""reason"": ""max_delay_seconds""}")',
          'the task is cancelled with error {"kind": "cancelled", "reason": "max_delay_seconds"}');
SELECT isnt((SELECT finished_at FROM belay.task(:'t_d')), NULL, 'it is finished');
SELECT is_empty($$SELECT * FROM belay.claim('tap_cancel.delay', 'tap-worker', 10, 60)$$, 'it is not claimable');
SELECT is(pg_temp.tick('3 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'a second tick cancels nothing more');
-- retry() clears the deadline.
SELECT belay.retry(:'t_d');
SELECT is((SELECT (state, attempt, error, finished_at)::text FROM belay.task(:'t_d')), '(pending,2,,)',
          'retry of the deadline-cancelled task: pending, attempt 2, no error');
SELECT is((SELECT cancel_at FROM belay.tasks WHERE task_id = :'t_d'), NULL, 'retry clears the cancellation deadline');
SELECT is(pg_temp.tick('1 day'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick a day later does not cancel it again');
SELECT is(pg_temp.state(:'t_d'), 'pending', 'the retried task is pending');
SELECT is((SELECT task_id FROM belay.claim('tap_cancel.delay', 'tap-worker', 1, 864000)), :'t_d'::uuid, '... and claimable');

-- The queue's policy gives the deadline; a task's own option overrides it.
SELECT belay.create_queue('tap_cancel.policy', '{"cancellation": {"max_delay_seconds": 30}}');
SELECT pg_temp.spawn('tap_cancel.policy') AS t_pol \gset
SELECT pg_temp.spawn('tap_cancel.policy', '{"cancellation": {"max_delay_seconds": 3600}}') AS t_pol_own \gset
SELECT is((SELECT cancel_at - created_at FROM belay.tasks WHERE task_id = :'t_pol'), interval '30 s',
          'the queue policy''s max_delay_seconds sets the deadline');
SELECT is(pg_temp.tick('1 minute'), 'woken 0, timed_out 0, reclaimed 0, cancelled 1', 'tick past the policy deadline cancels one task');
SELECT is(pg_temp.states(ARRAY[:'t_pol', :'t_pol_own']::uuid[]), '{cancelled,pending}',
          'the task under the policy is cancelled; the one with its own longer deadline is not');
SELECT is((SELECT error->>'reason' FROM belay.task(:'t_pol')), 'max_delay_seconds', 'reason: max_delay_seconds');

-- max_delay_seconds no longer applies once the task has started.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.started');
SELECT pg_temp.spawn('tap_cancel.started', '{"cancellation": {"max_delay_seconds": 60}}') AS t_st \gset
SELECT pg_temp.claim1('tap_cancel.started') AS r_st \gset
SELECT is((SELECT cancel_at FROM belay.tasks WHERE task_id = :'t_st'), NULL,
          'a started task without max_duration_seconds has no deadline');
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick past the start deadline cancels nothing');
SELECT is(pg_temp.state(:'t_st'), 'running', 'the started task runs on');

-------------------------------------------------------------------------------------------
-- Cancellation deadline: max_duration_seconds cancels a task that has run too long.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.dur');
SELECT pg_temp.spawn('tap_cancel.dur', '{"cancellation": {"max_delay_seconds": 3600, "max_duration_seconds": 60}}') AS t_m \gset
SELECT is((SELECT cancel_at - created_at FROM belay.tasks WHERE task_id = :'t_m'), interval '3600 s',
          'before the first start the deadline is max_delay_seconds');
SELECT pg_temp.claim1('tap_cancel.dur') AS r_m \gset
SELECT is((SELECT cancel_at - first_started_at FROM belay.tasks WHERE task_id = :'t_m'), interval '60 s',
          'from the first start the deadline is first start + max_duration_seconds');
SELECT is(pg_temp.tick('30 seconds'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick before the deadline: nothing');
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 1', 'tick past the deadline cancels the running task');
SELECT is((SELECT (state, error)::text FROM belay.task(:'t_m')),
          '(cancelled,"{""kind"": ""cancelled"", ""reason"": ""max_duration_seconds""}")',
          'the task is cancelled with reason max_duration_seconds');
SELECT is((SELECT (outcome, attempt)::text FROM belay.runs WHERE run_id = :'r_m'), '(cancelled,1)', 'its run is recorded as cancelled');
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_m'), 'BL002', NULL, 'its worker gets BL002');
-- The duration counts across suspensions: a sleeping or waiting task is cancelled too.
SELECT pg_temp.spawn('tap_cancel.dur', '{"cancellation": {"max_duration_seconds": 600}}') AS t_ms \gset
SELECT belay.sleep(pg_temp.claim1('tap_cancel.dur'), 'nap', 3600::numeric);
SELECT pg_temp.spawn('tap_cancel.dur', '{"cancellation": {"max_duration_seconds": 600}}') AS t_mw \gset
SELECT * FROM belay.await_event(pg_temp.claim1('tap_cancel.dur'), 'w', 'never', 3600);
SELECT is(pg_temp.states(ARRAY[:'t_ms', :'t_mw']::uuid[]), '{sleeping,waiting}', 'setup: one task sleeps, one waits');
SELECT is(pg_temp.tick('5 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick before their deadline: nothing');
SELECT is(pg_temp.tick('15 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 2',
          'tick past max_duration_seconds cancels the sleeping and the waiting task');
SELECT is(pg_temp.states(ARRAY[:'t_ms', :'t_mw']::uuid[]), '{cancelled,cancelled}', 'both are cancelled');
SELECT is((SELECT count(*)::int FROM belay.waits), 0, 'the wait of the cancelled task is deleted');
SELECT is(belay.emit_event('tap_cancel.dur', 'never'), 0, 'the event wakes nobody');
SELECT is(pg_temp.tick('2 hours'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0',
          'past their wake time and wait deadline, tick does nothing to them');

-- A deadline cancels the tree; a parent joining a deadline-cancelled child is woken.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.dp');
SELECT belay.create_queue('tap_cancel.dc');
SELECT pg_temp.spawn('tap_cancel.dp', '{"cancellation": {"max_duration_seconds": 60}}') AS t_dp \gset
SELECT pg_temp.claim1('tap_cancel.dp') AS r_dp \gset
SELECT belay.spawn_child(:'r_dp', 'c', 'kid', '{}', '{"queue": "tap_cancel.dc"}') AS t_dpc \gset
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 2',
          'the parent''s deadline cancels the parent and its child: 2');
SELECT is(pg_temp.states(ARRAY[:'t_dp', :'t_dpc']::uuid[]), '{cancelled,cancelled}', 'both are cancelled');
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.dp');
SELECT belay.create_queue('tap_cancel.dc');
SELECT pg_temp.spawn('tap_cancel.dp') AS t_dj \gset
SELECT pg_temp.claim1('tap_cancel.dp') AS r_dj \gset
SELECT belay.spawn_child(:'r_dj', 'c', 'kid', '{}',
                         '{"queue": "tap_cancel.dc", "cancellation": {"max_delay_seconds": 60}}') AS t_djc \gset
SELECT pg_temp.joined(:'r_dj', 'j', :'t_djc');
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 1', 'the child''s deadline cancels the child only');
SELECT is(pg_temp.states(ARRAY[:'t_dj', :'t_djc']::uuid[]), '{pending,cancelled}', 'the joining parent is woken');
SELECT is(pg_temp.joined(pg_temp.claim1('tap_cancel.dp'), 'j', :'t_djc'),
          '{"suspended": false, "state": "cancelled", "result": null, "error": {"kind": "cancelled", "reason": "max_delay_seconds"}}'::jsonb,
          'its join returns state cancelled with the deadline''s error');

-------------------------------------------------------------------------------------------
-- Lease reclaim: the run ends as lease_expired; the task is retried with attempt + 1.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.lease');
SELECT pg_temp.spawn('tap_cancel.lease', '{"max_attempts": 3, "retry": {"kind": "fixed", "base_seconds": 0}}') AS t_l \gset
SELECT run_id AS r_l, lease_expires_at AS x_l FROM belay.claim('tap_cancel.lease', 'tap-worker', 1, 60) \gset
SELECT is(pg_temp.tick('30 seconds'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick before the lease expires: nothing');
SELECT is((SELECT (state, run_id = :'r_l')::text FROM belay.tasks WHERE task_id = :'t_l'), '(running,t)', 'the run is still live');
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 0, reclaimed 1, cancelled 0', 'tick past the lease reclaims it');
SELECT is((SELECT (state, attempt)::text FROM belay.task(:'t_l')), '(pending,2)', 'the task is pending again, attempt 2');
SELECT is((SELECT (run_id, lease_expires_at)::text FROM belay.tasks WHERE task_id = :'t_l'), '(,)', 'it holds no run or lease');
SELECT is((SELECT (outcome, attempt, worker)::text FROM belay.runs WHERE run_id = :'r_l'), '(lease_expired,1,tap-worker)',
          'the run is recorded as lease_expired, attempt 1');
SELECT is((SELECT jsonb_build_object('kind', error->'kind', 'worker', error->'worker') FROM belay.runs WHERE run_id = :'r_l'),
          '{"kind": "lease_expired", "worker": "tap-worker"}'::jsonb, 'the run''s error: kind lease_expired, the worker');
SELECT is((SELECT (error->>'lease_expired_at')::timestamptz FROM belay.runs WHERE run_id = :'r_l'), :'x_l'::timestamptz,
          '... and when the lease expired');
SELECT is((SELECT error->>'kind' FROM belay.task(:'t_l')), 'lease_expired', 'the task''s error is the lease error');
SELECT throws_ok(format('SELECT belay.heartbeat(%L)', :'r_l'), 'BL001', NULL, 'the reclaimed run''s heartbeat raises BL001');
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_l'), 'BL001', NULL, 'its complete raises BL001');
SELECT is((SELECT attempt FROM belay.claim('tap_cancel.lease', 'tap-worker', 1, 864000)), 2, 'the task is claimed as attempt 2');
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'the new lease is not reclaimed');

-- With max_attempts 1 the reclaimed task fails.
SELECT belay.create_queue('tap_cancel.lease1');
SELECT pg_temp.spawn('tap_cancel.lease1', '{"max_attempts": 1}') AS t_l1 \gset
SELECT pg_temp.claim1('tap_cancel.lease1', 60) AS r_l1 \gset
SELECT is(pg_temp.tick('3 minutes'), 'woken 0, timed_out 0, reclaimed 1, cancelled 0', 'tick reclaims the lease of the one-attempt task');
SELECT is((SELECT (state, attempt, error->>'kind', finished_at IS NOT NULL)::text FROM belay.task(:'t_l1')),
          '(failed,1,lease_expired,t)', 'it failed for good with the lease error');
SELECT is_empty($$SELECT * FROM belay.claim('tap_cancel.lease1', 'tap-worker', 10, 60)$$, 'it is not claimable');

-- A parent joining the task is woken when it fails for good, not before.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_cancel.lp');
SELECT belay.create_queue('tap_cancel.lc');
SELECT pg_temp.spawn('tap_cancel.lp') AS t_lp \gset
SELECT pg_temp.claim1('tap_cancel.lp') AS r_lp \gset
SELECT belay.spawn_child(:'r_lp', 'c', 'kid', '{}',
                         '{"queue": "tap_cancel.lc", "max_attempts": 2, "retry": {"kind": "fixed", "base_seconds": 0}}') AS t_lc \gset
SELECT pg_temp.joined(:'r_lp', 'j', :'t_lc');
SELECT pg_temp.claim1('tap_cancel.lc', 60);
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 0, reclaimed 1, cancelled 0', 'the child''s first lease is reclaimed');
SELECT is(pg_temp.states(ARRAY[:'t_lp', :'t_lc']::uuid[]), '{waiting,pending}',
          'the child will be retried: the parent still waits');
SELECT pg_temp.claim1('tap_cancel.lc', 60);
SELECT is(pg_temp.tick('3 minutes'), 'woken 0, timed_out 0, reclaimed 1, cancelled 0', 'the child''s second lease is reclaimed');
SELECT is(pg_temp.states(ARRAY[:'t_lp', :'t_lc']::uuid[]), '{pending,failed}', 'the child failed for good: the parent is woken');
SELECT is((SELECT jsonb_build_object('state', j->'state', 'kind', j->'error'->'kind', 'suspended', j->'suspended')
           FROM pg_temp.joined(pg_temp.claim1('tap_cancel.lp'), 'j', :'t_lc') j),
          '{"state": "failed", "kind": "lease_expired", "suspended": false}'::jsonb,
          'the parent''s join returns state failed with the lease error');

SELECT * FROM finish();
ROLLBACK;
