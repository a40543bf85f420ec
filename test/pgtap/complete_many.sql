-- belay.complete_many: many live runs in one call; stale runs are reported, not raised.
BEGIN;
SELECT plan(27);

SELECT belay.create_queue('tap_cm');
SELECT count(*) FROM belay.spawn_many('tap_cm', 'job', '[{"n":1},{"n":2},{"n":3},{"n":4}]');
CREATE TEMP TABLE claimed AS SELECT run_id, params->>'n' AS n FROM belay.claim('tap_cm', 'w', 4);
SELECT is((SELECT count(*)::int FROM claimed), 4, 'four runs claimed');

-- Run 1 is completed alone first, so it is stale in the batch.
SELECT belay.complete(run_id) FROM claimed WHERE n = '1';
CREATE TEMP TABLE outcome AS
	SELECT * FROM belay.complete_many((SELECT array_agg(run_id ORDER BY n) FROM claimed),
	                                  (SELECT array_agg(jsonb_build_object('n', n) ORDER BY n) FROM claimed));
SELECT is((SELECT count(*)::int FROM outcome), 4, 'one row per run');
SELECT is((SELECT completed FROM outcome o JOIN claimed c USING (run_id) WHERE c.n = '1'), false,
          'the stale run is reported as not completed');
SELECT is((SELECT count(*)::int FROM outcome WHERE completed), 3, 'the three live runs completed');
SELECT is((SELECT count(*)::int FROM belay.tasks WHERE queue = 'tap_cm' AND state = 'completed'), 4,
          'all four tasks are completed');
SELECT is((SELECT result FROM belay.tasks WHERE queue = 'tap_cm' AND params->>'n' = '3'), '{"n": "3"}'::jsonb,
          'each task got its own result');
SELECT is((SELECT result FROM belay.tasks WHERE queue = 'tap_cm' AND params->>'n' = '1'), NULL::jsonb,
          'the stale run did not overwrite the first completion');
SELECT is((SELECT count(*)::int FROM belay.runs r JOIN belay.tasks t USING (task_id)
           WHERE t.queue = 'tap_cm' AND r.outcome = 'completed'), 4, 'one completed run per task, no more');

-- Without results, and again: everything is stale now.
SELECT is((SELECT count(*)::int FROM belay.complete_many((SELECT array_agg(run_id) FROM claimed)) WHERE completed), 0,
          'a second batch of the same runs completes nothing');
SELECT is((SELECT count(*)::int FROM belay.complete_many(ARRAY[]::uuid[])), 0, 'an empty batch returns nothing');

-- The report follows the batch: its order, a run named twice, a run that never was.
SELECT count(*) FROM belay.spawn_many('tap_cm', 'job', '[{"n":5},{"n":6}]');
CREATE TEMP TABLE pair AS SELECT run_id, params->>'n' AS n FROM belay.claim('tap_cm', 'w', 2);
SELECT belay.uuidv7() AS unknown_run \gset
CREATE TEMP TABLE batch AS
	SELECT ARRAY[(SELECT run_id FROM pair WHERE n = '6'), :'unknown_run'::uuid,
	             (SELECT run_id FROM pair WHERE n = '5'), (SELECT run_id FROM pair WHERE n = '6')] AS run_ids;
CREATE TEMP TABLE report AS
	SELECT r.run_id, r.completed, row_number() OVER () AS position
	  FROM belay.complete_many((SELECT run_ids FROM batch)) r;
SELECT is((SELECT array_agg(run_id ORDER BY position) FROM report), (SELECT run_ids FROM batch),
          'one row per element of the batch, in its order');
SELECT is((SELECT array_agg(completed ORDER BY position) FROM report), ARRAY[true, false, true, true],
          'a run named twice is reported completed both times; an unknown run is not completed');
SELECT is((SELECT count(*)::int FROM belay.tasks t JOIN pair p USING (run_id) WHERE t.state = 'completed'), 2,
          'both tasks are completed');
SELECT is((SELECT count(*)::int FROM belay.runs r JOIN pair p USING (run_id)), 2,
          'each by one run, once');
SELECT is((SELECT count(*)::int FROM belay.complete_many((SELECT array_agg(run_id) FROM pair)) WHERE NOT completed), 2,
          'named again in a later batch, both are reported not completed');

-- A child in a batch wakes the parent that joins it.
SELECT task_id AS parent FROM belay.spawn('tap_cm', 'parent') \gset
SELECT run_id AS parent_run FROM belay.claim('tap_cm', 'w', 1) \gset
SELECT belay.spawn_child(:'parent_run', 'kid', 'child', '{}') AS child \gset
SELECT is((SELECT suspended FROM belay.join(:'parent_run', 'joined', :'child')), true, 'the parent waits for its child');
SELECT run_id AS child_run FROM belay.claim('tap_cm', 'w', 1) \gset
SELECT is((SELECT completed FROM belay.complete_many(ARRAY[:'child_run'::uuid], ARRAY['{"ok": true}'::jsonb])), true,
          'the child completes in a batch');
SELECT is((SELECT state FROM belay.task(:'parent')), 'pending', 'the joining parent is woken');
SELECT is((SELECT value->>'state' FROM belay.checkpoints(:'parent') WHERE step = 'joined'), 'completed',
          'its join step holds the child''s outcome');

-- One batch of everything: two roots (the one-statement path), a child whose parent joins
-- it, and a stale run (the locking path). Each run is reported once, with its own answer.
SELECT belay.create_queue('tap_cm2');
SELECT task_id AS parent2 FROM belay.spawn('tap_cm2', 'parent') \gset
SELECT run_id AS parent2_run FROM belay.claim('tap_cm2', 'w', 1) \gset
SELECT belay.spawn_child(:'parent2_run', 'kid', 'child', '{}') AS child2 \gset
SELECT belay.join(:'parent2_run', 'joined', :'child2') IS NOT NULL AS suspended \gset
SELECT count(*) FROM belay.spawn_many('tap_cm2', 'job', '[{"n":5},{"n":6}]');
CREATE TEMP TABLE mixed AS SELECT run_id, task_id FROM belay.claim('tap_cm2', 'w', 3);
CREATE TEMP TABLE mixed_outcome AS
	SELECT * FROM belay.complete_many((SELECT array_agg(run_id) FROM mixed) || :'child_run'::uuid,
	                                  (SELECT array_agg(jsonb_build_object('task', task_id)) FROM mixed) || '{}'::jsonb);
SELECT is((SELECT count(*)::int FROM mixed WHERE task_id = :'child2'), 1, 'setup: the child is in the batch');
SELECT is((SELECT count(*)::int FROM mixed_outcome), 4, 'mixed batch: one row per run');
SELECT is((SELECT count(DISTINCT run_id)::int FROM mixed_outcome), 4, 'mixed batch: no run reported twice');
SELECT is((SELECT array_agg(completed ORDER BY completed) FROM mixed_outcome o), ARRAY[false, true, true, true],
          'mixed batch: the three live runs completed, the stale one did not');
SELECT is((SELECT count(*)::int FROM mixed m JOIN belay.tasks t USING (task_id)
           WHERE t.state = 'completed' AND t.result = jsonb_build_object('task', m.task_id)), 3,
          'mixed batch: each task got its own result');
SELECT is((SELECT state FROM belay.task(:'parent2')), 'pending', 'mixed batch: the parent of the child is woken');

-- Bad calls change nothing.
SELECT throws_ok($$SELECT * FROM belay.complete_many(NULL)$$, '22004', NULL, 'run_ids NULL is refused');
SELECT throws_ok($$SELECT * FROM belay.complete_many(ARRAY[belay.uuidv7()], ARRAY['{}', '{}']::jsonb[])$$, '22023', NULL,
                 'results of another length are refused');

SELECT * FROM finish();
ROLLBACK;
