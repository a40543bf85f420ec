-- belay pgTAP: retry counting and backoff (belay.fail, retry policies, queue defaults,
-- the attempt counter and the belay.runs history).
--
-- Backoff is measured exactly as available_at - ended_at of the failed run: fail() takes
-- one clock reading and uses it for both, so the difference is the policy's delay to the
-- microsecond. A few checks also compare against clock_timestamp() with wide margins.
-- To step through attempts without waiting out the backoff, make_due() moves a
-- scheduled task's available_at into the past (as if its time had come).
BEGIN;
SELECT plan(121);

-- fail() through a wrapper that does not read fail()'s returned text (see the section
-- "fail() returns the task's new state" at the end): the task's state after the call.
CREATE FUNCTION pg_temp.fail(r uuid, err jsonb, at timestamptz DEFAULT NULL, fin boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  t uuid;
  returned boolean;
BEGIN
  SELECT task_id INTO t FROM belay.tasks WHERE run_id = r;
  returned := belay.fail(r, err, at, fin) IS NOT NULL;
  RETURN (SELECT state FROM belay.task(t));
END $$;
CREATE FUNCTION pg_temp.claim1(q text) RETURNS uuid LANGUAGE sql AS
$$ SELECT run_id FROM belay.claim(q, 'tap-worker', 1, 60) $$;
CREATE FUNCTION pg_temp.make_due(t uuid) RETURNS void LANGUAGE sql AS
$$ UPDATE belay.tasks SET available_at = clock_timestamp() - interval '1 ms'
   WHERE task_id = t AND state = 'scheduled' $$;
-- The delay fail() chose after the task's latest failed run.
CREATE FUNCTION pg_temp.backoff(t uuid) RETURNS interval LANGUAGE sql AS
$$ SELECT tk.available_at - r.ended_at FROM belay.tasks tk JOIN belay.runs r ON r.task_id = tk.task_id
   WHERE tk.task_id = t AND r.outcome = 'failed' ORDER BY r.attempt DESC, r.ended_at DESC LIMIT 1 $$;
-- Make the task due, claim it from its (single-task) queue and fail the run.
CREATE FUNCTION pg_temp.cycle(t uuid, q text, err jsonb DEFAULT '{"msg":"boom"}') RETURNS text LANGUAGE sql AS
$$ SELECT pg_temp.make_due(t); SELECT pg_temp.fail(pg_temp.claim1(q), err) $$;
CREATE FUNCTION pg_temp.raw_state(t uuid) RETURNS text LANGUAGE sql AS
$$ SELECT state FROM belay.tasks WHERE task_id = t $$;

-------------------------------------------------------------------------------------------
-- Default policy: exponential, base 1, factor 2, max 300; max_attempts 5.
SELECT belay.create_queue('tap_retry.default');
SELECT task_id AS t_def FROM belay.spawn('tap_retry.default', 'flaky', '{"n":1}') \gset

SELECT is((SELECT (attempt, max_attempts)::text FROM belay.task(:'t_def')), '(1,5)',
          'default task starts at attempt 1 of 5');

SELECT run_id AS r1, attempt AS a1 FROM belay.claim('tap_retry.default', 'tap-worker', 1, 60) \gset
SELECT is(:a1::int, 1, 'first claim runs attempt 1');
SELECT clock_timestamp() AS before_fail \gset
SELECT is(pg_temp.fail(:'r1', '{"msg":"first"}'), 'pending', 'fail of attempt 1 of 5 leaves it pending');
SELECT clock_timestamp() AS after_fail \gset
SELECT is((SELECT state FROM belay.task(:'t_def')), 'pending', 'task() reports the backing-off task as pending');
SELECT is(pg_temp.raw_state(:'t_def'), 'scheduled', 'internally the task is scheduled (not yet due)');
SELECT is((SELECT attempt FROM belay.task(:'t_def')), 2, 'the retry is attempt 2');
SELECT is(pg_temp.backoff(:'t_def'), interval '1 second', 'exponential backoff after attempt 1: base 1 s');
SELECT ok((SELECT available_at BETWEEN :'before_fail'::timestamptz + interval '1 s' AND :'after_fail'::timestamptz + interval '1 s'
           FROM belay.task(:'t_def')),
          'available_at is one second after the fail, on the clock');
SELECT is((SELECT error FROM belay.task(:'t_def')), '{"msg":"first"}'::jsonb, 'the error is stored on the task');
SELECT is((SELECT finished_at FROM belay.task(:'t_def')), NULL, 'a task that will retry is not finished');
SELECT is((SELECT (outcome, attempt, worker, error)::text FROM belay.runs WHERE run_id = :'r1'),
          (SELECT ('failed', 1, 'tap-worker', '{"msg":"first"}'::jsonb)::text),
          'belay.runs records the failed run with its attempt, worker and error');
SELECT ok((SELECT ended_at BETWEEN clock_timestamp() - interval '30 s' AND clock_timestamp()
                  AND ended_at >= started_at FROM belay.runs WHERE run_id = :'r1'),
          'the failed run ended on the clock, after it started');
SELECT is_empty($$SELECT * FROM belay.claim('tap_retry.default', 'tap-worker', 1, 60)$$,
                'a task backing off is not claimable before it is due');

SELECT pg_temp.make_due(:'t_def');
SELECT run_id AS r2, attempt AS a2 FROM belay.claim('tap_retry.default', 'tap-worker', 1, 60) \gset
SELECT is(:a2::int, 2, 'the re-claim runs attempt 2');
SELECT is(pg_temp.fail(:'r2', '{"msg":"second"}'), 'pending', 'fail of attempt 2 of 5 leaves it pending');
SELECT is(pg_temp.backoff(:'t_def'), interval '2 seconds', 'backoff after attempt 2: 2 s');
SELECT is((SELECT error FROM belay.task(:'t_def')), '{"msg":"second"}'::jsonb, 'the task holds the latest error');

SELECT is(pg_temp.cycle(:'t_def', 'tap_retry.default'), 'pending', 'fail of attempt 3 leaves it pending');
SELECT is(pg_temp.backoff(:'t_def'), interval '4 seconds', 'backoff after attempt 3: 4 s');
SELECT is(pg_temp.cycle(:'t_def', 'tap_retry.default'), 'pending', 'fail of attempt 4 leaves it pending');
SELECT is(pg_temp.backoff(:'t_def'), interval '8 seconds', 'backoff after attempt 4: 8 s');
SELECT is((SELECT attempt FROM belay.task(:'t_def')), 5, 'the task is now on attempt 5');

SELECT pg_temp.make_due(:'t_def');
SELECT run_id AS r5, attempt AS a5 FROM belay.claim('tap_retry.default', 'tap-worker', 1, 60) \gset
SELECT is(:a5::int, 5, 'the fifth claim runs attempt 5');
SELECT is(pg_temp.fail(:'r5', '{"msg":"last"}'), 'failed', 'fail of the last attempt leaves it failed');
SELECT is((SELECT state FROM belay.task(:'t_def')), 'failed', 'the task is failed');
SELECT is(pg_temp.raw_state(:'t_def'), 'failed', 'the stored state is failed');
SELECT is((SELECT attempt FROM belay.task(:'t_def')), 5, 'attempt stays at 5 when no retry is scheduled');
SELECT isnt((SELECT finished_at FROM belay.task(:'t_def')), NULL, 'a failed task has finished_at');
SELECT is((SELECT error FROM belay.task(:'t_def')), '{"msg":"last"}'::jsonb, 'the failed task keeps the last error');
SELECT results_eq($$SELECT attempt, outcome FROM belay.runs WHERE task_id = '$$ || :'t_def' || $$' ORDER BY attempt$$,
                  $$VALUES (1, 'failed'), (2, 'failed'), (3, 'failed'), (4, 'failed'), (5, 'failed')$$,
                  'belay.runs holds one failed run per attempt');
SELECT is((SELECT count(DISTINCT run_id)::int FROM belay.runs WHERE task_id = :'t_def'), 5,
          'each attempt ran under its own run_id');
SELECT is_empty($$SELECT * FROM belay.claim('tap_retry.default', 'tap-worker', 1, 60)$$,
                'a failed task is never claimed again');

-------------------------------------------------------------------------------------------
-- Default cap (max 300) and overflow of factor^(attempt-1).
SELECT belay.create_queue('tap_retry.cap300');
SELECT task_id AS t_cap FROM belay.spawn('tap_retry.cap300', 'slow', '{}', '{"max_attempts": 100000}') \gset
UPDATE belay.tasks SET attempt = 9 WHERE task_id = :'t_cap';
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.cap300'), '{}'), 'pending', 'attempt 9 of 100000 fails to pending');
SELECT is(pg_temp.backoff(:'t_cap'), interval '256 seconds', 'backoff after attempt 9: 2^8 = 256 s');
SELECT is(pg_temp.cycle(:'t_cap', 'tap_retry.cap300'), 'pending', 'attempt 10 fails to pending');
SELECT is(pg_temp.backoff(:'t_cap'), interval '300 seconds', 'backoff after attempt 10: 512 s capped at 300 s');
UPDATE belay.tasks SET attempt = 50000 WHERE task_id = :'t_cap';
SELECT is(pg_temp.cycle(:'t_cap', 'tap_retry.cap300'), 'pending', 'attempt 50000 fails to pending');
SELECT is(pg_temp.backoff(:'t_cap'), interval '300 seconds', 'a factor^attempt that overflows is capped at 300 s');
SELECT is((SELECT attempt FROM belay.task(:'t_cap')), 50001, 'attempt counts on past the overflow');

-------------------------------------------------------------------------------------------
-- Exponential with a custom base, factor and max_seconds.
SELECT belay.create_queue('tap_retry.exp');
SELECT task_id AS t_exp FROM belay.spawn('tap_retry.exp', 'x', '{}',
  '{"max_attempts": 10, "retry": {"kind": "exponential", "base_seconds": 10, "factor": 3, "max_seconds": 50}}') \gset
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.exp'), '{}'), 'pending', 'custom exponential: attempt 1 fails to pending');
SELECT is(pg_temp.backoff(:'t_exp'), interval '10 seconds', 'custom exponential after attempt 1: base 10 s');
SELECT is(pg_temp.cycle(:'t_exp', 'tap_retry.exp'), 'pending', 'custom exponential: attempt 2 fails to pending');
SELECT is(pg_temp.backoff(:'t_exp'), interval '30 seconds', 'custom exponential after attempt 2: 10 * 3 = 30 s');
SELECT is(pg_temp.cycle(:'t_exp', 'tap_retry.exp'), 'pending', 'custom exponential: attempt 3 fails to pending');
SELECT is(pg_temp.backoff(:'t_exp'), interval '50 seconds', 'custom exponential after attempt 3: 90 s capped at max_seconds 50');
SELECT is(pg_temp.cycle(:'t_exp', 'tap_retry.exp'), 'pending', 'custom exponential: attempt 4 fails to pending');
SELECT is(pg_temp.backoff(:'t_exp'), interval '50 seconds', 'custom exponential stays at the cap');

-- Fractional delays.
SELECT belay.create_queue('tap_retry.frac');
SELECT task_id AS t_frac FROM belay.spawn('tap_retry.frac', 'x', '{}',
  '{"retry": {"base_seconds": 0.25, "factor": 1.5}}') \gset
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.frac'), '{}'), 'pending', 'fractional policy: attempt 1 fails to pending');
SELECT is(pg_temp.backoff(:'t_frac'), interval '0.25 seconds', 'fractional base: 0.25 s');
SELECT is(pg_temp.cycle(:'t_frac', 'tap_retry.frac'), 'pending', 'fractional policy: attempt 2 fails to pending');
SELECT is(pg_temp.backoff(:'t_frac'), interval '0.375 seconds', 'fractional factor: 0.25 * 1.5 = 0.375 s');

-- base 0: the retry is due at once (pending, claimable immediately).
SELECT belay.create_queue('tap_retry.zero');
SELECT task_id AS t_zero FROM belay.spawn('tap_retry.zero', 'x', '{}', '{"retry": {"base_seconds": 0}}') \gset
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.zero'), '{}'), 'pending', 'zero backoff: fail leaves it pending');
SELECT is(pg_temp.raw_state(:'t_zero'), 'pending', 'zero backoff: the task is claimable now, not scheduled');
SELECT is((SELECT attempt FROM belay.claim('tap_retry.zero', 'tap-worker', 1, 60)), 2,
          'zero backoff: claimable at once, as attempt 2');

-------------------------------------------------------------------------------------------
-- Fixed policy: the same delay every time; factor and attempt do not matter.
SELECT belay.create_queue('tap_retry.fixed');
SELECT task_id AS t_fix FROM belay.spawn('tap_retry.fixed', 'x', '{}',
  '{"max_attempts": 4, "retry": {"kind": "fixed", "base_seconds": 3, "factor": 5}}') \gset
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.fixed'), '{}'), 'pending', 'fixed: attempt 1 fails to pending');
SELECT is(pg_temp.backoff(:'t_fix'), interval '3 seconds', 'fixed: 3 s after attempt 1');
SELECT is(pg_temp.cycle(:'t_fix', 'tap_retry.fixed'), 'pending', 'fixed: attempt 2 fails to pending');
SELECT is(pg_temp.backoff(:'t_fix'), interval '3 seconds', 'fixed: 3 s after attempt 2 (factor ignored)');
SELECT is(pg_temp.cycle(:'t_fix', 'tap_retry.fixed'), 'pending', 'fixed: attempt 3 fails to pending');
SELECT is(pg_temp.backoff(:'t_fix'), interval '3 seconds', 'fixed: 3 s after attempt 3');
SELECT is(pg_temp.cycle(:'t_fix', 'tap_retry.fixed'), 'failed', 'fixed: attempt 4 of 4 fails for good');
SELECT is((SELECT (state, attempt)::text FROM belay.task(:'t_fix')), '(failed,4)', 'fixed: failed on attempt 4');

-------------------------------------------------------------------------------------------
-- Jitter: the delay is drawn from [d/2, d].
SELECT belay.create_queue('tap_retry.jitter');
SELECT count(*) AS n_jit FROM belay.spawn_many('tap_retry.jitter', 'x',
  (SELECT jsonb_agg('{}'::jsonb) FROM generate_series(1, 40)),
  '{"retry": {"kind": "fixed", "base_seconds": 10, "jitter": true}}') \gset
SELECT is((SELECT count(*)::int FROM (SELECT pg_temp.fail(run_id, '{}') FROM belay.claim('tap_retry.jitter', 'tap-worker', 40, 60)) f),
          40, 'jitter: 40 tasks claimed and failed');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_retry.jitter'
            AND pg_temp.backoff(task_id) BETWEEN interval '5 s' AND interval '10 s'), 40,
          'fixed 10 s with jitter: every delay is within [5 s, 10 s]');
SELECT cmp_ok((SELECT count(DISTINCT pg_temp.backoff(task_id))::int FROM belay.tasks WHERE queue = 'tap_retry.jitter'),
              '>', 10, 'jitter really varies the delay');
SELECT ok((SELECT min(pg_temp.backoff(task_id)) < interval '8 s' AND max(pg_temp.backoff(task_id)) > interval '7 s'
           FROM belay.tasks WHERE queue = 'tap_retry.jitter'),
          'jitter spreads over the range, not just near one end');

SELECT belay.create_queue('tap_retry.jitter2');
SELECT count(*) AS n_jit2 FROM belay.spawn_many('tap_retry.jitter2', 'x',
  (SELECT jsonb_agg('{}'::jsonb) FROM generate_series(1, 30)),
  '{"retry": {"base_seconds": 2, "factor": 4, "max_seconds": 20, "jitter": true}}') \gset
UPDATE belay.tasks SET attempt = 2 WHERE queue = 'tap_retry.jitter2';
SELECT is((SELECT count(*)::int FROM (SELECT pg_temp.fail(run_id, '{}') FROM belay.claim('tap_retry.jitter2', 'tap-worker', 30, 60)) f),
          30, 'exponential jitter: 30 tasks claimed and failed on attempt 2');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_retry.jitter2'
            AND pg_temp.backoff(task_id) BETWEEN interval '4 s' AND interval '8 s'), 30,
          'exponential 2*4 = 8 s with jitter: every delay is within [4 s, 8 s]');
UPDATE belay.tasks SET available_at = clock_timestamp() - interval '1 ms' WHERE queue = 'tap_retry.jitter2';
SELECT is((SELECT count(*)::int FROM (SELECT pg_temp.fail(run_id, '{}') FROM belay.claim('tap_retry.jitter2', 'tap-worker', 30, 60)) f),
          30, 'exponential jitter: 30 tasks failed on attempt 3');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_retry.jitter2'
            AND pg_temp.backoff(task_id) BETWEEN interval '10 s' AND interval '20 s'), 30,
          'capped delay 32 -> 20 s with jitter: every delay is within [10 s, 20 s]');

-------------------------------------------------------------------------------------------
-- max_attempts 1: no retries.
SELECT belay.create_queue('tap_retry.once');
SELECT task_id AS t_once FROM belay.spawn('tap_retry.once', 'x', '{}', '{"max_attempts": 1}') \gset
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.once'), '"nope"'), 'failed', 'max_attempts 1: the first failure is final');
SELECT is((SELECT (state, attempt, error)::text FROM belay.task(:'t_once')), '(failed,1,"""nope""")',
          'max_attempts 1: failed on attempt 1 with the error (any JSON value)');

-- final => true: no retry even with attempts left.
SELECT belay.create_queue('tap_retry.final');
SELECT task_id AS t_fin FROM belay.spawn('tap_retry.final', 'x', '{}') \gset
SELECT run_id AS r_fin FROM belay.claim('tap_retry.final', 'tap-worker', 1, 60) \gset
SELECT is(pg_temp.fail(:'r_fin', '{"msg":"fatal"}', NULL, true), 'failed', 'final => true leaves it failed on attempt 1 of 5');
SELECT is((SELECT (state, attempt, max_attempts)::text FROM belay.task(:'t_fin')), '(failed,1,5)',
          'final: failed, attempt unchanged');
SELECT isnt((SELECT finished_at FROM belay.task(:'t_fin')), NULL, 'final: finished_at is set');
SELECT is((SELECT (outcome, error)::text FROM belay.runs WHERE run_id = :'r_fin'),
          (SELECT ('failed', '{"msg":"fatal"}'::jsonb)::text), 'final: the run is recorded as failed with the error');
SELECT is_empty($$SELECT * FROM belay.claim('tap_retry.final', 'tap-worker', 1, 60)$$, 'final: the task is not claimable');

-------------------------------------------------------------------------------------------
-- Explicit retry_at.
SELECT belay.create_queue('tap_retry.at');
SELECT task_id AS t_at FROM belay.spawn('tap_retry.at', 'x', '{}', '{"max_attempts": 3}') \gset
SELECT clock_timestamp() + interval '1 hour 23 minutes' AS retry_at \gset
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.at'), '{}', :'retry_at'), 'pending', 'retry_at in the future: pending');
SELECT is((SELECT available_at FROM belay.task(:'t_at')), :'retry_at'::timestamptz, 'retry_at overrides the policy exactly');
SELECT is(pg_temp.raw_state(:'t_at'), 'scheduled', 'retry_at in the future: scheduled');
SELECT is_empty($$SELECT * FROM belay.claim('tap_retry.at', 'tap-worker', 1, 60)$$, 'not claimable before retry_at');
SELECT pg_temp.make_due(:'t_at');
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.at'), '{}', clock_timestamp() - interval '1 minute'), 'pending',
          'retry_at in the past: pending');
SELECT is(pg_temp.raw_state(:'t_at'), 'pending', 'retry_at in the past: claimable at once');
SELECT is((SELECT attempt FROM belay.claim('tap_retry.at', 'tap-worker', 1, 60)), 3, 'retry_at in the past: claimed as attempt 3');
SELECT is((SELECT pg_temp.fail(run_id, '{}', clock_timestamp() + interval '1 hour') FROM belay.tasks WHERE task_id = :'t_at'),
          'failed', 'retry_at does not grant an attempt beyond max_attempts');
SELECT is((SELECT (state, attempt)::text FROM belay.task(:'t_at')), '(failed,3)', 'retry_at after the last attempt: failed');

SELECT task_id AS t_at2 FROM belay.spawn('tap_retry.at', 'y', '{}') \gset
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.at'), '{}', clock_timestamp() + interval '1 hour', true), 'failed',
          'final wins over retry_at');
SELECT is((SELECT state FROM belay.task(:'t_at2')), 'failed', 'final with retry_at: task failed');

-------------------------------------------------------------------------------------------
-- Queue policy defaults.
SELECT belay.create_queue('tap_retry.policy', '{"max_attempts": 2, "retry": {"kind": "fixed", "base_seconds": 7}}');
SELECT task_id AS t_pol FROM belay.spawn('tap_retry.policy', 'x', '{}') \gset
SELECT is((SELECT max_attempts FROM belay.task(:'t_pol')), 2, 'queue policy: max_attempts comes from the queue');
-- The policy is copied at spawn: changing the queue later does not change this task.
SELECT belay.create_queue('tap_retry.policy', '{"max_attempts": 9, "retry": {"kind": "fixed", "base_seconds": 11}}');
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.policy'), '{}'), 'pending', 'queue policy: attempt 1 of 2 fails to pending');
SELECT is(pg_temp.backoff(:'t_pol'), interval '7 seconds', 'queue policy: fixed 7 s from the policy at spawn time');
SELECT is(pg_temp.cycle(:'t_pol', 'tap_retry.policy'), 'failed', 'queue policy: attempt 2 of 2 is the last');
SELECT is((SELECT (state, attempt, max_attempts)::text FROM belay.task(:'t_pol')), '(failed,2,2)',
          'queue policy: failed after 2 attempts');

SELECT task_id AS t_pol2 FROM belay.spawn('tap_retry.policy', 'x', '{}') \gset
SELECT is((SELECT max_attempts FROM belay.task(:'t_pol2')), 9, 'a new task gets the updated queue policy');
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.policy'), '{}'), 'pending', 'updated policy: fails to pending');
SELECT is(pg_temp.backoff(:'t_pol2'), interval '11 seconds', 'updated policy: fixed 11 s');
SELECT belay.cancel(:'t_pol2') AS n_cancelled \gset

-- create_queue(q) without a policy keeps the existing one.
SELECT belay.create_queue('tap_retry.policy');
SELECT task_id AS t_pol3 FROM belay.spawn('tap_retry.policy', 'x', '{}') \gset
SELECT is((SELECT max_attempts FROM belay.task(:'t_pol3')), 9, 'create_queue without a policy keeps the queue policy');
SELECT belay.cancel(:'t_pol3') AS n_cancelled \gset

-- Spawn options override the queue policy.
SELECT task_id AS t_ovr FROM belay.spawn('tap_retry.policy', 'x', '{}',
  '{"max_attempts": 3, "retry": {"kind": "exponential", "base_seconds": 2, "factor": 5}}') \gset
SELECT is((SELECT max_attempts FROM belay.task(:'t_ovr')), 3, 'spawn max_attempts overrides the queue policy');
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.policy'), '{}'), 'pending', 'override: attempt 1 fails to pending');
SELECT is(pg_temp.backoff(:'t_ovr'), interval '2 seconds', 'override: exponential base 2 s');
SELECT is(pg_temp.cycle(:'t_ovr', 'tap_retry.policy'), 'pending', 'override: attempt 2 fails to pending');
SELECT is(pg_temp.backoff(:'t_ovr'), interval '10 seconds', 'override: 2 * 5 = 10 s');
SELECT is(pg_temp.cycle(:'t_ovr', 'tap_retry.policy'), 'failed', 'override: attempt 3 of 3 fails for good');

-- A queue policy with only max_attempts keeps belay's default backoff.
SELECT belay.create_queue('tap_retry.policy_ma', '{"max_attempts": 3}');
SELECT task_id AS t_ma FROM belay.spawn('tap_retry.policy_ma', 'x', '{}') \gset
SELECT is(pg_temp.fail(pg_temp.claim1('tap_retry.policy_ma'), '{}'), 'pending', 'max_attempts-only policy: fails to pending');
SELECT is(pg_temp.backoff(:'t_ma'), interval '1 second', 'max_attempts-only policy: default 1 s backoff');
SELECT is(pg_temp.cycle(:'t_ma', 'tap_retry.policy_ma'), 'pending', 'max_attempts-only policy: attempt 2 fails to pending');
SELECT is(pg_temp.backoff(:'t_ma'), interval '2 seconds', 'max_attempts-only policy: default 2 s backoff');
SELECT is(pg_temp.cycle(:'t_ma', 'tap_retry.policy_ma'), 'failed', 'max_attempts-only policy: attempt 3 of 3 is final');

-------------------------------------------------------------------------------------------
-- Bad calls are refused and change nothing.
SELECT belay.create_queue('tap_retry.bad');
SELECT task_id AS t_bad FROM belay.spawn('tap_retry.bad', 'x', '{}') \gset
SELECT run_id AS r_bad FROM belay.claim('tap_retry.bad', 'tap-worker', 1, 60) \gset
SELECT throws_ok(format('SELECT belay.fail(%L, NULL)', :'r_bad'), '22004', NULL, 'fail with a NULL error is refused');
SELECT throws_ok(format('SELECT belay.fail(%L, %L, NULL, NULL)', :'r_bad', '{}'), '22004', NULL,
                 'fail with a NULL final is refused');
SELECT throws_ok(format('SELECT belay.fail(%L, %L, %L)', :'r_bad', '{}', 'infinity'), '22023', NULL,
                 'fail with an infinite retry_at is refused');
SELECT is((SELECT (state, attempt, error IS NULL)::text FROM belay.task(:'t_bad')), '(running,1,t)',
          'the refused fails left the task running on attempt 1 without an error');
SELECT is((SELECT count(*)::int FROM belay.runs WHERE task_id = :'t_bad'), 0, 'the refused fails recorded no run');
SELECT throws_ok($$SELECT belay.spawn('tap_retry.bad', 'x', '{}', '{"retry": {"kind": "linear"}}')$$, '22023', NULL,
                 'an unknown retry kind is refused');
SELECT throws_ok($$SELECT belay.spawn('tap_retry.bad', 'x', '{}', '{"retry": {"factor": 0.5}}')$$, '22023', NULL,
                 'a retry factor below 1 is refused');
SELECT throws_ok($$SELECT belay.spawn('tap_retry.bad', 'x', '{}', '{"max_attempts": 0}')$$, '22023', NULL,
                 'max_attempts 0 is refused');
SELECT throws_ok($$SELECT belay.create_queue('tap_retry.bad', '{"retry": {"base_seconds": -1}}')$$, '22023', NULL,
                 'a negative base_seconds in a queue policy is refused');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_retry.bad'), 1, 'the refused spawns created no task');

-------------------------------------------------------------------------------------------
-- fail() returns the task's new state: 'pending' (retry scheduled, or due at once) or
-- 'failed'. Kept last: if the returned text is broken, reading it can crash the backend.
SELECT belay.create_queue('tap_retry.ret');
SELECT count(*) AS n_ret FROM belay.spawn_many('tap_retry.ret', 'x', '[{}, {}, {}]', '{"max_attempts": 2}') \gset
SELECT run_id AS ret1 FROM belay.claim('tap_retry.ret', 'tap-worker', 1, 60) \gset
SELECT run_id AS ret2 FROM belay.claim('tap_retry.ret', 'tap-worker', 1, 60) \gset
SELECT run_id AS ret3 FROM belay.claim('tap_retry.ret', 'tap-worker', 1, 60) \gset
SELECT is(belay.fail(:'ret1', '{}'), 'pending', 'fail() returns pending when a retry is scheduled');
SELECT is(belay.fail(:'ret2', '{}', clock_timestamp() - interval '1 s'), 'pending', 'fail() returns pending for a retry due now');
SELECT is(belay.fail(:'ret3', '{}', NULL, true), 'failed', 'fail() returns failed when no retry follows');

SELECT * FROM finish();
ROLLBACK;
