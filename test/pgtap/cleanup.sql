-- belay pgTAP: cleanup. Deletes terminal tasks (completed, failed, cancelled) that
-- finished more than older_than ago, in one queue or in all, with their runs and
-- checkpoints; leaves every other task alone.
--
-- Tasks are aged by moving finished_at back (as if days had passed), so the tests do not
-- depend on whether the cut-off is taken from now() or from the clock.
BEGIN;
SELECT plan(39);

CREATE FUNCTION pg_temp.spawn(q text, name text, options jsonb DEFAULT '{}') RETURNS uuid LANGUAGE sql AS
$$ SELECT task_id FROM belay.spawn(q, name, '{}', options) $$;
-- fail() without reading its returned text (see retry.sql).
CREATE FUNCTION pg_temp.fail_final(r uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE returned boolean;
BEGIN returned := belay.fail(r, '{"msg": "boom"}', NULL, true) IS NOT NULL; END $$;
-- Claim the one pending task of q, checkpoint it, then finish it as `how`.
CREATE FUNCTION pg_temp.finish_as(q text, how text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE r uuid; t uuid;
BEGIN
  SELECT run_id, task_id INTO r, t FROM belay.claim(q, 'tap-worker', 1, 60);
  PERFORM belay.set_checkpoint(r, 'step', '"done"');
  IF how = 'completed' THEN PERFORM belay.complete(r, '{"ok": true}');
  ELSIF how = 'failed' THEN PERFORM pg_temp.fail_final(r);
  ELSE PERFORM belay.cancel(t);
  END IF;
  RETURN t;
END $$;
CREATE FUNCTION pg_temp.age(t uuid, by interval) RETURNS void LANGUAGE sql AS
$$ UPDATE belay.tasks SET finished_at = finished_at - by WHERE task_id = t $$;
CREATE FUNCTION pg_temp.present(variadic ids uuid[]) RETURNS int LANGUAGE sql AS
$$ SELECT count(*)::int FROM belay.tasks WHERE task_id = ANY (ids) $$;
CREATE FUNCTION pg_temp.totals() RETURNS text LANGUAGE sql AS $$
  SELECT format('%s tasks, %s runs, %s checkpoints', (SELECT count(*) FROM belay.tasks),
                (SELECT count(*) FROM belay.runs), (SELECT count(*) FROM belay.checkpoints))
$$;

SELECT belay.create_queue('tap_cl.a');
SELECT belay.create_queue('tap_cl.b');
SELECT belay.create_queue('tap_cl.work');

-- Terminal tasks, each with a run and a checkpoint (spawned and finished one at a time).
SELECT pg_temp.spawn('tap_cl.a', 'done_old') AS x \gset
SELECT pg_temp.finish_as('tap_cl.a', 'completed') AS a_done_old \gset
SELECT pg_temp.spawn('tap_cl.a', 'failed_old') AS x \gset
SELECT pg_temp.finish_as('tap_cl.a', 'failed') AS a_failed_old \gset
SELECT pg_temp.spawn('tap_cl.a', 'cancelled_old') AS x \gset
SELECT pg_temp.finish_as('tap_cl.a', 'cancelled') AS a_cancel_old \gset
SELECT pg_temp.spawn('tap_cl.a', 'done_6d') AS x \gset
SELECT pg_temp.finish_as('tap_cl.a', 'completed') AS a_done_6d \gset
SELECT pg_temp.spawn('tap_cl.a', 'done_1h') AS x \gset
SELECT pg_temp.finish_as('tap_cl.a', 'completed') AS a_done_1h \gset
SELECT pg_temp.spawn('tap_cl.b', 'b_done_old') AS x \gset
SELECT pg_temp.finish_as('tap_cl.b', 'completed') AS b_done_old \gset
SELECT pg_temp.age(:'a_done_old', '10 days');
SELECT pg_temp.age(:'a_failed_old', '10 days');
SELECT pg_temp.age(:'a_cancel_old', '30 days');
SELECT pg_temp.age(:'a_done_6d', '6 days');
SELECT pg_temp.age(:'a_done_1h', '1 hour');
SELECT pg_temp.age(:'b_done_old', '10 days');

-- Unfinished tasks of every kind, old ones included.
SELECT pg_temp.spawn('tap_cl.a', 'pending_old') AS a_pending \gset
UPDATE belay.tasks SET created_at = created_at - interval '30 days', available_at = available_at - interval '30 days'
 WHERE task_id = :'a_pending';
SELECT pg_temp.spawn('tap_cl.a', 'scheduled', '{"delay_seconds": 3600}') AS a_sched \gset
SELECT pg_temp.spawn('tap_cl.work', 'running') AS a_running \gset
SELECT run_id AS r_running FROM belay.claim('tap_cl.work', 'tap-worker', 1, 60) \gset
SELECT belay.set_checkpoint(:'r_running', 'step', '1');
-- A task that failed once long ago and now waits for its retry.
SELECT pg_temp.spawn('tap_cl.work', 'retrying', '{"retry": {"kind": "fixed", "base_seconds": 3600}}') AS a_retrying \gset
SELECT belay.fail(run_id, '{}') IS NULL AS ignored FROM belay.claim('tap_cl.work', 'tap-worker', 1, 60) \gset
UPDATE belay.run_history SET started_at = started_at - interval '30 days', ended_at = ended_at - interval '30 days'
 WHERE task_id = :'a_retrying';

SELECT is((SELECT count(*)::int FROM belay.runs WHERE task_id IN (:'a_done_old', :'a_failed_old', :'a_cancel_old')), 3,
          'setup: each old terminal task has a run');
SELECT is((SELECT count(*)::int FROM belay.checkpoints WHERE task_id IN (:'a_done_old', :'a_failed_old', :'a_cancel_old')), 3,
          'setup: each old terminal task has a checkpoint');

-------------------------------------------------------------------------------------------
-- Bad calls are refused and delete nothing.
SELECT pg_temp.totals() AS totals0 \gset
SELECT throws_ok($$SELECT belay.cleanup('tap_cl.nope')$$, 'BL003', NULL, 'cleanup of an unknown queue raises BL003');
SELECT throws_ok($$SELECT belay.cleanup('tap_cl.a', interval '-1 day')$$, '22023', NULL,
                 'a negative older_than raises 22023');
SELECT throws_ok($$SELECT belay.cleanup(NULL, interval '-5 minutes')$$, '22023', NULL,
                 'a negative older_than raises 22023 for all queues too');
SELECT throws_ok($$SELECT belay.cleanup('tap_cl.a', NULL)$$, '22004', NULL, 'a NULL older_than raises 22004');
SELECT throws_ok($$SELECT belay.cleanup('not a queue!')$$, '22023', NULL, 'an invalid queue name raises 22023');
SELECT is(pg_temp.totals(), :'totals0', 'the refused cleanups deleted nothing');

-------------------------------------------------------------------------------------------
-- One queue, default older_than (7 days).
SELECT is(belay.cleanup('tap_cl.a'), 3::bigint, 'cleanup(queue) deletes the 3 terminal tasks older than 7 days');
SELECT is(pg_temp.present(:'a_done_old', :'a_failed_old', :'a_cancel_old'), 0,
          'the old completed, failed and cancelled tasks are gone');
SELECT is((SELECT count(*)::int FROM belay.runs WHERE task_id IN (:'a_done_old', :'a_failed_old', :'a_cancel_old')), 0,
          'their runs are gone');
SELECT is((SELECT count(*)::int FROM belay.checkpoints WHERE task_id IN (:'a_done_old', :'a_failed_old', :'a_cancel_old')), 0,
          'their checkpoints are gone');
SELECT is_empty(format('SELECT * FROM belay.task(%L)', :'a_done_old'), 'task() finds no deleted task');
SELECT is_empty(format('SELECT * FROM belay.checkpoints(%L)', :'a_done_old'), 'checkpoints() of a deleted task is empty');
SELECT is(pg_temp.present(:'a_done_6d', :'a_done_1h'), 2, 'terminal tasks younger than 7 days stay');
SELECT is(pg_temp.present(:'a_pending', :'a_sched'), 2, 'an old pending task and a scheduled task stay');
SELECT is(pg_temp.present(:'b_done_old'), 1, 'an old terminal task of another queue stays');
SELECT is((SELECT count(*)::int FROM belay.runs WHERE task_id IN (:'a_done_6d', :'a_done_1h', :'b_done_old')), 3,
          'the runs of the remaining terminal tasks stay');
SELECT is((SELECT count(*)::int FROM belay.checkpoints WHERE task_id IN (:'a_done_6d', :'a_done_1h', :'b_done_old')), 3,
          'the checkpoints of the remaining terminal tasks stay');
SELECT is(belay.cleanup('tap_cl.a'), 0::bigint, 'a second cleanup finds nothing more');

-- A shorter older_than.
SELECT is(belay.cleanup('tap_cl.a', interval '5 days'), 1::bigint, 'older_than 5 days deletes the task finished 6 days ago');
SELECT is(pg_temp.present(:'a_done_6d'), 0, 'the 6-day-old task is gone');
SELECT is(belay.cleanup('tap_cl.a', interval '2 hours'), 0::bigint, 'older_than 2 hours spares a task finished 1 hour ago');
SELECT is(belay.cleanup('tap_cl.a', interval '30 minutes'), 1::bigint, 'older_than 30 minutes deletes it');
SELECT is(pg_temp.present(:'a_done_1h'), 0, 'the 1-hour-old task is gone');
SELECT is(pg_temp.present(:'a_pending', :'a_sched'), 2, 'the unfinished tasks of the queue are still there');
SELECT ok(EXISTS (SELECT 1 FROM belay.list_queues() WHERE queue = 'tap_cl.a'), 'cleanup keeps the queue itself');

-------------------------------------------------------------------------------------------
-- All queues.
SELECT count(*) AS expected_all FROM belay.tasks
 WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at < clock_timestamp() - interval '7 days' \gset
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue LIKE 'tap\_cl.%' AND state IN ('completed', 'failed', 'cancelled')
             AND finished_at < clock_timestamp() - interval '7 days'), 1,
          'setup: of the tasks of this suite, only the old task of queue b is due for cleanup');
SELECT is(belay.cleanup(), :expected_all::bigint, 'cleanup() with no arguments deletes old terminal tasks of all queues');
SELECT is(pg_temp.present(:'b_done_old'), 0, 'the old task of queue b is gone');
SELECT is((SELECT count(*)::int FROM belay.runs WHERE task_id = :'b_done_old'), 0, 'its run is gone');
SELECT is((SELECT count(*)::int FROM belay.checkpoints WHERE task_id = :'b_done_old'), 0, 'its checkpoint is gone');

SELECT pg_temp.spawn('tap_cl.b', 'b_done_8d') AS x \gset
SELECT pg_temp.finish_as('tap_cl.b', 'completed') AS b_done_8d \gset
SELECT pg_temp.age(:'b_done_8d', '8 days');
SELECT is(belay.cleanup(NULL, interval '9 days'), 0::bigint, 'cleanup(NULL, 9 days) spares a task finished 8 days ago');
SELECT is(belay.cleanup(NULL, interval '7 days'), 1::bigint, 'cleanup(NULL, 7 days) deletes it');

-- Unfinished work is never touched, however old.
SELECT is(belay.cleanup('tap_cl.a', interval '0') + belay.cleanup('tap_cl.work', interval '0'), 0::bigint,
          'with only unfinished tasks left, nothing is deleted');
SELECT is(pg_temp.present(:'a_pending', :'a_sched', :'a_running', :'a_retrying'), 4,
          'pending, scheduled, running and retrying tasks all remain');
SELECT is((SELECT count(*)::int FROM belay.checkpoints WHERE task_id = :'a_running'), 1, 'the running task keeps its checkpoint');
SELECT is((SELECT count(*)::int FROM belay.runs WHERE task_id = :'a_retrying'), 1,
          'a retrying task keeps the history of its old failed run');
SELECT lives_ok(format('SELECT belay.complete(%L)', :'r_running'), 'the running task''s run is still live');

SELECT * FROM finish();
ROLLBACK;
