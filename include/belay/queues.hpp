// Queue lookups shared by the functions that take a queue name.
#pragma once

#include <string>

namespace belay {

// Raises BL003 unless the queue exists. Needs SPI connected.
void RequireQueue(const std::string &queue);

} // namespace belay
