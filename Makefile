# SPDX-License-Identifier: GPL-2.0
#
# cowbuf: `make` builds module/cowbuf.ko against KDIR (default: the newest
# installed Debian linux-headers-*-amd64); `make check` is the test command.

KDIR ?= $(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
# The kernel DKMS builds for: the running one if its headers are installed,
# else the one of KDIR.
KRELEASE ?= $(shell if [ -e /lib/modules/$$(uname -r)/build ]; then uname -r; \
	else basename $(KDIR) | sed 's/^linux-headers-//'; fi)
VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all module clean deps lint check demo bench vms gauntlet lane-stock lane-debug \
	install uninstall modules_install dkms-install dkms-uninstall

all: module

module:
	@test -n "$(KDIR)" || { echo "no kernel headers: run 'make deps' or set KDIR"; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

clean:
	@test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf build

# The userspace side: cowbufctl, libcowbuf (static), the uapi header, man pages.
install:
	$(MAKE) -C tools OUT=$(CURDIR)/build/install LDFLAGS= \
		$(CURDIR)/build/install/cowbufctl $(CURDIR)/build/install/libcowbuf.a
	install -D -m 0755 build/install/cowbufctl $(DESTDIR)$(PREFIX)/bin/cowbufctl
	install -D -m 0644 build/install/libcowbuf.a $(DESTDIR)$(PREFIX)/lib/libcowbuf.a
	install -D -m 0644 tools/lib/libcowbuf.h $(DESTDIR)$(PREFIX)/include/libcowbuf.h
	install -D -m 0644 uapi/linux/cowbuf.h $(DESTDIR)$(PREFIX)/include/linux/cowbuf.h
	install -D -m 0644 tools/man/cowbufctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/cowbufctl.1
	install -D -m 0644 tools/man/libcowbuf.3 $(DESTDIR)$(PREFIX)/share/man/man3/libcowbuf.3

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/cowbufctl $(DESTDIR)$(PREFIX)/lib/libcowbuf.a \
		$(DESTDIR)$(PREFIX)/include/libcowbuf.h \
		$(DESTDIR)$(PREFIX)/include/linux/cowbuf.h \
		$(DESTDIR)$(PREFIX)/share/man/man1/cowbufctl.1 \
		$(DESTDIR)$(PREFIX)/share/man/man3/libcowbuf.3

# The module, into /lib/modules/<release>/updates (INSTALL_MOD_PATH honoured),
# unsigned: Debian's signing key is not ours.
modules_install: module
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=updates CONFIG_MODULE_SIG_ALL= \
		modules_install

# DKMS: sources to /usr/src/cowbuf-$(VERSION), built and installed for
# KRELEASE now and by DKMS for kernels installed later.
dkms-install:
	rm -rf $(DESTDIR)/usr/src/cowbuf-$(VERSION)
	mkdir -p $(DESTDIR)/usr/src/cowbuf-$(VERSION)
	cp -r Kbuild dkms.conf module uapi $(DESTDIR)/usr/src/cowbuf-$(VERSION)/
	dkms add -m cowbuf -v $(VERSION)
	dkms build -m cowbuf -v $(VERSION) -k $(KRELEASE)
	dkms install -m cowbuf -v $(VERSION) -k $(KRELEASE)

dkms-uninstall:
	-dkms remove -m cowbuf -v $(VERSION) --all
	rm -rf $(DESTDIR)/usr/src/cowbuf-$(VERSION)

# Install the Debian packages the build and the VM lanes need.
deps:
	tools/deps.sh

# sparse, checkpatch and kernel-doc: no VM, under a minute.
lint: deps
	tools/lint.sh

# Everything: deps, build, lint, the stock and the debug VM lanes.
check:
	tools/check.sh

# One lane's kselftests, for iterating (V=1 streams the guest console).
lane-stock lane-debug: deps
	tools/vm/run.sh $(@:lane-%=%) check

demo: deps
	tools/vm/run.sh stock demo

# The reliability and security gauntlet in the debug lane
# (tools/vm/actions/gauntlet.sh): GAUNTLET_CALLS fuzzed calls (default a
# million), GAUNTLET_SECS seconds of stress (default 90), seed GAUNTLET_SEED
# (default: from the clock, printed), the kernel's vm selftests and stress-ng
# beside cowbuf, load/unload cycles and the security tests, in a 4 GiB guest
# (mremap_test maps 2 GiB). GAUNTLET_LANE=stock runs it on Debian's kernel.
GAUNTLET_CALLS ?= 1000000
GAUNTLET_SECS ?= 90
GAUNTLET_SEED ?= $(shell date +%s)
GAUNTLET_LANE ?= debug
gauntlet: deps
	COWBUF_VM_ENV="cbseed=$(GAUNTLET_SEED) cbcalls=$(GAUNTLET_CALLS) cbsecs=$(GAUNTLET_SECS)" \
		COWBUF_VM_TIMEOUT=3600 COWBUF_VM_MEM=4G tools/vm/run.sh $(GAUNTLET_LANE) gauntlet

# Real guests on cowbuf memory (tools/vm/actions/vms.sh): two nested QEMU
# guests with RAM in cowbuf regions, then on anonymous RAM with KSM, in one
# 3 GiB stock-lane VM; page sharing, ballooning, free page reporting and the
# failure paths. Figures in build/vms/report.md.
vms: deps
	COWBUF_VM_MEM=3G COWBUF_VM_TIMEOUT=3600 tools/vm/run.sh stock vms
	mkdir -p build/vms
	cp build/stock/results.log build/vms/results.log
	tools/vms-report.sh build/vms/results.log >build/vms/report.md
	cat build/vms/report.md

# The benchmarks, in one stock-lane VM run, then make vms in another:
# build/bench/report.md (with the virtual machines' section) and plots.
bench: deps
	tools/vm/run.sh stock bench
	mkdir -p build/bench
	cp build/stock/results.log build/bench/results.log
	tools/bench-report.sh build/bench/results.log build/bench stock
	$(MAKE) vms
	{ echo; cat build/vms/report.md; } >>build/bench/report.md
