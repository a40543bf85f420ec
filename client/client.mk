# The C++ client (libpqxx 6.4 + nlohmann_json): library, belayctl, examples and tests.
# Included by the top-level Makefile; everything is built under build/.

CLIENT_CXX      ?= g++
CLIENT_CXXFLAGS  = -std=c++17 -O2 -g -Wall -Wextra -Werror -pthread -Iclient/include -MMD -MP
CLIENT_LIBS      = -lpqxx -lpq -pthread
CLIENT_PREFIX   ?= /usr/local

CLIENT_SOURCES  = $(sort $(wildcard client/src/*.cpp))
CLIENT_OBJECTS  = $(patsubst client/src/%.cpp,build/client/%.o,$(CLIENT_SOURCES))
CLIENT_LIBRARY  = build/libbelay_client.a
CLIENT_HEADERS  = $(shell find client/include -name '*.hpp')
BELAYCTL        = build/belayctl
EXAMPLES        = $(patsubst client/examples/%.cpp,build/examples/%,$(wildcard client/examples/*.cpp))

.PHONY: client install-client

client: $(CLIENT_LIBRARY) $(BELAYCTL) $(EXAMPLES)

build/client/%.o: client/src/%.cpp $(CLIENT_HEADERS) client/src/session.hpp
	@mkdir -p $(dir $@)
	$(CLIENT_CXX) $(CLIENT_CXXFLAGS) -Iclient/src -c $< -o $@

$(CLIENT_LIBRARY): $(CLIENT_OBJECTS)
	ar rcs $@ $^

$(BELAYCTL): $(wildcard client/belayctl/*.cpp) $(CLIENT_LIBRARY) $(CLIENT_HEADERS)
	@mkdir -p $(dir $@)
	$(CLIENT_CXX) $(CLIENT_CXXFLAGS) $(wildcard client/belayctl/*.cpp) $(CLIENT_LIBRARY) $(CLIENT_LIBS) -o $@

build/examples/%: client/examples/%.cpp $(CLIENT_LIBRARY) $(CLIENT_HEADERS)
	@mkdir -p $(dir $@)
	$(CLIENT_CXX) $(CLIENT_CXXFLAGS) $< $(CLIENT_LIBRARY) $(CLIENT_LIBS) -o $@

-include $(CLIENT_OBJECTS:.o=.d)

install-client: client
	install -d $(DESTDIR)$(CLIENT_PREFIX)/lib $(DESTDIR)$(CLIENT_PREFIX)/bin $(DESTDIR)$(CLIENT_PREFIX)/include
	install -m 644 $(CLIENT_LIBRARY) $(DESTDIR)$(CLIENT_PREFIX)/lib/
	install -m 755 $(BELAYCTL) $(DESTDIR)$(CLIENT_PREFIX)/bin/
	cp -r client/include/belay $(DESTDIR)$(CLIENT_PREFIX)/include/
