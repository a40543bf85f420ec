// Step values that a timed-out wait records, as JSON text. The worker's tick (in SQL) and
// a wait with timeout 0 (in C++) write the same values, and the client reads them back.
#pragma once

// await_event: no payload.
#define BELAY_TIMED_OUT_EVENT_STEP "{\"payload\": null, \"timed_out\": true}"
// join: no child state, and an error that says so.
#define BELAY_TIMED_OUT_JOIN_STEP \
	"{\"state\": null, \"result\": null, \"error\": {\"kind\": \"timed_out\"}, \"timed_out\": true}"
