-- belay pgTAP: suspension. sleep, await_event/emit_event, spawn_child and join record
-- their outcome as a step of the task, so that a re-run gets the same answer; sleep,
-- await and join suspend the run (the task is 'sleeping' or 'waiting'), and the old run
-- is fenced (BL001) from then on. Time is driven through belay.tick(now) with a time in
-- the future, so nothing here waits for a deadline (but for one real sleep of 0.5 s).
--
-- tick() works across every queue, so each section starts from an empty belay (its
-- DELETE, like everything else here, is rolled back at the end) and can check tick's
-- counts exactly.
BEGIN;
SELECT plan(155);

CREATE FUNCTION pg_temp.reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM belay.tasks; DELETE FROM belay.queues $$;
CREATE FUNCTION pg_temp.spawn(q text, options jsonb DEFAULT '{}') RETURNS uuid LANGUAGE sql AS
$$ SELECT task_id FROM belay.spawn(q, 'job', '{}', options) $$;
-- Claims with a lease of ten days, so that no tick below (at most hours ahead) reclaims it.
CREATE FUNCTION pg_temp.claim1(q text) RETURNS uuid LANGUAGE sql AS
$$ SELECT run_id FROM belay.claim(q, 'tap-worker', 1, 864000) $$;
CREATE FUNCTION pg_temp.tick(ahead interval) RETURNS text LANGUAGE sql AS
$$ SELECT format('woken %s, timed_out %s, reclaimed %s, cancelled %s', woken, timed_out, reclaimed, cancelled)
   FROM belay.tick(clock_timestamp() + ahead) $$;
CREATE FUNCTION pg_temp.state(t uuid) RETURNS text LANGUAGE sql AS $$ SELECT state FROM belay.task(t) $$;
CREATE FUNCTION pg_temp.step(t uuid, s text) RETURNS jsonb LANGUAGE sql AS
$$ SELECT value FROM belay.checkpoints WHERE task_id = t AND step = s $$;
CREATE FUNCTION pg_temp.await(r uuid, s text, e text, timeout numeric DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('suspended', a.suspended, 'payload', a.payload, 'timed_out', a.timed_out)
   FROM belay.await_event(r, s, e, timeout) a $$;
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
    'waits', (SELECT coalesce(jsonb_agg(to_jsonb(w)), '[]') FROM belay.waits w WHERE w.task_id = t),
    'children', (SELECT count(*) FROM belay.tasks c WHERE c.parent_task_id = t))
$$;

-------------------------------------------------------------------------------------------
-- sleep until a time: suspends; tick wakes it when due; the first call fixes the time.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_susp.sleep');
SELECT pg_temp.spawn('tap_susp.sleep') AS t_sl \gset
SELECT pg_temp.claim1('tap_susp.sleep') AS r_sl \gset
SELECT clock_timestamp() + interval '1 hour' AS w_sl \gset
SELECT is(belay.sleep(:'r_sl', 'nap', :'w_sl'::timestamptz), true, 'sleep until a future time returns true (suspended)');
SELECT is((SELECT (state, available_at = :'w_sl'::timestamptz)::text FROM belay.task(:'t_sl')), '(sleeping,t)',
          'the task is sleeping, available at the wake time');
SELECT is((SELECT (run_id, lease_expires_at, attempt)::text FROM belay.tasks WHERE task_id = :'t_sl'), '(,,1)',
          'the sleeping task holds no run and no lease, and keeps its attempt');
SELECT is((SELECT (outcome, attempt, error)::text FROM belay.runs WHERE run_id = :'r_sl'), '(suspended,1,)',
          'the run is recorded as suspended');
SELECT is((pg_temp.step(:'t_sl', 'nap')->>'wake_at')::timestamptz, :'w_sl'::timestamptz, 'the step records the wake time');
SELECT is(pg_temp.step(:'t_sl', 'nap') - 'wake_at', '{}'::jsonb, 'the sleep step holds only wake_at');
SELECT is_empty($$SELECT * FROM belay.claim('tap_susp.sleep', 'tap-worker', 10, 60)$$,
                'a sleeping task is not claimable before its wake time');

-- Fencing: the suspended run can do nothing more.
SELECT pg_temp.snap(:'t_sl') AS s_sl \gset
SELECT throws_ok(format('SELECT belay.heartbeat(%L)', :'r_sl'), 'BL001', NULL, 'heartbeat of a run suspended by sleep raises BL001');
SELECT throws_ok(format('SELECT belay.complete(%L, %L)', :'r_sl', '{}'), 'BL001', NULL, 'complete of a suspended run raises BL001');
SELECT throws_ok(format('SELECT belay.fail(%L, %L)', :'r_sl', '{}'), 'BL001', NULL, 'fail of a suspended run raises BL001');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_sl', 'x', '1'), 'BL001', NULL,
                 'set_checkpoint of a suspended run raises BL001');
SELECT throws_ok(format('SELECT belay.sleep(%L, %L, %L::timestamptz)', :'r_sl', 'nap', clock_timestamp() - interval '1 s'),
                 'BL001', NULL, 'sleep (same step) by a suspended run raises BL001');
SELECT throws_ok(format('SELECT belay.sleep(%L, %L, 10::numeric)', :'r_sl', 'nap2'), 'BL001', NULL,
                 'sleep (new step) by a suspended run raises BL001');
SELECT throws_ok(format('SELECT * FROM belay.await_event(%L, %L, %L)', :'r_sl', 'w', 'ev'), 'BL001', NULL,
                 'await_event by a suspended run raises BL001');
SELECT throws_ok(format('SELECT belay.spawn_child(%L, %L, %L)', :'r_sl', 'c', 'kid'), 'BL001', NULL,
                 'spawn_child by a suspended run raises BL001');
SELECT is(pg_temp.snap(:'t_sl'), :'s_sl'::jsonb, 'the calls of the suspended run changed nothing');

SELECT is(pg_temp.tick('30 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick before the wake time wakes nothing');
SELECT is(pg_temp.state(:'t_sl'), 'sleeping', '... and the task still sleeps');
SELECT is(pg_temp.tick('2 hours'), 'woken 1, timed_out 0, reclaimed 0, cancelled 0', 'tick past the wake time wakes the sleeper');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_sl'), 'pending', 'the woken task is pending (claimable now)');
SELECT run_id AS r_sl2, attempt AS a_sl2, checkpoints AS cp_sl2 FROM belay.claim('tap_susp.sleep', 'tap-worker', 1, 864000) \gset
SELECT is(:'a_sl2'::int, 1, 'the woken task is claimed again, in the same attempt');
SELECT is(:'cp_sl2'::jsonb -> 'nap', pg_temp.step(:'t_sl', 'nap'), 'the claim hands back the sleep step');
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_sl'), 'BL001', NULL, 'the suspended run stays fenced after the re-claim');
-- Woken early (tick ran ahead of the clock): the re-run sleeps again, until the first call's time.
SELECT is(belay.sleep(:'r_sl2', 'nap', clock_timestamp() + interval '10 hours'), true,
          'a second call of the step before the first call''s wake time suspends again');
SELECT is((SELECT available_at FROM belay.task(:'t_sl')), :'w_sl'::timestamptz,
          '... until the first call''s wake time, not the second''s');
SELECT is((pg_temp.step(:'t_sl', 'nap')->>'wake_at')::timestamptz, :'w_sl'::timestamptz, 'the recorded wake time is unchanged');

-------------------------------------------------------------------------------------------
-- sleep that has passed: false, the run goes on; the first call wins.
SELECT belay.create_queue('tap_susp.past');
SELECT pg_temp.spawn('tap_susp.past') AS t_past \gset
SELECT pg_temp.claim1('tap_susp.past') AS r_past \gset
SELECT clock_timestamp() - interval '1 minute' AS w_past \gset
SELECT is(belay.sleep(:'r_past', 'p', :'w_past'::timestamptz), false, 'sleep until a past time returns false');
SELECT is((SELECT (state, run_id = :'r_past')::text FROM belay.tasks WHERE task_id = :'t_past'), '(running,t)',
          'the run goes on: the task is still running under the same run');
SELECT is((pg_temp.step(:'t_past', 'p')->>'wake_at')::timestamptz, :'w_past'::timestamptz, 'the passed wake time is recorded');
SELECT is(belay.sleep(:'r_past', 'p', clock_timestamp() + interval '1 hour'), false,
          'a second call of the step with a future time returns the first call''s outcome: false');
SELECT is(belay.sleep(:'r_past', 'p', 3600::numeric), false, '... also through the seconds form');
SELECT is((pg_temp.step(:'t_past', 'p')->>'wake_at')::timestamptz, :'w_past'::timestamptz, '... and the recorded wake time is kept');
SELECT is(pg_temp.state(:'t_past'), 'running', 'the task is still running');
SELECT is(belay.sleep(:'r_past', 'zero', 0::numeric), false, 'sleep for 0 seconds returns false');
-- A real (short) sleep: claimable again once the clock passes the wake time, without tick.
SELECT clock_timestamp() AS b_short \gset
SELECT is(belay.sleep(:'r_past', 'short', 0.5), true, 'sleep for 0.5 seconds suspends');
SELECT ok((SELECT available_at BETWEEN :'b_short'::timestamptz + interval '0.5 s' AND clock_timestamp() + interval '0.5 s'
           FROM belay.task(:'t_past')), 'available_at is the wake time: 0.5 s after the call');
SELECT pg_sleep(0.8);
SELECT pg_temp.claim1('tap_susp.past') AS r_past2 \gset
SELECT is((SELECT run_id::text FROM belay.tasks WHERE task_id = :'t_past'), :'r_past2',
          'once the wake time has passed, claim takes the sleeper again (no tick needed)');
SELECT is(belay.sleep(:'r_past2', 'short', 3600::numeric), false,
          'the re-run sleep of a passed step returns false, whatever seconds it asks for');
SELECT is(pg_temp.state(:'t_past'), 'running', 'the task runs on');

-------------------------------------------------------------------------------------------
-- sleep for seconds: the wake time is now + seconds on the database clock.
SELECT belay.create_queue('tap_susp.secs');
SELECT pg_temp.spawn('tap_susp.secs') AS t_secs \gset
SELECT pg_temp.claim1('tap_susp.secs') AS r_secs \gset
SELECT clock_timestamp() AS b_secs \gset
SELECT is(belay.sleep(:'r_secs', 'n', 3600::numeric), true, 'sleep for 3600 seconds returns true');
SELECT ok((SELECT state = 'sleeping' AND available_at BETWEEN :'b_secs'::timestamptz + interval '3600 s'
                                                          AND clock_timestamp() + interval '3600 s'
           FROM belay.task(:'t_secs')), 'the task sleeps until an hour from the call');
SELECT is((pg_temp.step(:'t_secs', 'n')->>'wake_at')::timestamptz, (SELECT available_at FROM belay.task(:'t_secs')),
          'the step records the same wake time');

-------------------------------------------------------------------------------------------
-- await_event of an event already emitted: its payload at once.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_susp.ev');
SELECT is(belay.emit_event('tap_susp.ev', 'go', '{"n": 1}'), 0, 'emit with nobody waiting returns 0');
SELECT pg_temp.spawn('tap_susp.ev') AS t_go \gset
SELECT pg_temp.claim1('tap_susp.ev') AS r_go \gset
SELECT is(pg_temp.await(:'r_go', 'w', 'go'), '{"suspended": false, "payload": {"n": 1}, "timed_out": false}'::jsonb,
          'await of an emitted event returns its payload at once');
SELECT is((SELECT (state, run_id = :'r_go')::text FROM belay.tasks WHERE task_id = :'t_go'), '(running,t)',
          'the run goes on');
SELECT is(pg_temp.step(:'t_go', 'w'), '{"payload": {"n": 1}, "timed_out": false}'::jsonb, 'the step records the payload');
SELECT is(belay.emit_event('tap_susp.ev', 'go', '{"n": 2}'), 0, 'a second emit, nobody waiting');
SELECT is(pg_temp.await(:'r_go', 'w', 'go'), '{"suspended": false, "payload": {"n": 1}, "timed_out": false}'::jsonb,
          'a settled step keeps its payload after a newer emit');
SELECT is(pg_temp.await(:'r_go', 'w2', 'go'), '{"suspended": false, "payload": {"n": 2}, "timed_out": false}'::jsonb,
          'a new step gets the latest payload');
-- The latest emit wins.
SELECT belay.emit_event('tap_susp.ev', 'color', '"red"');
SELECT belay.emit_event('tap_susp.ev', 'color', '"blue"');
SELECT is(pg_temp.await(:'r_go', 'c', 'color'), '{"suspended": false, "payload": "blue", "timed_out": false}'::jsonb,
          'the latest emit wins');
SELECT is((SELECT count(*)::int FROM belay.events WHERE queue = 'tap_susp.ev' AND event = 'color'), 1,
          'an event keeps one row, its latest payload');
-- An event emitted with no payload.
SELECT is(belay.emit_event('tap_susp.ev', 'nil'), 0, 'emit without a payload');
SELECT is(pg_temp.await(:'r_go', 'n', 'nil'), '{"suspended": false, "payload": null, "timed_out": false}'::jsonb,
          'await of an event emitted without payload: NULL payload, not timed out');

-------------------------------------------------------------------------------------------
-- await_event that suspends; emit wakes it; the re-run gets the same payload.
SELECT pg_temp.spawn('tap_susp.ev') AS t_w \gset
SELECT pg_temp.claim1('tap_susp.ev') AS r_w \gset
SELECT is(pg_temp.await(:'r_w', 'w', 'ready'), '{"suspended": true, "payload": null, "timed_out": false}'::jsonb,
          'await of an event not emitted yet suspends');
SELECT is((SELECT (state, run_id, lease_expires_at)::text FROM belay.tasks WHERE task_id = :'t_w'), '(waiting,,)',
          'the task is waiting, without run or lease');
SELECT is((SELECT (step, queue, event, child_task_id, deadline, run_id = :'r_w')::text FROM belay.waits WHERE task_id = :'t_w'),
          '(w,tap_susp.ev,ready,,,t)', 'a wait for the event, without deadline, is recorded');
SELECT is((SELECT outcome FROM belay.runs WHERE run_id = :'r_w'), 'suspended', 'the run is recorded as suspended');
SELECT is(pg_temp.step(:'t_w', 'w'), NULL, 'the step is not settled yet');
SELECT is_empty($$SELECT * FROM belay.claim('tap_susp.ev', 'tap-worker', 10, 60)$$, 'a waiting task is not claimable');
SELECT is(pg_temp.tick('5 days'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0',
          'tick never times out a wait without timeout');
SELECT is(pg_temp.state(:'t_w'), 'waiting', '... the task still waits');
-- Fencing.
SELECT pg_temp.snap(:'t_w') AS s_w \gset
SELECT throws_ok(format('SELECT * FROM belay.await_event(%L, %L, %L)', :'r_w', 'w', 'ready'), 'BL001', NULL,
                 'await_event (same step) by a run suspended by await raises BL001');
SELECT throws_ok(format('SELECT belay.heartbeat(%L)', :'r_w'), 'BL001', NULL, 'heartbeat by a run suspended by await raises BL001');
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_w'), 'BL001', NULL, 'complete by a run suspended by await raises BL001');
SELECT throws_ok(format('SELECT belay.set_checkpoint(%L, %L, %L)', :'r_w', 'w', '1'), 'BL001', NULL,
                 'set_checkpoint by a run suspended by await raises BL001');
SELECT is(pg_temp.snap(:'t_w'), :'s_w'::jsonb, 'the calls of the suspended run changed nothing');
-- emit wakes it.
SELECT is(belay.emit_event('tap_susp.ev', 'ready', '{"v": 42}'), 1, 'emit wakes the waiting task and returns 1');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_w'), 'pending', 'the woken task is pending');
SELECT is((SELECT count(*)::int FROM belay.waits WHERE task_id = :'t_w'), 0, 'its wait is settled (deleted)');
SELECT is(pg_temp.step(:'t_w', 'w'), '{"payload": {"v": 42}, "timed_out": false}'::jsonb, 'the step records the payload');
SELECT run_id AS r_w2, checkpoints AS cp_w2 FROM belay.claim('tap_susp.ev', 'tap-worker', 1, 864000) \gset
SELECT is(:'cp_w2'::jsonb -> 'w', '{"payload": {"v": 42}, "timed_out": false}'::jsonb, 'the claim hands back the settled step');
SELECT is(pg_temp.await(:'r_w2', 'w', 'ready'), '{"suspended": false, "payload": {"v": 42}, "timed_out": false}'::jsonb,
          'the re-run await gets the payload that woke it');
SELECT is(belay.emit_event('tap_susp.ev', 'ready', '{"v": 43}'), 0, 'a later emit wakes nobody');
SELECT is(pg_temp.await(:'r_w2', 'w', 'ready'), '{"suspended": false, "payload": {"v": 42}, "timed_out": false}'::jsonb,
          '... and does not change the settled step');
SELECT throws_ok(format('SELECT belay.complete(%L)', :'r_w'), 'BL001', NULL, 'the suspended run stays fenced after the re-claim');

-------------------------------------------------------------------------------------------
-- emit returns how many it woke: every task awaiting that name, no other.
SELECT belay.create_queue('tap_susp.bell');
SELECT pg_temp.spawn('tap_susp.bell') AS t_b1 \gset
SELECT pg_temp.spawn('tap_susp.bell') AS t_b2 \gset
SELECT pg_temp.spawn('tap_susp.bell') AS t_h \gset
SELECT pg_temp.await(pg_temp.claim1('tap_susp.bell'), 'w', 'bell');
SELECT pg_temp.await(pg_temp.claim1('tap_susp.bell'), 'w', 'bell');
SELECT pg_temp.await(pg_temp.claim1('tap_susp.bell'), 'w', 'horn');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_susp.bell' AND state = 'waiting'), 3, 'setup: three tasks wait');
SELECT is(belay.emit_event('tap_susp.bell', 'bell', '"ding"'), 2, 'emit returns 2: both tasks awaiting the event');
SELECT results_eq(format('SELECT (SELECT state FROM belay.task(t)) FROM unnest(ARRAY[%L, %L, %L]::uuid[]) WITH ORDINALITY u(t, n) ORDER BY n',
                         :'t_b1', :'t_b2', :'t_h'),
                  $$VALUES ('pending'), ('pending'), ('waiting')$$, 'the two are woken; the one awaiting another event waits on');
SELECT is(belay.emit_event('tap_susp.bell', 'bell', '"dong"'), 0, 'emit again: 0, nobody waits for it any more');
SELECT is(belay.emit_event('tap_susp.bell', 'horn'), 1, 'the other event wakes the other task');

-------------------------------------------------------------------------------------------
-- Events are per queue.
SELECT belay.create_queue('tap_susp.qa');
SELECT belay.create_queue('tap_susp.qb');
SELECT pg_temp.spawn('tap_susp.qb') AS t_qb \gset
SELECT pg_temp.spawn('tap_susp.qb') AS t_qb2 \gset
SELECT is(pg_temp.await(pg_temp.claim1('tap_susp.qb'), 'w', 'x'), '{"suspended": true, "payload": null, "timed_out": false}'::jsonb,
          'a task of queue qb awaits x');
SELECT is(belay.emit_event('tap_susp.qa', 'x', '"from qa"'), 0, 'emitting x in queue qa wakes nobody in qb');
SELECT is(pg_temp.state(:'t_qb'), 'waiting', 'the task of qb still waits');
SELECT belay.emit_event('tap_susp.qa', 'y', '"from qa"');
SELECT is(pg_temp.await(pg_temp.claim1('tap_susp.qb'), 'w', 'y'), '{"suspended": true, "payload": null, "timed_out": false}'::jsonb,
          'an event emitted in qa is not seen by an await in qb');
SELECT is(belay.emit_event('tap_susp.qb', 'x', '"from qb"'), 1, 'emitting x in qb wakes its waiter');
SELECT is(pg_temp.step(:'t_qb', 'w'), '{"payload": "from qb", "timed_out": false}'::jsonb, '... with qb''s payload');
SELECT is(pg_temp.state(:'t_qb2'), 'waiting', 'the waiter for y still waits');

-------------------------------------------------------------------------------------------
-- await_event with a timeout: tick times it out; a timed-out step stays timed out.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_susp.to');
SELECT pg_temp.spawn('tap_susp.to') AS t_to \gset
SELECT pg_temp.claim1('tap_susp.to') AS r_to \gset
SELECT clock_timestamp() AS b_to \gset
SELECT is(pg_temp.await(:'r_to', 'w', 'late', 60), '{"suspended": true, "payload": null, "timed_out": false}'::jsonb,
          'await with a 60 s timeout suspends');
SELECT ok((SELECT deadline BETWEEN :'b_to'::timestamptz + interval '60 s' AND clock_timestamp() + interval '60 s'
           FROM belay.waits WHERE task_id = :'t_to'), 'the wait''s deadline is 60 s after the call');
SELECT is(pg_temp.tick('30 seconds'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick before the deadline: nothing');
SELECT is(pg_temp.state(:'t_to'), 'waiting', 'the task still waits');
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 1, reclaimed 0, cancelled 0', 'tick past the deadline times the wait out');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_to'), 'pending', 'the timed-out task is pending');
SELECT is((SELECT count(*)::int FROM belay.waits WHERE task_id = :'t_to'), 0, 'its wait is gone');
SELECT is(pg_temp.step(:'t_to', 'w'), '{"payload": null, "timed_out": true}'::jsonb, 'the step records the timeout');
SELECT is(pg_temp.tick('3 minutes'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'a second tick does not time it out again');
SELECT is(belay.emit_event('tap_susp.to', 'late', '"too late"'), 0, 'the event emitted after the timeout wakes nobody');
SELECT pg_temp.claim1('tap_susp.to') AS r_to2 \gset
SELECT is(pg_temp.await(:'r_to2', 'w', 'late', 60), '{"suspended": false, "payload": null, "timed_out": true}'::jsonb,
          'the re-run await is timed out, though the event has been emitted since');
SELECT is(pg_temp.await(:'r_to2', 'w-again', 'late', 60), '{"suspended": false, "payload": "too late", "timed_out": false}'::jsonb,
          '(a new step sees the emitted event)');
-- timeout 0: never suspends.
SELECT is(pg_temp.await(:'r_to2', 'w0', 'never', 0), '{"suspended": false, "payload": null, "timed_out": true}'::jsonb,
          'await with timeout 0 of an event not emitted: timed out at once');
SELECT is(pg_temp.step(:'t_to', 'w0'), '{"payload": null, "timed_out": true}'::jsonb, '... recorded as timed out');
SELECT is((SELECT (state, run_id = :'r_to2')::text FROM belay.tasks WHERE task_id = :'t_to'), '(running,t)', '... and the run goes on');
SELECT is(belay.emit_event('tap_susp.to', 'never', '1'), 0, 'emit of that event');
SELECT is(pg_temp.await(:'r_to2', 'w0', 'never', 0), '{"suspended": false, "payload": null, "timed_out": true}'::jsonb,
          'the step timed out with timeout 0 stays timed out');
SELECT is(pg_temp.await(:'r_to2', 'w1', 'never', 0), '{"suspended": false, "payload": 1, "timed_out": false}'::jsonb,
          'await with timeout 0 of an emitted event returns its payload');

-------------------------------------------------------------------------------------------
-- spawn_child: one child per (task, step), in the parent's queue or options.queue.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_susp.par');
SELECT belay.create_queue('tap_susp.kids');
SELECT pg_temp.spawn('tap_susp.par') AS t_par \gset
SELECT pg_temp.claim1('tap_susp.par') AS r_par \gset
-- Priority -1: the parent, when woken below, is claimed before this child.
SELECT belay.spawn_child(:'r_par', 'first', 'kid', '{"a": 1}', '{"priority": -1}') AS c_first \gset
SELECT is(belay.spawn_child(:'r_par', 'first', 'kid', '{"a": 2}', '{"priority": -1}'), :'c_first'::uuid,
          'spawn_child again with the same step returns the same child');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE parent_task_id = :'t_par'), 1, '... and spawns no second one');
SELECT is((SELECT (queue, task_name, params, state, parent_task_id = :'t_par')::text FROM belay.task(:'c_first')),
          '(tap_susp.par,kid,"{""a"": 1}",pending,t)',
          'the child: in the parent''s queue, with its name and the first call''s params, pending, parent_task_id set');
SELECT is((SELECT (parent_step, priority)::text FROM belay.tasks WHERE task_id = :'c_first'), '(first,-1)',
          'the child records the step that spawned it, and its options apply');
SELECT is(pg_temp.step(:'t_par', 'first'), jsonb_build_object('child_task_id', :'c_first'), 'the step records the child''s id');
SELECT is((SELECT (state, run_id = :'r_par')::text FROM belay.tasks WHERE task_id = :'t_par'), '(running,t)',
          'spawn_child does not suspend the parent');
SELECT belay.spawn_child(:'r_par', 'second', 'kid', '{}', '{"queue": "tap_susp.kids", "max_attempts": 2, "priority": 3}') AS c_second \gset
SELECT isnt(:'c_second'::uuid, :'c_first'::uuid, 'another step spawns another child');
SELECT is((SELECT (queue, max_attempts, parent_task_id = :'t_par')::text FROM belay.task(:'c_second')), '(tap_susp.kids,2,t)',
          'options.queue puts the child in another queue, still a child of the parent');
SELECT is((SELECT task_id FROM belay.claim('tap_susp.kids', 'tap-worker', 1, 864000)), :'c_second'::uuid,
          'the child is claimable in its queue');
-- After a suspension, the re-run gets the same children.
SELECT belay.sleep(:'r_par', 'nap', 3600::numeric);
SELECT is(pg_temp.tick('2 hours'), 'woken 1, timed_out 0, reclaimed 0, cancelled 0', 'setup: the parent slept and was woken');
SELECT pg_temp.claim1('tap_susp.par') AS r_par2 \gset
SELECT is((SELECT run_id FROM belay.tasks WHERE task_id = :'t_par'), :'r_par2'::uuid, 'setup: the parent is claimed again');
SELECT is(belay.spawn_child(:'r_par2', 'first', 'kid', '{"a": 3}', '{"priority": -1}'), :'c_first'::uuid,
          'the re-run gets the same child for the first step');
SELECT is(belay.spawn_child(:'r_par2', 'second', 'kid', '{}', '{"queue": "tap_susp.kids"}'), :'c_second'::uuid,
          '... and for the second');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE parent_task_id = :'t_par'), 2, 'the parent still has two children');
SELECT throws_ok(format('SELECT belay.spawn_child(%L, %L, %L)', :'r_par', 'third', 'kid'), 'BL001', NULL,
                 'spawn_child by the suspended run raises BL001');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE parent_task_id = :'t_par'), 2, '... and spawns nothing');

-------------------------------------------------------------------------------------------
-- join: the child completes.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_susp.jp');
SELECT belay.create_queue('tap_susp.jc');
SELECT pg_temp.spawn('tap_susp.jp') AS t_j1 \gset
SELECT pg_temp.claim1('tap_susp.jp') AS r_j1 \gset
SELECT belay.spawn_child(:'r_j1', 'kid', 'kid', '{}', '{"queue": "tap_susp.jc"}') AS c_j1 \gset
SELECT is(pg_temp.joined(:'r_j1', 'j', :'c_j1'), '{"suspended": true, "state": null, "result": null, "error": null}'::jsonb,
          'join of an unfinished child suspends');
SELECT is((SELECT (state, run_id)::text FROM belay.tasks WHERE task_id = :'t_j1'), '(waiting,)', 'the parent is waiting');
SELECT is((SELECT (step, event, child_task_id = :'c_j1', deadline)::text FROM belay.waits WHERE task_id = :'t_j1'), '(j,,t,)',
          'a wait for the child, without deadline, is recorded');
SELECT throws_ok(format('SELECT belay.heartbeat(%L)', :'r_j1'), 'BL001', NULL, 'the run suspended by join is fenced');
SELECT belay.complete(pg_temp.claim1('tap_susp.jc'), '{"ok": true}');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_j1'), 'pending', 'the child completing wakes the parent');
SELECT is((SELECT count(*)::int FROM belay.waits), 0, 'the wait is settled');
SELECT is(pg_temp.step(:'t_j1', 'j'), '{"state": "completed", "result": {"ok": true}, "error": null, "timed_out": false}'::jsonb,
          'the join step records the child''s outcome');
SELECT pg_temp.claim1('tap_susp.jp') AS r_j1b \gset
SELECT is(pg_temp.joined(:'r_j1b', 'j', :'c_j1'), '{"suspended": false, "state": "completed", "result": {"ok": true}, "error": null}'::jsonb,
          'the re-run join returns state completed and the result');

-- join: the child fails (after a retry that does not wake the parent).
SELECT pg_temp.spawn('tap_susp.jp') AS t_j2 \gset
SELECT pg_temp.claim1('tap_susp.jp') AS r_j2 \gset
SELECT belay.spawn_child(:'r_j2', 'kid', 'kid', '{}',
                         '{"queue": "tap_susp.jc", "max_attempts": 2, "retry": {"kind": "fixed", "base_seconds": 0}}') AS c_j2 \gset
SELECT pg_temp.joined(:'r_j2', 'j', :'c_j2');
SELECT pg_temp.fail(pg_temp.claim1('tap_susp.jc'), '{"msg": "first"}');
SELECT is((SELECT (state, attempt)::text FROM belay.task(:'c_j2')), '(pending,2)', 'setup: the child failed once and will retry');
SELECT is(pg_temp.state(:'t_j2'), 'waiting', 'a child failure that will be retried does not wake the parent');
SELECT pg_temp.fail(pg_temp.claim1('tap_susp.jc'), '{"msg": "second"}');
SELECT is(pg_temp.state(:'c_j2'), 'failed', 'setup: the child failed for good');
SELECT is(pg_temp.state(:'t_j2'), 'pending', 'the child failing for good wakes the parent');
SELECT is(pg_temp.joined(pg_temp.claim1('tap_susp.jp'), 'j', :'c_j2'),
          '{"suspended": false, "state": "failed", "result": null, "error": {"msg": "second"}}'::jsonb,
          'the re-run join returns state failed and the last error');

-- join: the child is cancelled.
SELECT pg_temp.spawn('tap_susp.jp') AS t_j3 \gset
SELECT pg_temp.claim1('tap_susp.jp') AS r_j3 \gset
SELECT belay.spawn_child(:'r_j3', 'kid', 'kid', '{}', '{"queue": "tap_susp.jc"}') AS c_j3 \gset
SELECT pg_temp.joined(:'r_j3', 'j', :'c_j3');
SELECT is(belay.cancel(:'c_j3'), 1, 'cancel of the joined child cancels the child only');
SELECT is(pg_temp.state(:'t_j3'), 'pending', 'the parent is woken, not cancelled');
SELECT is(pg_temp.joined(pg_temp.claim1('tap_susp.jp'), 'j', :'c_j3'),
          '{"suspended": false, "state": "cancelled", "result": null, "error": null}'::jsonb,
          'the re-run join returns state cancelled');

-- join of a child that has already finished: at once.
SELECT pg_temp.spawn('tap_susp.jp') AS t_j4 \gset
SELECT pg_temp.claim1('tap_susp.jp') AS r_j4 \gset
SELECT belay.spawn_child(:'r_j4', 'kid', 'kid', '{}', '{"queue": "tap_susp.jc"}') AS c_j4 \gset
SELECT belay.complete(pg_temp.claim1('tap_susp.jc'), '{"v": 7}');
SELECT belay.spawn_child(:'r_j4', 'kid2', 'kid', '{}', '{"queue": "tap_susp.jc", "max_attempts": 1}') AS c_j4b \gset
SELECT pg_temp.fail(pg_temp.claim1('tap_susp.jc'), '{"msg": "no"}');
SELECT is(pg_temp.joined(:'r_j4', 'j', :'c_j4'), '{"suspended": false, "state": "completed", "result": {"v": 7}, "error": null}'::jsonb,
          'join of a completed child returns its result at once');
SELECT is(pg_temp.joined(:'r_j4', 'j2', :'c_j4b'), '{"suspended": false, "state": "failed", "result": null, "error": {"msg": "no"}}'::jsonb,
          'join of a failed child returns its error at once');
SELECT is((SELECT (state, run_id = :'r_j4')::text FROM belay.tasks WHERE task_id = :'t_j4'), '(running,t)',
          'the parent runs on');
SELECT is(pg_temp.step(:'t_j4', 'j'), '{"state": "completed", "result": {"v": 7}, "error": null, "timed_out": false}'::jsonb,
          'the immediate join is recorded too');
-- Only children can be joined.
SELECT pg_temp.spawn('tap_susp.jc', '{"priority": -5}') AS t_stranger \gset
SELECT pg_temp.snap(:'t_j4') AS s_j4 \gset
SELECT throws_ok(format('SELECT * FROM belay.join(%L, %L, %L)', :'r_j4', 'x', :'t_stranger'), '22023', NULL,
                 'join of a task that is not a child raises 22023');
SELECT throws_ok(format('SELECT * FROM belay.join(%L, %L, %L)', :'r_j4', 'x', :'c_j1'), '22023', NULL,
                 'join of another task''s child raises 22023');
SELECT throws_ok(format('SELECT * FROM belay.join(%L, %L, %L)', :'r_j4', 'x', :'t_j4'), '22023', NULL,
                 'join of the task itself raises 22023');
SELECT is(pg_temp.snap(:'t_j4'), :'s_j4'::jsonb, 'the refused joins changed nothing: no step, no wait, still running');

-- join with a timeout.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_susp.tp');
SELECT belay.create_queue('tap_susp.tc');
SELECT pg_temp.spawn('tap_susp.tp') AS t_j5 \gset
SELECT pg_temp.claim1('tap_susp.tp') AS r_j5 \gset
SELECT belay.spawn_child(:'r_j5', 'kid', 'kid', '{}', '{"queue": "tap_susp.tc"}') AS c_j5 \gset
SELECT clock_timestamp() AS b_j5 \gset
SELECT is(pg_temp.joined(:'r_j5', 'j', :'c_j5', 60), '{"suspended": true, "state": null, "result": null, "error": null}'::jsonb,
          'join with a 60 s timeout suspends');
SELECT ok((SELECT deadline BETWEEN :'b_j5'::timestamptz + interval '60 s' AND clock_timestamp() + interval '60 s'
           FROM belay.waits WHERE task_id = :'t_j5'), 'the wait''s deadline is 60 s after the call');
SELECT is(pg_temp.tick('30 seconds'), 'woken 0, timed_out 0, reclaimed 0, cancelled 0', 'tick before the deadline: nothing');
SELECT is(pg_temp.tick('2 minutes'), 'woken 0, timed_out 1, reclaimed 0, cancelled 0', 'tick past the deadline times the join out');
SELECT is(pg_temp.state(:'t_j5'), 'pending', 'the parent is pending');
SELECT is(pg_temp.step(:'t_j5', 'j'), '{"state": null, "result": null, "error": {"kind": "timed_out"}, "timed_out": true}'::jsonb,
          'the step records the timeout');
SELECT pg_temp.claim1('tap_susp.tp') AS r_j5b \gset
SELECT belay.complete(pg_temp.claim1('tap_susp.tc'), '{"late": true}');
SELECT is(pg_temp.state(:'c_j5'), 'completed', 'setup: the child completes after the timeout');
SELECT is(pg_temp.joined(:'r_j5b', 'j', :'c_j5', 60), '{"suspended": false, "state": null, "result": null, "error": {"kind": "timed_out"}}'::jsonb,
          'the re-run join is timed out (state NULL), though the child has completed since');
-- timeout 0
SELECT belay.spawn_child(:'r_j5b', 'kid0', 'kid', '{}', '{"queue": "tap_susp.tc"}') AS c_j5z \gset
SELECT is(pg_temp.joined(:'r_j5b', 'j0', :'c_j5z', 0), '{"suspended": false, "state": null, "result": null, "error": {"kind": "timed_out"}}'::jsonb,
          'join with timeout 0 of an unfinished child: timed out at once');
SELECT is((SELECT (state, run_id = :'r_j5b')::text FROM belay.tasks WHERE task_id = :'t_j5'), '(running,t)', '... and the run goes on');

SELECT * FROM finish();
ROLLBACK;
