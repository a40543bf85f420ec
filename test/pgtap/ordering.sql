-- belay pgTAP: claim order and delays. Highest priority first, then oldest available_at
-- (ties in creation order); delayed tasks are not claimable before they are due; claim
-- returns up to qty tasks.
BEGIN;
SELECT plan(50);

-- One claim of one task; its task_name (NULL when nothing is claimable).
CREATE FUNCTION pg_temp.next(q text) RETURNS text LANGUAGE sql AS
$$ SELECT task_name FROM belay.claim(q, 'tap-worker', 1, 60) $$;
CREATE FUNCTION pg_temp.spawn(q text, name text, options jsonb DEFAULT '{}') RETURNS uuid LANGUAGE sql AS
$$ SELECT task_id FROM belay.spawn(q, name, '{}', options) $$;

-------------------------------------------------------------------------------------------
-- Delayed tasks first: they fall due during the one pg_sleep of this suite.
SELECT belay.create_queue('tap_ord.due');
SELECT pg_temp.spawn('tap_ord.due', 'due_first', '{"delay_seconds": 0.2}') AS t_due \gset
SELECT pg_temp.spawn('tap_ord.due', 'not_due_60s', '{"delay_seconds": 60}') AS t_nd \gset
SELECT pg_temp.spawn('tap_ord.due', 'not_due_30s', '{"delay_seconds": 30}') AS t_nd5 \gset
SELECT pg_temp.spawn('tap_ord.due', 'not_due_run_at', jsonb_build_object('run_at', clock_timestamp() + interval '1 hour')) AS t_ra \gset

-- Two due tasks whose due order differs from their priority order.
SELECT belay.create_queue('tap_ord.dueprio');
SELECT pg_temp.spawn('tap_ord.dueprio', 'lo', jsonb_build_object('run_at', clock_timestamp() + interval '0.1 s')) AS t_lo \gset
SELECT pg_temp.spawn('tap_ord.dueprio', 'hi', jsonb_build_object('run_at', clock_timestamp() + interval '0.2 s', 'priority', 10)) AS t_hi \gset
SELECT belay.create_queue('tap_ord.dueprio2');
SELECT pg_temp.spawn('tap_ord.dueprio2', 'lo1', jsonb_build_object('run_at', clock_timestamp() + interval '0.1 s')) AS t_lo1 \gset
SELECT pg_temp.spawn('tap_ord.dueprio2', 'lo2', jsonb_build_object('run_at', clock_timestamp() + interval '0.15 s')) AS t_lo2 \gset
SELECT pg_temp.spawn('tap_ord.dueprio2', 'hi', jsonb_build_object('run_at', clock_timestamp() + interval '0.2 s', 'priority', 5)) AS t_hi2 \gset
-- A pending low-priority task and a delayed high-priority one.
SELECT belay.create_queue('tap_ord.dueprio3');
SELECT pg_temp.spawn('tap_ord.dueprio3', 'pending_lo') AS t_plo \gset
SELECT pg_temp.spawn('tap_ord.dueprio3', 'delayed_hi', '{"delay_seconds": 0.2, "priority": 3}') AS t_dhi \gset

SELECT is((SELECT state FROM belay.task(:'t_due')), 'pending', 'a delayed task is reported as pending');
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_due'), 'scheduled', 'a delayed task is stored as scheduled');
SELECT is((SELECT available_at - created_at FROM belay.task(:'t_nd')), interval '60 s',
          'delay_seconds 60: available_at is created_at + 60 s');
SELECT is((SELECT available_at - created_at FROM belay.task(:'t_due')), interval '0.2 s',
          'delay_seconds 0.2: available_at is created_at + 0.2 s');
SELECT ok((SELECT available_at BETWEEN clock_timestamp() + interval '50 min' AND clock_timestamp() + interval '1 hour'
           FROM belay.task(:'t_ra')), 'run_at sets available_at');
SELECT belay.create_queue('tap_ord.notyet');
SELECT pg_temp.spawn('tap_ord.notyet', 'delayed', '{"delay_seconds": 30}') AS t_ny1 \gset
SELECT pg_temp.spawn('tap_ord.notyet', 'now') AS t_ny2 \gset
SELECT set_eq($$SELECT task_name FROM belay.claim('tap_ord.notyet', 'tap-worker', 5, 60)$$, ARRAY['now'],
              'claim skips a task that is not due yet and takes the pending one');
SELECT is((SELECT state FROM belay.task(:'t_ny1')), 'pending', 'the delayed task is left pending (scheduled)');

SELECT pg_sleep(0.6);

-- The background worker does not serve this database: claim itself promotes due tasks.
SELECT is(pg_temp.next('tap_ord.due'), 'due_first', 'a delayed task is claimable once due (clock, not now())');
SELECT pg_temp.spawn('tap_ord.due', 'fresh') AS t_fresh \gset
SELECT is(pg_temp.next('tap_ord.due'), 'fresh', 'a task spawned now is claimable at once');
SELECT is(pg_temp.next('tap_ord.due'), NULL, 'tasks delayed 30 s, 60 s and 1 hour are still not claimable');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_ord.due' AND state = 'scheduled'), 3,
          'the tasks not yet due stay scheduled');

SELECT is(pg_temp.next('tap_ord.dueprio'), 'hi',
          'of two due delayed tasks, the higher priority is claimed first even though it fell due later');
SELECT is(pg_temp.next('tap_ord.dueprio'), 'lo', 'then the lower priority one');
SELECT set_eq($$SELECT task_name FROM belay.claim('tap_ord.dueprio2', 'tap-worker', 2, 60)$$,
              ARRAY['hi', 'lo1'],
              'claim(qty 2) over three due delayed tasks takes the highest priority, then the oldest');
SELECT is(pg_temp.next('tap_ord.dueprio2'), 'lo2', 'the remaining due task comes last');
SELECT is(pg_temp.next('tap_ord.dueprio3'), 'delayed_hi', 'a due delayed task with higher priority beats an older pending one');
SELECT is(pg_temp.next('tap_ord.dueprio3'), 'pending_lo', 'then the pending one');

-------------------------------------------------------------------------------------------
-- A task due earlier goes before one spawned after it fell due, even though spawned earlier.
SELECT belay.create_queue('tap_ord.age');
SELECT pg_temp.spawn('tap_ord.age', 'now_a') AS t_a \gset
SELECT pg_temp.spawn('tap_ord.age', 'past_1h', jsonb_build_object('run_at', clock_timestamp() - interval '1 hour')) AS t_b \gset
SELECT pg_temp.spawn('tap_ord.age', 'past_2h', jsonb_build_object('run_at', clock_timestamp() - interval '2 hours')) AS t_c \gset
SELECT pg_temp.spawn('tap_ord.age', 'now_b') AS t_d \gset
SELECT pg_temp.spawn('tap_ord.age', 'now_hi', '{"priority": 1}') AS t_e \gset
SELECT is((SELECT state FROM belay.tasks WHERE task_id = :'t_b'), 'pending', 'a run_at in the past is pending at once');
SELECT is(pg_temp.next('tap_ord.age'), 'now_hi', 'a higher priority beats older tasks');
SELECT is(pg_temp.next('tap_ord.age'), 'past_2h', 'within a priority, the oldest available_at first');
SELECT is(pg_temp.next('tap_ord.age'), 'past_1h', '... then the next oldest');
SELECT is(pg_temp.next('tap_ord.age'), 'now_a', '... then tasks available now, in spawn order');
SELECT is(pg_temp.next('tap_ord.age'), 'now_b', '... the later spawn last');
SELECT is(pg_temp.next('tap_ord.age'), NULL, 'the queue is then empty');

-------------------------------------------------------------------------------------------
-- Priority.
SELECT belay.create_queue('tap_ord.prio');
SELECT pg_temp.spawn('tap_ord.prio', 'p0') AS x1 \gset
SELECT pg_temp.spawn('tap_ord.prio', 'p5', '{"priority": 5}') AS x2 \gset
SELECT pg_temp.spawn('tap_ord.prio', 'pm3', '{"priority": -3}') AS x3 \gset
SELECT pg_temp.spawn('tap_ord.prio', 'p10', '{"priority": 10}') AS x4 \gset
SELECT pg_temp.spawn('tap_ord.prio', 'p5b', '{"priority": 5}') AS x5 \gset
SELECT pg_temp.spawn('tap_ord.prio', 'pmax', '{"priority": 32767}') AS x6 \gset
SELECT pg_temp.spawn('tap_ord.prio', 'pmin', '{"priority": -32768}') AS x7 \gset
SELECT is(pg_temp.next('tap_ord.prio'), 'pmax', 'priority 32767 first');
SELECT is(pg_temp.next('tap_ord.prio'), 'p10', 'then priority 10');
SELECT is(pg_temp.next('tap_ord.prio'), 'p5', 'then the older of two priority 5 tasks');
SELECT is(pg_temp.next('tap_ord.prio'), 'p5b', 'then the younger priority 5 task');
SELECT is(pg_temp.next('tap_ord.prio'), 'p0', 'then priority 0 (the default)');
SELECT is(pg_temp.next('tap_ord.prio'), 'pm3', 'then priority -3');
SELECT is(pg_temp.next('tap_ord.prio'), 'pmin', 'priority -32768 last');
SELECT throws_ok($$SELECT belay.spawn('tap_ord.prio', 'x', '{}', '{"priority": 32768}')$$, '22023', NULL,
                 'a priority beyond smallint is refused');

-- A batch claim takes the top of the order.
SELECT belay.create_queue('tap_ord.prio_qty');
SELECT pg_temp.spawn('tap_ord.prio_qty', 'one', '{"priority": 1}') AS y1 \gset
SELECT pg_temp.spawn('tap_ord.prio_qty', 'three', '{"priority": 3}') AS y2 \gset
SELECT pg_temp.spawn('tap_ord.prio_qty', 'two', '{"priority": 2}') AS y3 \gset
SELECT pg_temp.spawn('tap_ord.prio_qty', 'zero', '{"priority": 0}') AS y4 \gset
SELECT set_eq($$SELECT task_name FROM belay.claim('tap_ord.prio_qty', 'tap-worker', 2, 60)$$, ARRAY['three', 'two'],
              'claim(qty 2) takes the two highest priorities');
SELECT set_eq($$SELECT task_name FROM belay.claim('tap_ord.prio_qty', 'tap-worker', 2, 60)$$, ARRAY['one', 'zero'],
              'the next claim(qty 2) takes the rest');

-------------------------------------------------------------------------------------------
-- Same available_at (one spawn_many): creation order.
SELECT belay.create_queue('tap_ord.fifo');
SELECT count(*) AS n_fifo FROM belay.spawn_many('tap_ord.fifo', 'batch', '[{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]') \gset
SELECT is((SELECT count(DISTINCT available_at)::int FROM belay.tasks WHERE queue = 'tap_ord.fifo'), 1,
          'a spawn_many batch shares one available_at');
SELECT is((SELECT params FROM belay.claim('tap_ord.fifo', 'tap-worker', 1, 60)), '{"n": 1}'::jsonb, 'batch element 1 first');
SELECT is((SELECT params FROM belay.claim('tap_ord.fifo', 'tap-worker', 1, 60)), '{"n": 2}'::jsonb, 'batch element 2 next');
SELECT is((SELECT params FROM belay.claim('tap_ord.fifo', 'tap-worker', 1, 60)), '{"n": 3}'::jsonb, 'batch element 3 next');
SELECT is((SELECT params FROM belay.claim('tap_ord.fifo', 'tap-worker', 1, 60)), '{"n": 4}'::jsonb, 'batch element 4 last');

-------------------------------------------------------------------------------------------
-- qty: up to qty tasks, each once; other queues untouched.
SELECT belay.create_queue('tap_ord.qty');
SELECT belay.create_queue('tap_ord.other');
SELECT count(*) AS n_qty FROM belay.spawn_many('tap_ord.qty', 'q', '[{}, {}, {}, {}, {}]') \gset
SELECT pg_temp.spawn('tap_ord.other', 'elsewhere') AS t_other \gset
SELECT is((SELECT count(*)::int FROM belay.claim('tap_ord.qty', 'tap-worker', 3, 60)), 3, 'claim(qty 3) of 5 returns 3');
SELECT is((SELECT count(*)::int FROM belay.claim('tap_ord.qty', 'tap-worker', 10, 60)), 2, 'claim(qty 10) returns the 2 left');
SELECT is((SELECT count(*)::int FROM belay.claim('tap_ord.qty', 'tap-worker', 5, 60)), 0, 'claim on a drained queue returns none');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_ord.qty' AND state = 'running'
             AND run_id IS NOT NULL AND worker = 'tap-worker'), 5, 'all 5 tasks are running, each under a run');
SELECT is((SELECT count(DISTINCT run_id)::int FROM belay.tasks WHERE queue = 'tap_ord.qty'), 5, 'each claim made its own run');
SELECT is((SELECT state FROM belay.task(:'t_other')), 'pending', 'claims on one queue leave other queues alone');

SELECT belay.create_queue('tap_ord.cols');
SELECT task_id AS t_cols FROM belay.spawn('tap_ord.cols', 'cols', '{"k": "v"}', '{"headers": {"h": 1}}') \gset
SELECT clock_timestamp() AS before_claim \gset
SELECT run_id AS r_cols, task_id AS ct, task_name AS cn, params AS cp, headers AS ch, attempt AS ca,
       lease_expires_at AS cl, checkpoints AS cc FROM belay.claim('tap_ord.cols', 'tap-worker', 1, 30) \gset
SELECT is(ROW(:'ct'::uuid, :'cn'::text, :'cp'::jsonb, :'ch'::jsonb, :'ca'::int, :'cc'::jsonb)::text,
          ROW(:'t_cols'::uuid, 'cols'::text, '{"k": "v"}'::jsonb, '{"h": 1}'::jsonb, 1, '{}'::jsonb)::text,
          'claim returns the task id, name, params, headers, attempt 1 and no checkpoints');
SELECT ok(:'cl'::timestamptz BETWEEN :'before_claim'::timestamptz + interval '30 s' AND clock_timestamp() + interval '30 s',
          'the lease expires lease_seconds from now');

SELECT throws_ok($$SELECT * FROM belay.claim('tap_ord.qty', 'tap-worker', 0, 60)$$, '22023', NULL, 'qty 0 is refused');
SELECT throws_ok($$SELECT * FROM belay.claim('tap_ord.qty', 'tap-worker', 1001, 60)$$, '22023', NULL, 'qty 1001 is refused');
SELECT throws_ok($$SELECT * FROM belay.claim('tap_ord.nope', 'tap-worker', 1, 60)$$, 'BL003', NULL,
                 'claim on an unknown queue raises BL003');

SELECT * FROM finish();
ROLLBACK;
