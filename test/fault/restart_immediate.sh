#!/usr/bin/env bash
# restart_immediate: tasks in every non-terminal state survive a crash of the whole server
# (pg_ctl stop -m immediate) and are driven to the right end state afterwards.
#
#   bash test/fault/restart_immediate.sh CLUSTER_DIR
#
# Before the crash, in one queue:
#   done            completed (with a checkpoint): must never be claimed again
#   running         claimed with a 3 s lease, a checkpoint recorded, then abandoned
#   sleeper         a checkpoint, then sleep('nap', 3 s)
#   awaiter         await_event('ev', 'go') without timeout (emitted only after the crash)
#   awaiter_timeout await_event('ev', 'never', 3 s) (never emitted: must time out)
#   awaiter_emitted await_event('ev', 'early') and 'early' emitted before the crash
#   parent          spawn_child('kid') + join('join') on the child: waiting
#   child           that child, pending
#   plain           pending
#   delayed         delay_seconds 3
# Then the server is crashed and started again, and a small driver claims and runs what
# becomes claimable the way a real worker would: replaying sleep/await_event/spawn_child/
# join with the same step names, emitting 'go' after its first pass. Checks: every task,
# checkpoint and run committed before the crash is there after it; each task is claimed by
# the driver exactly once and ends completed ('done' is never claimed again); the replays
# give the right answers (sleep over, payloads, the timed-out await settled as timed out,
# the same child, the child's result); belay.runs holds the lease-expired run of the
# abandoned claim and exactly one completed run per task.
. "$(dirname "$0")/lib.bash" "$@"

Q=fault_restart_immediate
OPTS='{"max_attempts": 5, "retry": {"kind": "fixed", "base_seconds": 0}}'
DRIVE_BOUND=30

wait_worker 20 >/dev/null
fresh_queue "$Q"
declare -A ID   # task_name -> task_id

expect() { # expect DESCRIPTION SQL: the SQL returns "true|..." when all is well, else "false|what it found"
  local got
  got=$(q "$2")
  [[ ${got%%|*} == true ]] || die "$1: got ${got#*|}"
  ok "$1"
}

# ---- build the states
ID["done"]=$(spawn "$Q" "done" '{"n": 1}' "$OPTS")
run=$(claim_one "$Q" setup 30 "${ID[done]}")
q "SELECT belay.set_checkpoint('$run', 's1', '{\"v\": \"done\"}')" >/dev/null
q "SELECT belay.complete('$run', '{\"r\": \"done\"}')" >/dev/null

ID[awaiter]=$(spawn "$Q" awaiter '{"n": 4}' "$OPTS")
run=$(claim_one "$Q" setup 30 "${ID[awaiter]}")
[[ $(q "SELECT suspended FROM belay.await_event('$run', 'ev', 'go')") == t ]] || die "await 'go' did not suspend"

ID[parent]=$(spawn "$Q" parent '{"n": 7}' "$OPTS")
run=$(claim_one "$Q" setup 30 "${ID[parent]}")
ID[child]=$(q "SELECT belay.spawn_child('$run', 'kid', 'child', '{\"n\": 8}', '$OPTS')")
[[ $(q "SELECT suspended FROM belay.join('$run', 'join', '${ID[child]}')") == t ]] || die "join did not suspend"

# (priority: the child above is pending too, and claim takes the highest priority first)
ID[awaiter_emitted]=$(spawn "$Q" awaiter_emitted '{"n": 6}' '{"max_attempts": 5, "priority": 10}')
run=$(claim_one "$Q" setup 30 "${ID[awaiter_emitted]}")
[[ $(q "SELECT suspended FROM belay.await_event('$run', 'ev', 'early')") == t ]] || die "await 'early' did not suspend"
[[ $(q "SELECT belay.emit_event('$Q', 'early', '{\"p\": \"early\"}')") == 1 ]] || die "emit 'early' did not wake 1 task"

ID[plain]=$(spawn "$Q" plain '{"n": 9}' "$OPTS")

# The four tasks with a timer (3 s), last and in one session, so that however slow the box
# the timers have not run out before the crash. Priority 50: each claim takes the task
# just spawned, not the pending ones above.
P50='{"max_attempts": 5, "retry": {"kind": "fixed", "base_seconds": 0}, "priority": 50}'
psql -X -q -A -t -v ON_ERROR_STOP=1 -v q="$Q" -v opts="$P50" >"$TMP/timed.out" 2>&1 <<'SQL' || die "setting up the timed tasks failed: $(cat "$TMP/timed.out")"
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT task_id AS running FROM belay.spawn(:'q', 'running', '{"n": 2}', :'opts') \gset
SELECT run_id AS r_running, task_id AS c_running FROM belay.claim(:'q', 'crashed-worker', 1, 3) \gset
SELECT belay.set_checkpoint(:'r_running', 's1', '{"v": "running"}') \gset
SELECT task_id AS sleeper FROM belay.spawn(:'q', 'sleeper', '{"n": 3}', :'opts') \gset
SELECT run_id AS r_sleeper, task_id AS c_sleeper FROM belay.claim(:'q', 'setup', 1, 30) \gset
SELECT belay.set_checkpoint(:'r_sleeper', 's1', '{"v": "sleeper"}') \gset
SELECT belay.sleep(:'r_sleeper', 'nap', 3.0) AS slept \gset
SELECT task_id AS awaiter_timeout FROM belay.spawn(:'q', 'awaiter_timeout', '{"n": 5}', :'opts') \gset
SELECT run_id AS r_at, task_id AS c_at FROM belay.claim(:'q', 'setup', 1, 30) \gset
SELECT suspended AS at_suspended FROM belay.await_event(:'r_at', 'ev', 'never', 3.0) \gset
SELECT task_id AS delayed FROM belay.spawn(:'q', 'delayed', '{"n": 10}', '{"delay_seconds": 3, "max_attempts": 5}') \gset
\echo t0 :t0
\echo running :running :c_running :r_running
\echo sleeper :sleeper :c_sleeper :slept
\echo awaiter_timeout :awaiter_timeout :c_at :at_suspended
\echo delayed :delayed
SQL
read -r _ t0 < <(grep '^t0 ' "$TMP/timed.out")
read -r _ "ID[running]" claimed abandoned_run < <(grep '^running ' "$TMP/timed.out")
[[ $claimed == "${ID[running]}" ]] || die "the claim of 'running' took task $claimed"
read -r _ "ID[sleeper]" claimed slept < <(grep '^sleeper ' "$TMP/timed.out")
[[ $claimed == "${ID[sleeper]}" && $slept == t ]] || die "sleeper: claimed $claimed, sleep returned '$slept'"
read -r _ "ID[awaiter_timeout]" claimed suspended < <(grep '^awaiter_timeout ' "$TMP/timed.out")
[[ $claimed == "${ID[awaiter_timeout]}" && $suspended == t ]] || die "awaiter_timeout: claimed $claimed, suspended '$suspended'"
read -r _ "ID[delayed]" < <(grep '^delayed ' "$TMP/timed.out")

states=$(q "SELECT string_agg(task_name || '=' || state, ' ' ORDER BY (params->>'n')::int) FROM belay.tasks WHERE queue = '$Q'")
elapsed=$(fsub "$(db_now)" "$t0")
want="done=completed running=running sleeper=sleeping awaiter=waiting awaiter_timeout=waiting awaiter_emitted=pending parent=waiting child=pending plain=pending delayed=scheduled"
if fcmp "$elapsed" "<" 2.5; then
  [[ $states == "$want" ]] || die "states before the crash: $states; expected $want"
  ok "before the crash: $states"
else
  log "NOTE: the box is slow ($elapsed s since the timed tasks were made): their states are not checked before the crash"
  ok "before the crash: $states"
fi

snapshot() { # what is committed: tasks, checkpoints, runs, events of the queue, one line each
  q "SELECT 'task|' || task_id || '|' || task_name || '|' || params::text FROM belay.tasks WHERE queue = '$Q'
     UNION ALL
     SELECT 'step|' || c.task_id || '|' || c.step || '|' || c.value::text FROM belay.checkpoints c JOIN belay.tasks t USING (task_id) WHERE t.queue = '$Q'
     UNION ALL
     SELECT 'run|' || r.run_id || '|' || r.task_id || '|' || r.outcome || '/' || r.worker FROM belay.runs r JOIN belay.tasks t USING (task_id) WHERE t.queue = '$Q'
     UNION ALL
     SELECT 'event|' || e.event || '|' || e.payload::text FROM belay.events e WHERE e.queue = '$Q'
     ORDER BY 1"
}
snapshot >"$TMP/before"
log "committed before the crash: $(cut -d'|' -f1 "$TMP/before" | sort | uniq -c | awk '{printf "%s %s rows, ", $1, $2}')"

# ---- crash the server and start it again
t_crash=$SECONDS
"$ROOT/scripts/cluster.sh" restart "$CLUSTER_DIR" immediate || die "scripts/cluster.sh restart $CLUSTER_DIR immediate failed"
wait_server 60
log "server back $((SECONDS - t_crash)) s after the immediate stop"
grep -q "database system was not properly shut down; automatic recovery in progress" \
  <(tail -c +$((LOG_START + 1)) "$CLUSTER_DIR/server.log") ||
  die "the server log shows no crash recovery: the stop was not immediate?"
ok "the server went through crash recovery"
wait_worker 30 >/dev/null

# ---- nothing committed is lost
snapshot >"$TMP/after"
missing=$(comm -23 <(sort "$TMP/before") <(sort "$TMP/after"))
[[ -z $missing ]] || die "rows committed before the crash are missing or changed after it:
$missing"
ok "every task, checkpoint, run and event committed before the crash is there after it ($(wc -l <"$TMP/before") rows)"
got=$(q "SELECT state FROM belay.tasks WHERE task_id = '${ID[done]}'")
[[ $got == completed ]] || die "the completed task is '$got' after the crash"

# ---- the driver
declare -A CLAIMS  # task_name -> times claimed by the driver
emitted=no
t_drive=$SECONDS
while :; do
  rows=$(q "SELECT run_id || '|' || task_id || '|' || task_name || '|' || attempt || '|' || checkpoints::text
            FROM belay.claim('$Q', 'driver', 10, 30)")
  while IFS='|' read -r run task name attempt steps; do
    [[ -n $run ]] || continue
    CLAIMS[$name]=$((${CLAIMS[$name]:-0} + 1))
    [[ ${ID[$name]} == "$task" ]] || die "claim returned task $task as '$name', expected ${ID[$name]}"
    ((CLAIMS[$name] == 1)) || die "task '$name' ($task) was claimed a second time (attempt $attempt)"
    case $name in
      done)
        die "the task completed before the crash was claimed again (run $run, attempt $attempt)" ;;
      plain | delayed | child)
        : ;;
      running)
        expect "the abandoned task after its lease expired" \
          "SELECT ('$steps'::jsonb = '{\"s1\": {\"v\": \"running\"}}' AND $attempt = 2)::text || '|checkpoints $steps, attempt $attempt'" ;;
      sleeper)
        [[ $steps == *'"s1": {"v": "sleeper"}'* ]] || die "sleeper: checkpoints $steps lack s1"
        expect "sleeper: replayed sleep('nap') must be over" \
          "SELECT (NOT belay.sleep('$run', 'nap', 3.0))::text || '|it suspended again'" ;;
      awaiter)
        [[ $emitted == yes ]] || die "the task awaiting 'go' was claimable before 'go' was emitted"
        expect "awaiter: replayed await_event('ev', 'go')" \
          "SELECT (NOT suspended AND payload = '{\"p\": \"go\"}' AND NOT timed_out)::text || '|' || suspended || ' ' || coalesce(payload::text, 'null') || ' ' || timed_out
           FROM belay.await_event('$run', 'ev', 'go')" ;;
      awaiter_timeout)
        expect "awaiter_timeout: replayed await_event('ev', 'never', 3 s) must be settled as timed out" \
          "SELECT (NOT suspended AND payload IS NULL AND timed_out)::text || '|' || suspended || ' ' || coalesce(payload::text, 'null') || ' ' || timed_out
           FROM belay.await_event('$run', 'ev', 'never', 3.0)" ;;
      awaiter_emitted)
        expect "awaiter_emitted: replayed await_event('ev', 'early')" \
          "SELECT (NOT suspended AND payload = '{\"p\": \"early\"}' AND NOT timed_out)::text || '|' || suspended || ' ' || coalesce(payload::text, 'null') || ' ' || timed_out
           FROM belay.await_event('$run', 'ev', 'early')" ;;
      parent)
        expect "parent: replayed spawn_child('kid') must return the same child" \
          "SELECT (belay.spawn_child('$run', 'kid', 'child', '{\"n\": 8}', '$OPTS') = '${ID[child]}')::text || '|another child'"
        expect "parent: replayed join('join') after the child completed" \
          "SELECT (NOT suspended AND state = 'completed' AND result = '{\"r\": \"child\"}')::text || '|' || suspended || ' ' || coalesce(state, 'null') || ' ' || coalesce(result::text, 'null')
           FROM belay.join('$run', 'join', '${ID[child]}')" ;;
      *)
        die "claim returned an unknown task '$name' ($task)" ;;
    esac
    q "SELECT belay.complete('$run', '{\"r\": \"$name\"}')" >/dev/null
  done <<<"$rows"

  if [[ $emitted == no ]]; then
    woke=$(q "SELECT belay.emit_event('$Q', 'go', '{\"p\": \"go\"}')")
    [[ $woke == 1 ]] || die "emit 'go' after the crash woke $woke tasks, expected 1"
    emitted=yes
  fi
  left=$(q "SELECT count(*) FROM belay.tasks WHERE queue = '$Q' AND state <> 'completed'")
  ((left == 0)) && break
  if ((SECONDS - t_drive > DRIVE_BOUND)); then
    q "SELECT task_name, state, attempt, to_char(available_at, 'HH24:MI:SS.MS') FROM belay.tasks WHERE queue = '$Q' ORDER BY 1" >&2
    die "$left tasks not completed $DRIVE_BOUND s after the restart"
  fi
  [[ -n $rows ]] || sleep 0.1
done
ok "the driver completed every task in $((SECONDS - t_drive)) s, each claimed exactly once, replays consistent"

# ---- end state
more=$(q "SELECT count(*) FROM belay.claim('$Q', 'driver', 100, 30)")
[[ $more -eq 0 ]] || die "$more tasks claimable after all were completed"
expect "one completed run per task, the stored result matches" \
  "SELECT (count(*) = 10 AND bool_and(completed = 1 AND result = jsonb_build_object('r', task_name)))::text || '|' ||
          string_agg(task_name || ':' || completed || ':' || coalesce(result::text, 'null'), ' ')
   FROM (SELECT t.task_name, t.result, (SELECT count(*) FROM belay.runs r WHERE r.task_id = t.task_id AND r.outcome = 'completed') AS completed
         FROM belay.tasks t WHERE t.queue = '$Q') s"
expect "belay.runs: the abandoned claim ended as lease_expired" \
  "SELECT (count(*) = 1 AND bool_and(r.outcome = 'lease_expired' AND r.worker = 'crashed-worker' AND r.error->>'kind' = 'lease_expired'
                                     AND r.attempt = 1))::text || '|' || coalesce(string_agg(r.outcome || '/' || r.worker || '/' || r.attempt, ' '), 'no run')
   FROM belay.runs r WHERE r.run_id = '$abandoned_run'"
expect "runs of each task, in order" \
  "SELECT (string_agg(name || '=' || outcomes, ' ' ORDER BY n) =
           'done=completed running=lease_expired,completed sleeper=suspended,completed awaiter=suspended,completed '
           'awaiter_timeout=suspended,completed awaiter_emitted=suspended,completed parent=suspended,completed '
           'child=completed plain=completed delayed=completed')::text || '|' || string_agg(name || '=' || outcomes, ' ' ORDER BY n)
   FROM (SELECT (t.params->>'n')::int AS n, t.task_name AS name,
                (SELECT string_agg(r.outcome, ',' ORDER BY r.started_at, r.ended_at) FROM belay.runs r WHERE r.task_id = t.task_id) AS outcomes
         FROM belay.tasks t WHERE t.queue = '$Q') s"
expect "the timed-out await stays settled as timed out" \
  "SELECT (value = '{\"payload\": null, \"timed_out\": true}')::text || '|' || value::text FROM belay.checkpoints
   WHERE task_id = '${ID[awaiter_timeout]}' AND step = 'ev'"
expect "no waits left" "SELECT (count(*) = 0)::text || '|' || count(*) || ' waits' FROM belay.waits w JOIN belay.tasks t USING (task_id) WHERE t.queue = '$Q'"
ok "end state: 10 tasks completed once each; lease_expired run of the abandoned claim; timed-out await kept"

q "SELECT belay.drop_queue('$Q')" >/dev/null
finish
