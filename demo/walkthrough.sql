-- belay walk-through: an order is placed, charged (the card API fails once), and shipped.
-- Run by `make demo` on a scratch cluster. Every call is the public SQL API.
\pset footer off
\set QUIET on
\echo
\echo '=== belay walk-through ==='
CREATE EXTENSION belay;
-- Shows a refused call as its SQLSTATE and message instead of stopping the script.
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE statement;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN 'refused, SQLSTATE ' || SQLSTATE || ': ' || SQLERRM;
END $$;
\echo
\echo '1. Create a queue whose tasks retry up to 3 times, 1 s apart (fixed backoff).'
SELECT belay.create_queue('orders', '{"max_attempts": 3, "retry": {"kind": "fixed", "base_seconds": 1}}') \g /dev/null
SELECT queue, policy FROM belay.list_queues();

\echo '2. Spawn work: one charge task (idempotent), a batch of 3 emails, and one delayed report.'
SELECT task_id AS charge_id, created FROM belay.spawn('orders', 'charge-card', '{"order": 1001, "amount": 4200}',
       '{"idempotency_key": "charge-1001", "priority": 10}') \gset
SELECT created AS "spawned again with the same key: created?" FROM belay.spawn('orders', 'charge-card',
       '{"order": 1001, "amount": 4200}', '{"idempotency_key": "charge-1001"}');
SELECT count(*) AS "emails spawned" FROM belay.spawn_many('orders', 'send-email',
       '[{"to": "ann@example.com"}, {"to": "bob@example.com"}, {"to": "cy@example.com"}]');
SELECT task_id AS report_id FROM belay.spawn('orders', 'daily-report', '{}', '{"delay_seconds": 3600}') \gset
SELECT task_name, state, priority, attempt FROM belay.tasks WHERE queue = 'orders' ORDER BY priority DESC, created_at;
\echo '   (the report is "scheduled": pending, but not claimable for an hour)'

\echo
\echo '3. worker-a claims one task: the highest priority one, the charge.'
SELECT run_id AS run1 FROM belay.claim('orders', 'worker-a', 1, 30) \gset
SELECT task_name, params, attempt FROM belay.tasks WHERE run_id = :'run1';
\echo '   It records a durable step, then the card API times out: the run fails.'
SELECT belay.set_checkpoint(:'run1', 'fraud-check', '{"score": 0.02}') \g /dev/null
SELECT belay.fail(:'run1', '{"kind": "timeout", "message": "card API did not answer"}') AS "state after fail";
SELECT state, attempt, round(extract(epoch FROM available_at - clock_timestamp())) AS "retry in (s)"
  FROM belay.task(:'charge_id');

\echo
\echo '4. The old run is fenced off: a late complete from worker-a is refused (BL001).'
SELECT pg_temp.try(format('SELECT belay.complete(%L, %L)', :'run1', '{"charged": true}')) AS "late complete";

\echo
\echo '5. A second later the retry is due; worker-b claims it and gets the finished step back.'
SELECT pg_sleep(1.2) \g /dev/null
SELECT run_id AS run2, attempt, checkpoints FROM belay.claim('orders', 'worker-b', 1, 30) \gset
SELECT :'attempt' AS attempt, :'checkpoints' AS "checkpoints handed back";
SELECT belay.heartbeat(:'run2') > clock_timestamp() AS "heartbeat extended the lease";
SELECT belay.complete(:'run2', '{"charged": true, "receipt": "r-77"}') \g /dev/null
SELECT state, attempt, result FROM belay.task(:'charge_id');

\echo
\echo '6. The emails are claimed in one call and completed; one is cancelled by an operator.'
SELECT array_agg(run_id ORDER BY task_id) AS runs FROM belay.claim('orders', 'worker-a', 10, 30) \gset
SELECT count(belay.complete(r)) AS completed FROM unnest(:'runs'::uuid[]) WITH ORDINALITY AS u(r, i) WHERE i < 3;
SELECT belay.cancel(task_id) AS cancelled FROM belay.tasks WHERE run_id = (:'runs'::uuid[])[3];
\echo '   The worker that still holds the cancelled email learns it at its next call (BL002):'
SELECT pg_temp.try(format('SELECT belay.complete(%L)', (:'runs'::uuid[])[3])) AS "complete after cancel";

\echo
\echo '7. The run history of the charge task:'
SELECT attempt, worker, outcome, error->>'kind' AS error FROM belay.runs
 WHERE task_id = :'charge_id' ORDER BY started_at;

\echo
\echo '8. Where everything stands:'
SELECT i.task_name, i.state, i.attempt FROM belay.tasks t, LATERAL belay.task(t.task_id) i
 WHERE t.queue = 'orders' ORDER BY i.task_name, i.state;
\echo 'The cancelled email can be put back with belay.retry(task_id); finished tasks are'
\echo 'removed by belay.cleanup(queue, older_than). Walk-through done.'
