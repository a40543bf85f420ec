// The raising half of CppGuard, out of line so no C++ object is alive when it runs.
#include "belay/guard.hpp"

namespace belay::detail {

void RaiseCaught(int code, const char *message, const char *detail, const char *hint) {
	ereport(ERROR, (errcode(code), errmsg("%s", message), detail[0] ? errdetail("%s", detail) : 0,
	                hint[0] ? errhint("%s", hint) : 0));
	pg_unreachable();
}

void RaiseCaughtPg(ErrorData *data) {
	ReThrowError(data);
}

} // namespace belay::detail
