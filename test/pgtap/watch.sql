-- belay.watch: marks a task so that its end sends NOTIFY belay_finished, '<task_id>';
-- returns the task's state now. (Delivery itself is tested by the client's wait_for.)
BEGIN;
SELECT plan(9);

SELECT belay.create_queue('tap_watch');
SELECT task_id AS later FROM belay.spawn('tap_watch', 'later', '{}', '{"delay_seconds": 3600}') \gset
SELECT task_id AS now_ FROM belay.spawn('tap_watch', 'now') \gset

SELECT is(belay.watch(:'later'), 'pending', 'a delayed task is reported pending, not scheduled');
SELECT is((SELECT watched FROM belay.tasks WHERE task_id = :'later'), true, 'the task is marked watched');
SELECT is((SELECT watched FROM belay.tasks WHERE task_id = :'now_'), false, 'other tasks are not');

SELECT is(belay.watch(:'now_'), 'pending', 'watch returns the current state');
SELECT run_id AS r FROM belay.claim('tap_watch', 'w') \gset
SELECT is(belay.watch(:'now_'), 'running', 'watching again is harmless and returns the new state');
SELECT belay.complete(:'r', '{"ok": true}');
SELECT is((SELECT state FROM belay.task(:'now_')), 'completed', 'a watched task completes as any other');
SELECT is(belay.watch(:'now_'), 'completed', 'a finished task can be watched: the caller sees it has ended');

SELECT throws_ok($$SELECT belay.watch(NULL)$$, '22004', 'task_id must not be null', 'NULL is refused');
SELECT throws_ok($$SELECT belay.watch('00000000-0000-7000-8000-000000000000')$$, '22023', NULL,
                 'an unknown task is refused');

SELECT * FROM finish();
ROLLBACK;
