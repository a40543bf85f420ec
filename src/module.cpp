// The extension module: magic block, load-time setup and the uuidv7() SQL function.
#include "belay/guard.hpp"
#include "belay/uuid7.hpp"
#include "belay/worker.hpp"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
void _PG_init(void) {
	if (IsBinaryUpgrade)
		return;
	belay::InitBackgroundWorker();
}
}

namespace belay {
namespace {

Datum Uuidv7(FunctionCallInfo) {
	UuidBytes id = NewUuid7();
	Datum out = 0;
	PgGuard([&] {
		pg_uuid_t *uuid = static_cast<pg_uuid_t *>(palloc(sizeof(pg_uuid_t)));
		memcpy(uuid->data, id.data(), UUID_LEN);
		out = UUIDPGetDatum(uuid);
	});
	return out;
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_uuidv7, belay::Uuidv7)
