-- belay pgTAP: tick(now, batch_size), one round of the background worker at time `now`:
-- cancellation deadlines, waking due sleepers and delayed tasks, timing out waits,
-- reclaiming expired leases. It returns what it did (woken, timed_out, reclaimed,
-- cancelled) and next_due_at, the soonest time at which there is work again: the
-- earliest of the sleeping/delayed tasks' available_at, the waits' deadlines, the running
-- tasks' lease expiries and the unfinished tasks' cancellation deadlines.
--
-- tick() works across every queue, so each section starts from an empty belay (its
-- DELETE, like everything else here, is rolled back at the end).
BEGIN;
SELECT plan(47);

CREATE FUNCTION pg_temp.reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM belay.tasks; DELETE FROM belay.queues $$;
CREATE FUNCTION pg_temp.spawn(q text, options jsonb DEFAULT '{}') RETURNS uuid LANGUAGE sql AS
$$ SELECT task_id FROM belay.spawn(q, 'job', '{}', options) $$;
CREATE FUNCTION pg_temp.claim1(q text, lease numeric DEFAULT 864000) RETURNS uuid LANGUAGE sql AS
$$ SELECT run_id FROM belay.claim(q, 'tap-worker', 1, lease) $$;
-- The counts of one tick as text, '(woken,timed_out,reclaimed,cancelled)'.
CREATE FUNCTION pg_temp.counts(at timestamptz, batch int DEFAULT 1000) RETURNS text LANGUAGE sql AS
$$ SELECT (woken, timed_out, reclaimed, cancelled)::text FROM belay.tick(at, batch) $$;
-- One tick: its counts and next_due_at (the tick runs once).
CREATE FUNCTION pg_temp.tick(at timestamptz, batch int DEFAULT 1000) RETURNS TABLE (counts text, next_due_at timestamptz)
LANGUAGE sql AS $$ SELECT (woken, timed_out, reclaimed, cancelled)::text, next_due_at FROM belay.tick(at, batch) $$;
CREATE FUNCTION pg_temp.state(t uuid) RETURNS text LANGUAGE sql AS $$ SELECT state FROM belay.task(t) $$;

-- 5 sleepers (due 10, 20, 30, 40, 50 s after their sleep), 3 waits with a 60 s timeout,
-- 3 running tasks with a 60 s lease and one attempt, 3 never-started tasks with a 60 s
-- max_delay_seconds.
CREATE FUNCTION pg_temp.build() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  i int;
  r uuid;
BEGIN
  PERFORM pg_temp.reset();
  PERFORM belay.create_queue('tap_tick.batch');
  FOR i IN 1..5 LOOP
    PERFORM belay.spawn('tap_tick.batch', 'sleeper');
    r := pg_temp.claim1('tap_tick.batch');
    PERFORM belay.sleep(r, 's', i * 10::numeric);
  END LOOP;
  FOR i IN 1..3 LOOP
    PERFORM belay.spawn('tap_tick.batch', 'waiter');
    r := pg_temp.claim1('tap_tick.batch');
    PERFORM belay.await_event(r, 'w', 'never', 60);
  END LOOP;
  FOR i IN 1..3 LOOP
    PERFORM belay.spawn('tap_tick.batch', 'holder', '{}', '{"max_attempts": 1}');
    PERFORM pg_temp.claim1('tap_tick.batch', 60);
  END LOOP;
  PERFORM belay.create_queue('tap_tick.late');
  FOR i IN 1..3 LOOP
    PERFORM belay.spawn('tap_tick.late', 'late', '{}', '{"cancellation": {"max_delay_seconds": 60}}');
  END LOOP;
END $$;
CREATE FUNCTION pg_temp.tally() RETURNS text LANGUAGE sql AS
$$ SELECT string_agg(format('%s %s: %s', task_name, state, n), ', ' ORDER BY task_name, state)
   FROM (SELECT task_name, state, count(*) AS n FROM belay.tasks GROUP BY 1, 2) s $$;

-------------------------------------------------------------------------------------------
-- Nothing to do.
SELECT pg_temp.reset();
SELECT is((SELECT (woken, timed_out, reclaimed, cancelled, next_due_at)::text FROM belay.tick()), '(0,0,0,0,)',
          'tick of an empty belay: nothing done, next_due_at NULL');
SELECT is((SELECT (woken, timed_out, reclaimed, cancelled, next_due_at)::text
           FROM belay.tick(clock_timestamp() + interval '100 years')), '(0,0,0,0,)',
          '... at any time');

-- Work that never falls due: a pending task, a wait without timeout, the deadlines of
-- finished tasks.
SELECT belay.create_queue('tap_tick.idle');
SELECT pg_temp.spawn('tap_tick.idle', '{"priority": 9, "cancellation": {"max_duration_seconds": 60}}') AS t_done \gset
SELECT belay.complete(pg_temp.claim1('tap_tick.idle'));
SELECT pg_temp.spawn('tap_tick.idle', '{"priority": 8, "max_attempts": 1, "cancellation": {"max_duration_seconds": 60}}') AS t_failed \gset
SELECT belay.fail(pg_temp.claim1('tap_tick.idle'), '{}') IS NOT NULL AS failed;
SELECT pg_temp.spawn('tap_tick.idle', '{"priority": 7, "cancellation": {"max_delay_seconds": 60}}') AS t_cancelled \gset
SELECT belay.cancel(:'t_cancelled');
SELECT pg_temp.spawn('tap_tick.idle', '{"priority": 6}') AS t_waiting \gset
SELECT * FROM belay.await_event(pg_temp.claim1('tap_tick.idle'), 'w', 'never');
SELECT pg_temp.spawn('tap_tick.idle') AS t_pending \gset
SELECT is(ARRAY[pg_temp.state(:'t_done'), pg_temp.state(:'t_failed'), pg_temp.state(:'t_cancelled'),
                pg_temp.state(:'t_waiting'), pg_temp.state(:'t_pending')],
          '{completed,failed,cancelled,waiting,pending}', 'setup: a task in each state that needs no tick');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE cancel_at IS NOT NULL), 3, 'setup: the three finished tasks have a deadline');
SELECT is((SELECT (woken, timed_out, reclaimed, cancelled, next_due_at)::text
           FROM belay.tick(clock_timestamp() + interval '1 day')), '(0,0,0,0,)',
          'tick: nothing to do, and nothing due ever (finished tasks'' deadlines do not count)');
SELECT is(ARRAY[pg_temp.state(:'t_done'), pg_temp.state(:'t_failed'), pg_temp.state(:'t_cancelled'),
                pg_temp.state(:'t_waiting'), pg_temp.state(:'t_pending')],
          '{completed,failed,cancelled,waiting,pending}', 'the tick changed none of them');

-------------------------------------------------------------------------------------------
-- next_due_at: the soonest of every kind of due time, step by step.
SELECT pg_temp.reset();
SELECT clock_timestamp() AS base \gset
SELECT belay.create_queue('tap_tick.due');
SELECT belay.create_queue('tap_tick.late');
-- A: sleeps until base + 100 s.
SELECT pg_temp.spawn('tap_tick.due') AS t_a \gset
SELECT belay.sleep(pg_temp.claim1('tap_tick.due'), 's', :'base'::timestamptz + interval '100 s');
-- B: delayed until base + 200 s.
SELECT pg_temp.spawn('tap_tick.due', jsonb_build_object('run_at', :'base'::timestamptz + interval '200 s')) AS t_b \gset
-- C: awaits with a 300 s timeout.
SELECT pg_temp.spawn('tap_tick.due') AS t_c \gset
SELECT * FROM belay.await_event(pg_temp.claim1('tap_tick.due'), 'w', 'never', 300);
-- D: runs with a 400 s lease; when reclaimed it retries 10 s later.
SELECT pg_temp.spawn('tap_tick.due', '{"retry": {"kind": "fixed", "base_seconds": 10}}') AS t_d \gset
SELECT pg_temp.claim1('tap_tick.due', 400);
-- E: never started, cancelled 500 s after spawn.
SELECT pg_temp.spawn('tap_tick.late', '{"cancellation": {"max_delay_seconds": 500}}') AS t_e \gset
SELECT ok((SELECT state = 'scheduled' FROM belay.tasks WHERE task_id = :'t_b') AND
          (SELECT ARRAY[pg_temp.state(:'t_a'), pg_temp.state(:'t_c'), pg_temp.state(:'t_d'), pg_temp.state(:'t_e')]
           = '{sleeping,waiting,running,pending}'), 'setup: A sleeps, B is delayed, C waits, D runs, E is pending');
SELECT deadline AS due_c FROM belay.waits WHERE task_id = :'t_c' \gset
SELECT lease_expires_at AS due_d FROM belay.tasks WHERE task_id = :'t_d' \gset
SELECT cancel_at AS due_e FROM belay.tasks WHERE task_id = :'t_e' \gset
SELECT ok(:'due_c'::timestamptz BETWEEN :'base'::timestamptz + interval '300 s' AND :'base'::timestamptz + interval '330 s'
          AND :'due_d'::timestamptz BETWEEN :'base'::timestamptz + interval '400 s' AND :'base'::timestamptz + interval '430 s'
          AND :'due_e'::timestamptz BETWEEN :'base'::timestamptz + interval '500 s' AND :'base'::timestamptz + interval '530 s',
          'setup: the wait deadline, lease expiry and cancel deadline are 300, 400 and 500 s on');

SELECT results_eq($$SELECT * FROM pg_temp.tick(clock_timestamp())$$,
                  format('VALUES (%L, %L::timestamptz)', '(0,0,0,0)', :'base'::timestamptz + interval '100 s'),
                  'nothing due now; next_due_at: A''s wake time');
SELECT results_eq(format('SELECT * FROM pg_temp.tick(%L::timestamptz + interval %L)', :'base', '150 s'),
                  format('VALUES (%L, %L::timestamptz)', '(1,0,0,0)', :'base'::timestamptz + interval '200 s'),
                  'at +150 s: A is woken; next_due_at: B''s run_at');
SELECT is(pg_temp.state(:'t_a'), 'pending', 'A is pending');
SELECT results_eq(format('SELECT * FROM pg_temp.tick(%L::timestamptz + interval %L)', :'base', '250 s'),
                  format('VALUES (%L, %L::timestamptz)', '(1,0,0,0)', :'due_c'),
                  'at +250 s: B is woken; next_due_at: C''s wait deadline');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_b'), 'pending', 'B is pending');
SELECT results_eq(format('SELECT * FROM pg_temp.tick(%L::timestamptz + interval %L)', :'base', '350 s'),
                  format('VALUES (%L, %L::timestamptz)', '(0,1,0,0)', :'due_d'),
                  'at +350 s: C times out; next_due_at: D''s lease expiry');
SELECT is(pg_temp.state(:'t_c'), 'pending', 'C is pending');
SELECT results_eq(format('SELECT * FROM pg_temp.tick(%L::timestamptz + interval %L)', :'base', '450 s'),
                  format('VALUES (%L, %L::timestamptz)', '(0,0,1,0)', :'base'::timestamptz + interval '460 s'),
                  'at +450 s: D''s lease is reclaimed; next_due_at: D''s retry, 10 s later');
SELECT is((SELECT (state, attempt)::text FROM belay.tasks WHERE task_id = :'t_d'), '(scheduled,2)', 'D backs off for attempt 2');
SELECT results_eq(format('SELECT * FROM pg_temp.tick(%L::timestamptz + interval %L)', :'base', '470 s'),
                  format('VALUES (%L, %L::timestamptz)', '(1,0,0,0)', :'due_e'),
                  'at +470 s: D''s retry is woken; next_due_at: E''s cancellation deadline');
SELECT results_eq(format('SELECT * FROM pg_temp.tick(%L::timestamptz + interval %L)', :'base', '550 s'),
                  format('VALUES (%L, NULL::timestamptz)', '(0,0,0,1)'),
                  'at +550 s: E is cancelled; nothing is due any more');
SELECT is(ARRAY[pg_temp.state(:'t_a'), pg_temp.state(:'t_b'), pg_temp.state(:'t_c'), pg_temp.state(:'t_d'), pg_temp.state(:'t_e')],
          '{pending,pending,pending,pending,cancelled}', 'A to D are claimable, E is cancelled');
SELECT is(pg_temp.counts(:'base'::timestamptz + interval '1 day'), '(0,0,0,0)', 'a later tick finds nothing to do');

-- A started task's cancellation deadline counts too (first start + max_duration_seconds).
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_tick.dur');
SELECT pg_temp.spawn('tap_tick.dur', '{"cancellation": {"max_duration_seconds": 50}}') AS t_dur \gset
SELECT pg_temp.claim1('tap_tick.dur');
SELECT is((SELECT next_due_at FROM belay.tick(clock_timestamp())),
          (SELECT first_started_at + interval '50 s' FROM belay.tasks WHERE task_id = :'t_dur'),
          'next_due_at of a running task with max_duration_seconds 50 and a 10-day lease: its start + 50 s');

-------------------------------------------------------------------------------------------
-- batch_size bounds the work of each kind per call.
SELECT pg_temp.build();
SELECT is(pg_temp.tally(), 'holder running: 3, late pending: 3, sleeper sleeping: 5, waiter waiting: 3',
          'setup: 5 sleepers, 3 waiters, 3 running holders, 3 never-started tasks with a deadline');
SELECT max(available_at) AS last_wake FROM belay.tasks WHERE task_name = 'sleeper' \gset
SELECT clock_timestamp() + interval '1 hour' AS later \gset
SELECT is(pg_temp.counts(:'later', 2), '(2,2,2,2)', 'batch_size 2: at most 2 of each kind');
SELECT is(pg_temp.tally(), 'holder failed: 2, holder running: 1, late cancelled: 2, late pending: 1, '
                           'sleeper pending: 2, sleeper sleeping: 3, waiter pending: 2, waiter waiting: 1',
          'the tasks changed are exactly those counted');
SELECT ok((SELECT max(available_at) FROM belay.tasks WHERE task_name = 'sleeper' AND state = 'pending') <
          (SELECT min(available_at) FROM belay.tasks WHERE task_name = 'sleeper' AND state = 'sleeping'),
          'the sleepers due first were woken first');
SELECT results_eq(format('SELECT * FROM pg_temp.tick(%L, 2)', :'later'),
                  format('VALUES (%L, %L::timestamptz)', '(2,1,1,1)', :'last_wake'),
                  'the next call does the rest but one sleeper; next_due_at: that sleeper''s wake time, already past');
SELECT is(pg_temp.counts(:'later', 2), '(1,0,0,0)', 'the third call wakes the last sleeper');
SELECT is(pg_temp.counts(:'later', 2), '(0,0,0,0)', 'the fourth finds nothing');
SELECT is(pg_temp.tally(), 'holder failed: 3, late cancelled: 3, sleeper pending: 5, waiter pending: 3',
          'in the end every task was handled once');

SELECT pg_temp.build();
SELECT is(pg_temp.counts(clock_timestamp() + interval '1 hour', 1), '(1,1,1,1)', 'batch_size 1: one of each kind');
SELECT is(pg_temp.counts(clock_timestamp() + interval '1 hour'), '(4,2,2,2)', 'the default batch_size does all the rest');

SELECT pg_temp.build();
SELECT is(pg_temp.counts(clock_timestamp() + interval '1 hour', 100000), '(5,3,3,3)', 'batch_size 100000 does it all at once');

-- Across queues too, the tasks due first are woken first: a queue with much due work does
-- not hold back the due work of another. Two queues with tasks due at 5 and 15 s, and at
-- 10 and 20 s: a batch of 2 wakes those due at 5 and 10 s, one in each queue.
SELECT pg_temp.reset();
SELECT belay.create_queue('tap_tick.qa');
SELECT belay.create_queue('tap_tick.qb');
SELECT count(*) FROM belay.spawn('tap_tick.qa', 'a5', '{}', '{"delay_seconds": 5}');
SELECT count(*) FROM belay.spawn('tap_tick.qa', 'a15', '{}', '{"delay_seconds": 15}');
SELECT count(*) FROM belay.spawn('tap_tick.qb', 'b10', '{}', '{"delay_seconds": 10}');
SELECT count(*) FROM belay.spawn('tap_tick.qb', 'b20', '{}', '{"delay_seconds": 20}');
SELECT is(pg_temp.counts(clock_timestamp() + interval '1 hour', 2), '(2,0,0,0)', 'batch_size 2 over two queues: two woken');
SELECT is((SELECT string_agg(task_name, ',' ORDER BY task_name) FROM belay.tasks WHERE state = 'pending'), 'a5,b10',
          '... the two due first, one in each queue');

-- Due only when due: 35 s after the setup, the sleepers due at 10, 20 and 30 s.
SELECT pg_temp.build();
SELECT is(pg_temp.counts(clock_timestamp() + interval '35 s'), '(3,0,0,0)',
          '35 s on: the three sleepers due by then are woken, nothing else');
SELECT is(pg_temp.counts(clock_timestamp() + interval '90 s'), '(2,3,3,3)', '90 s on: everything else');

-------------------------------------------------------------------------------------------
-- Bad arguments: refused, and nothing is done.
SELECT pg_temp.build();
SELECT throws_ok($$SELECT * FROM belay.tick(clock_timestamp() + interval '1 hour', 0)$$, '22023', NULL, 'batch_size 0 raises 22023');
SELECT throws_ok($$SELECT * FROM belay.tick(clock_timestamp() + interval '1 hour', -1)$$, '22023', NULL, 'batch_size -1 raises 22023');
SELECT throws_ok($$SELECT * FROM belay.tick(clock_timestamp() + interval '1 hour', 100001)$$, '22023', NULL,
                 'batch_size 100001 raises 22023');
SELECT throws_ok($$SELECT * FROM belay.tick(clock_timestamp() + interval '1 hour', NULL)$$, '22004', NULL,
                 'batch_size NULL raises 22004');
SELECT throws_ok($$SELECT * FROM belay.tick(NULL)$$, '22004', NULL, 'now NULL raises 22004');
SELECT throws_ok($$SELECT * FROM belay.tick(NULL, 10)$$, '22004', NULL, 'now NULL with a batch_size raises 22004');
SELECT throws_ok($$SELECT * FROM belay.tick('infinity')$$, '22023', NULL, 'now infinity raises 22023');
SELECT throws_ok($$SELECT * FROM belay.tick('-infinity', 10)$$, '22023', NULL, 'now -infinity raises 22023');
SELECT is(pg_temp.tally(), 'holder running: 3, late pending: 3, sleeper sleeping: 5, waiter waiting: 3',
          'the refused calls changed nothing');
SELECT is(pg_temp.counts(clock_timestamp() + interval '1 hour', 100000), '(5,3,3,3)', 'batch_size 100000 is allowed');

SELECT * FROM finish();
ROLLBACK;
