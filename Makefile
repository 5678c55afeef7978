# ngx_http_oauth2_module: make | run | test | bench | install | clean
#
#   make          build/ngx_http_oauth2_module.so and build/oauth2-admin
#   make run      install deps, build, start nginx + demo data on :8080
#   make run-cluster  the same over etcd: one member, two edges
#   make test     GoogleTest (t/unit) then prove (t/*.t)
#   make bench    wrk on loopback, prints the table in README.md
#   make deb      Debian packages into dist/ (scripts/build-deb)

SHELL      := /bin/bash
BUILD      := build
NGINX_SRC  ?= /usr/share/nginx/src
NGINX      ?= /usr/sbin/nginx
CXX        ?= g++
OPT        ?= -O2 -g
SANITIZE   ?=
CXXFLAGS_CORE := -std=c++17 -fPIC -fvisibility=hidden -Wall -Wextra -Werror \
                 $(OPT) $(SANITIZE) -Iinclude
LIBS       := -llmdb -ljansson -lcrypto -lcurl
# the store oauth2-admin opens without --store (src/admin/cli.hpp): empty,
# ./var/store; the Debian package's build gives /var/lib/nginx/oauth2
DEFAULT_STORE ?=
ADMIN_DEFS := $(if $(DEFAULT_STORE),-DOAUTH2_DEFAULT_STORE='"$(DEFAULT_STORE)"')
ADMIN_LIBS := -lmicrohttpd -pthread

CORE_SRCS  := $(wildcard src/core/*.cpp)
CORE_OBJS  := $(CORE_SRCS:src/core/%.cpp=$(BUILD)/core/%.o) \
              $(BUILD)/core/common_passwords.o
ADMIN_SRCS := $(wildcard src/admin/*.cpp)
ADMIN_OBJS := $(ADMIN_SRCS:src/admin/%.cpp=$(BUILD)/admin/%.o)
SHIM_SRCS  := $(wildcard src/ngx/*.c src/ngx/*.h src/ngx/*.map) include/oauth2.h
UNIT_SRCS  := $(wildcard t/unit/*.cpp)
UNIT_OBJS  := $(UNIT_SRCS:t/unit/%.cpp=$(BUILD)/unit/%.o)
# the builds of make run and make test use every core
NPROC      := $(shell nproc 2>/dev/null || echo 2)

MODULE     := $(BUILD)/ngx_http_oauth2_module.so
ADMIN      := $(BUILD)/oauth2-admin
CORE_LIB   := $(BUILD)/liboauth2core.a

.PHONY: all core run run-cluster test unit prove bench install clean deps check-style \
        asan asan-test

all: $(MODULE) $(ADMIN)

core: $(CORE_LIB)

$(BUILD)/core/%.o: src/core/%.cpp $(wildcard src/core/*.hpp) include/oauth2.h
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_CORE) -c $< -o $@

$(BUILD)/admin/%.o: src/admin/%.cpp $(wildcard src/core/*.hpp) $(wildcard src/admin/*.hpp)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_CORE) $(ADMIN_DEFS) -Isrc/core -c $< -o $@

# Python's Unicode tables (scripts/gen-unicode-tables), for the password policy
$(BUILD)/core/password_policy.o: src/core/unicode_tables.inc

# Django's list of common passwords (data/), compiled in as one string
$(BUILD)/core/common_passwords.cpp: data/common-passwords.txt
	@mkdir -p $(dir $@)
	{ echo '// generated from data/common-passwords.txt by the Makefile'; \
	  echo 'namespace oauth2 {'; \
	  echo 'extern const char kCommonPasswords[];'; \
	  echo 'const char kCommonPasswords[] ='; \
	  LC_ALL=C sed 's/[\\"]/\\&/g; s/.*/"&\\n"/' $<; \
	  echo ';'; echo '}  // namespace oauth2'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/core/common_passwords.o: $(BUILD)/core/common_passwords.cpp
	$(CXX) $(CXXFLAGS_CORE) -c $< -o $@

$(CORE_LIB): $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(ADMIN): $(ADMIN_OBJS) $(CORE_LIB)
	$(CXX) $(SANITIZE) -o $@ $(ADMIN_OBJS) $(CORE_LIB) $(LIBS) $(ADMIN_LIBS)

# nginx's configure, run on a copy of Debian's nginx-dev tree with the flags
# Debian's binary was built with, so the module loads into /usr/sbin/nginx.
$(BUILD)/nginx/Makefile: config config.make
	@mkdir -p $(BUILD)
	rm -rf $(BUILD)/nginx-src && cp -r $(NGINX_SRC) $(BUILD)/nginx-src
	cd $(BUILD)/nginx-src && . ./conf_flags && \
	    OAUTH2_BUILD=$(CURDIR)/$(BUILD) ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(SANITIZE)" --with-ld-opt="$(SANITIZE)" \
	        --add-dynamic-module=$(CURDIR) --builddir=$(CURDIR)/$(BUILD)/nginx \
	        > $(CURDIR)/$(BUILD)/configure.log 2>&1 || \
	    { tail -20 $(CURDIR)/$(BUILD)/configure.log; exit 1; }

$(MODULE): $(BUILD)/nginx/Makefile $(CORE_LIB) $(SHIM_SRCS)
	$(MAKE) -C $(BUILD)/nginx-src -f $(CURDIR)/$(BUILD)/nginx/Makefile modules
	cp $(BUILD)/nginx/ngx_http_oauth2_module.so $@.tmp && mv -f $@.tmp $@

deps:
	scripts/install-deps

run: deps
	$(MAKE) -j$(NPROC) all
	scripts/run-demo

run-cluster: deps
	$(MAKE) -j$(NPROC) all
	scripts/run-cluster

$(BUILD)/unit/%.o: t/unit/%.cpp $(wildcard t/unit/*.hpp) $(wildcard src/core/*.hpp) include/oauth2.h
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_CORE) -Wno-error -Isrc/core -c $< -o $@

# the admin daemon's counters (admin_counters_test.cpp) are linked in too
$(BUILD)/unit-tests: $(UNIT_OBJS) $(BUILD)/admin/counters.o $(CORE_LIB)
	$(CXX) $(SANITIZE) -o $@ $(UNIT_OBJS) $(BUILD)/admin/counters.o $(CORE_LIB) $(LIBS) \
	    -lgtest -lgtest_main -pthread

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

# four test files at a time: most of a file's time is nginx, etcd, the
# browser and the clients waiting on each other (about 175 s of CPU for
# the whole suite), so two cores run four well: 155 s, and the ASan run
# 321 s, every test passing.  --timer: each file's time in the log
PROVE_JOBS ?= 4

prove: all
	scripts/prove-logged $(BUILD)/prove.log --timer -j$(PROVE_JOBS) -r -I t/lib t/

check-style:
	scripts/check-style

# The three builds (the module and CLI, their ASan build, the unit tests)
# on every core at once; then the checks and suites one after another,
# each suite running its own files two at a time.
test: deps
	$(MAKE) -j$(NPROC) all asan $(BUILD)/unit-tests
	$(MAKE) -j1 check-style unit prove asan-test

bench: deps all
	scripts/bench

# The module and the CLI built with AddressSanitizer and UBSan, and the
# prove suite run against them (SECURITY.md R11, R81).  nginx itself is
# Debian's: scripts/nginx-asan preloads the sanitizer runtime into it.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined

asan:
	$(MAKE) BUILD=build-asan SANITIZE="$(ASAN_FLAGS)" OPT="-O1 -g" all

asan-test: asan
	TEST_NGINX_BINARY=$(CURDIR)/scripts/nginx-asan \
	TEST_OAUTH2_MODULE=$(CURDIR)/build-asan/ngx_http_oauth2_module.so \
	TEST_OAUTH2_ADMIN=$(CURDIR)/build-asan/oauth2-admin \
	ASAN_OPTIONS=detect_leaks=0 \
	    scripts/prove-logged build-asan/prove.log --timer -j$(PROVE_JOBS) -r -I t/lib t/

# Debian packages (debian/: debhelper and dh_nginx) built from a copy of
# the tree into dist/; scripts/test-deb installs and tries them.
.PHONY: deb
deb:
	scripts/build-deb dist

install: all
	install -D -m 0644 $(MODULE) $(DESTDIR)/usr/lib/nginx/modules/ngx_http_oauth2_module.so
	install -D -m 0755 $(ADMIN) $(DESTDIR)/usr/local/bin/oauth2-admin

clean:
	rm -rf build build-asan
