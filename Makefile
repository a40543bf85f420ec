# belay — PGXS build of the extension (C++17), plus the demo, test and bench targets.
#
# `make demo` and `make test` work on a fresh Debian 12 machine as root: they install
# what is missing first, so nothing below may need PGXS before that has happened.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

EXTENSION  = belay
MODULE_big = belay
OBJS       = $(patsubst %.cpp,%.o,$(sort $(wildcard src/*.cpp src/pg/*.cpp)))
DATA       = $(wildcard sql/belay--*.sql)

REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=.

PG_CPPFLAGS += -Iinclude -isystem $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)
# -MMD -MP: PGXS tracks no header dependencies; without them an edited header leaves
# stale objects behind.
PG_CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-register -Wno-missing-field-initializers -Werror -MMD -MP
SHLIB_LINK  += -lstdc++

EXTRA_CLEAN = results regression.diffs regression.out tmp_check build $(OBJS:.o=.d)

# belay is not a JIT-inlining candidate; skipping LLVM bitcode halves the build.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
# PGXS compiles LLVM bitcode without PG_CXXFLAGS; without this it would build as C++14.
COMPILE.cxx.bc += $(PG_CXXFLAGS)
override CXXFLAGS := $(filter-out -Wmissing-format-attribute,$(CXXFLAGS))

-include $(OBJS:.o=.d)
include client/client.mk
all: client
install: install-client
else
all:
	@echo "belay: PostgreSQL 15 server headers are missing; run 'make deps' (or 'make test')" >&2
	@exit 1
endif

.PHONY: deps demo demo-sql test bench

deps:
	scripts/install-deps.sh

demo: deps
	$(MAKE) all
	$(MAKE) install
	scripts/demo.sh

demo-sql: deps
	$(MAKE) all
	$(MAKE) install
	scripts/demo.sh sql

test: deps
	$(MAKE) all
	$(MAKE) install
	scripts/run-tests.sh

bench: deps
	$(MAKE) all
	$(MAKE) install
	scripts/bench.sh
