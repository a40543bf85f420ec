-- Tasks whose relatives are gone or dropped, deadlines at claim, and inputs out of range.
BEGIN;
SELECT plan(13);

SELECT belay.create_queue('tap_or_parents');
SELECT belay.create_queue('tap_or_children');

-- drop_queue of a child's queue wakes the parent (in another queue) that joins it.
SELECT task_id AS parent FROM belay.spawn('tap_or_parents', 'parent') \gset
SELECT run_id AS parent_run FROM belay.claim('tap_or_parents', 'w') \gset
SELECT belay.spawn_child(:'parent_run', 'kid', 'child', '{}', '{"queue": "tap_or_children"}') AS child \gset
SELECT is((SELECT suspended FROM belay.join(:'parent_run', 'joined', :'child')), true, 'the parent waits for its child');
SELECT belay.drop_queue('tap_or_children');
SELECT is((SELECT state FROM belay.task(:'parent')), 'pending', 'dropping the child''s queue wakes the parent');
SELECT is((SELECT value->>'state' FROM belay.checkpoints(:'parent') WHERE step = 'joined'), 'cancelled',
          'its join step says the child was cancelled');
SELECT is((SELECT count(*)::int FROM belay.waits WHERE task_id = :'parent'), 0, 'no wait is left behind');

-- drop_queue of a parent's queue cancels its children in other queues.
SELECT belay.create_queue('tap_or_children');
SELECT run_id AS parent_run FROM belay.claim('tap_or_parents', 'w') \gset
SELECT belay.spawn_child(:'parent_run', 'kid2', 'child', '{}', '{"queue": "tap_or_children"}') AS child2 \gset
SELECT belay.drop_queue('tap_or_parents');
SELECT is((SELECT state FROM belay.task(:'child2')), 'cancelled', 'dropping the parent''s queue cancels its child elsewhere');

-- A child whose parent has been cleaned up still has its expired lease reclaimed.
SELECT belay.create_queue('tap_or_parents');
SELECT task_id AS p3 FROM belay.spawn('tap_or_parents', 'parent') \gset
SELECT run_id AS p3_run FROM belay.claim('tap_or_parents', 'w') \gset
SELECT belay.spawn_child(:'p3_run', 'kid', 'child', '{}', '{"queue": "tap_or_children"}') AS child3 \gset
SELECT belay.complete(:'p3_run');
SELECT is(belay.cleanup('tap_or_parents', '0 seconds'), 1::bigint, 'the finished parent is cleaned up');
SELECT run_id AS c3_run FROM belay.claim('tap_or_children', 'w', 1, 0.05) \gset
SELECT pg_sleep(0.1);
SELECT is((SELECT reclaimed FROM belay.tick(clock_timestamp(), 1000)), 1, 'the orphaned child''s expired lease is reclaimed');
SELECT is((SELECT state FROM belay.task(:'child3')), 'pending', 'and the child is retried');

-- claim does not start a task whose cancellation deadline has passed.
SELECT task_id AS late FROM belay.spawn('tap_or_children', 'late', '{}', '{"cancellation": {"max_delay_seconds": 0.05}}') \gset
SELECT pg_sleep(0.1);
SELECT is((SELECT count(*)::int FROM belay.claim('tap_or_children', 'w', 10) c WHERE c.task_id = :'late'), 0,
          'a task past its max_delay_seconds is not claimed');

-- Values out of range are refused with the argument named.
SELECT throws_ok($$SELECT * FROM belay.claim('tap_or_children', 'w', 1, 1e400)$$, '22023',
                 'lease_seconds is out of range', 'an enormous lease_seconds is refused');
SELECT throws_ok($$SELECT belay.cleanup(NULL, '100000000 years')$$, '22023', 'older_than is out of range',
                 'an enormous older_than is refused');
SELECT throws_ok($$SELECT belay.spawn('tap_or_children', 'x', '{}', '{"delay_seconds": 1e400}')$$, '22023',
                 'options holds a number out of range', 'an enormous option number is refused');

-- A step recorded by set_checkpoint is not an event wait.
SELECT task_id AS t4 FROM belay.spawn('tap_or_children', 'mixed') \gset
SELECT run_id AS r4 FROM belay.claim('tap_or_children', 'w', 10) WHERE task_id = :'t4' \gset
SELECT belay.set_checkpoint(:'r4', 'shared', '{"timed_out": "yes", "payload": 1}');
SELECT throws_ok(format($$SELECT * FROM belay.await_event(%L, 'shared', 'ev')$$, :'r4'), '22023', NULL,
                 'await_event on a step of another kind is refused');

SELECT * FROM finish();
ROLLBACK;
