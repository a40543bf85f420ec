// The extension module: magic block, load-time setup and the uuidv7() SQL function.
#include "belay/guard.hpp"
#include "belay/args.hpp"
#include "belay/vacuum_worker.hpp"
#include "belay/worker.hpp"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
void _PG_init(void) {
	if (IsBinaryUpgrade)
		return;
	belay::InitVacuumWorker();
	belay::InitBackgroundWorker();
}
}

namespace belay {
namespace {

Datum Uuidv7(FunctionCallInfo) { return NewUuidDatum(); }

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_uuidv7, belay::Uuidv7)
